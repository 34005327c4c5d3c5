import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerfileSyntaxError } from '../../lib/build/build-errors.js';
import { parseDockerfile } from '../../lib/build/dockerfile-parser.js';
import { toInstruction } from '../../lib/build/instructions.js';

function rests(text: string): string[] {
  return parseDockerfile(text).instructions.map((i) => i.original);
}

test('continuations, comments inside them, empty continuation lines, trailing whitespace after the escape', () => {
  const cases: Array<[string, string[]]> = [
    ['FROM a\nRUN echo a \\\n  b', ['FROM a', 'RUN echo a   b']],
    ['FROM a\nRUN echo a \\   \n b', ['FROM a', 'RUN echo a  b']],
    ['FROM a\nRUN a \\\n# comment\n  b', ['FROM a', 'RUN a   b']],
    ['FROM a\nRUN a \\\n\n  b', ['FROM a', 'RUN a   b']],
    ['  # comment\nfrom a\n\n   run   x', ['FROM a', 'RUN x']],
    ['FROM a\nRUN echo \\\\', ['FROM a', 'RUN echo \\']],
    ['FROM a\r\nRUN x\r\n', ['FROM a', 'RUN x']],
  ];
  for (const [text, want] of cases) assert.deepEqual(rests(text), want, JSON.stringify(text));
});

test('directives: escape, syntax, only at the top, backtick continuation', () => {
  const p = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN dir c:\\ `\n  x');
  assert.equal(p.escape, '`');
  assert.equal(p.syntax, 'docker/dockerfile:1');
  assert.deepEqual(p.instructions.map((i) => i.original), ['FROM a', 'RUN dir c:\\   x']);
  // After a comment the directive is just a comment.
  const late = parseDockerfile('# hello\n# escape=`\nFROM a\nRUN a \\\n b');
  assert.equal(late.escape, '\\');
  assert.equal(late.instructions[1]!.original, 'RUN a  b');
  assert.throws(() => parseDockerfile('# escape=x\nFROM a'), DockerfileSyntaxError);
  assert.throws(() => parseDockerfile('# escape=`\n# escape=\\\nFROM a'), /only one escape parser directive/);
});

test('heredocs: plain, <<- strips tabs, quoted, several on one line, unterminated', () => {
  const p = parseDockerfile('FROM a\nRUN <<EOF\necho hi\n  indented\nEOF\nCOPY <<-"X" <<Y /dst/\n\tone $A\n\tX\ntwo\nY\nRUN echo after');
  const [, run, copy, after] = p.instructions;
  assert.deepEqual(run!.heredocs, [{ name: 'EOF', content: 'echo hi\n  indented\n', quoted: false, chomp: false }]);
  assert.deepEqual(copy!.heredocs, [
    { name: 'X', content: 'one $A\n', quoted: true, chomp: true },
    { name: 'Y', content: 'two\n', quoted: false, chomp: false },
  ]);
  assert.equal(after!.original, 'RUN echo after');
  assert.equal(after!.loc.line, 11);
  assert.throws(() => parseDockerfile('FROM a\nRUN <<EOF\nx'), (e: unknown) => e instanceof DockerfileSyntaxError && e.line === 2 && e.column === 5 && /unterminated heredoc EOF/.test(e.message));
  // Not a heredoc instruction: text stays text.
  assert.equal(parseDockerfile('FROM a\nLABEL a=<<EOF').instructions[1]!.heredocs.length, 0);
});

test('errors name file, line and column, also on continuation lines', () => {
  assert.throws(() => toInstruction(parseDockerfile('FROM a\n  FOO bar', 'app.Dockerfile').instructions[1]!, '\\'), (e: unknown) => {
    assert.ok(e instanceof DockerfileSyntaxError);
    assert.equal(e.message, 'app.Dockerfile:2:3: unknown instruction: FOO');
    return true;
  });
  const raw = parseDockerfile('FROM a\nCOPY \\\n  --chwon=1 a b').instructions[1]!;
  assert.throws(() => toInstruction(raw, '\\'), (e: unknown) => e instanceof DockerfileSyntaxError && e.line === 3 && e.column === 3 && /unknown flag: --chwon/.test(e.message));
  assert.throws(() => toInstruction(parseDockerfile('FROM a\nCOPY x').instructions[1]!, '\\'), /Dockerfile:2:6: COPY requires at least two arguments/);
});

function instr(line: string) {
  return toInstruction(parseDockerfile(`FROM a\n${line}`).instructions[1]!, '\\');
}

test('instruction shapes: exec and shell forms, flags, pairs', () => {
  assert.deepEqual((instr('RUN ["echo", "hi"]') as { command: unknown }).command, { exec: true, argv: ['echo', 'hi'] });
  assert.deepEqual((instr('RUN [not json') as { command: unknown }).command, { exec: false, script: '[not json' });
  assert.deepEqual((instr('CMD echo $HOME') as { command: unknown }).command, { exec: false, script: 'echo $HOME' });
  const copy = instr('COPY --from=build --chown=app:app --chmod=0755 --link a b* /dst/');
  assert.equal(copy.kind, 'COPY');
  if (copy.kind === 'COPY') {
    assert.deepEqual(copy.sources, ['a', 'b*']);
    assert.equal(copy.dest, '/dst/');
    assert.equal(copy.from?.value, 'build');
    assert.equal(copy.chown?.value, 'app:app');
    assert.equal(copy.link, true);
  }
  const json = instr('COPY ["a b", "/c d/"]');
  assert.ok(json.kind === 'COPY' && json.exec && json.sources[0] === 'a b' && json.dest === '/c d/');
  const env = instr('ENV A=1 B="two words" C=a\\ b');
  assert.ok(env.kind === 'ENV');
  assert.deepEqual(env.pairs, [['A', '1'], ['B', '"two words"'], ['C', 'a\\ b']]);
  const legacy = instr('ENV D the rest  of it');
  assert.ok(legacy.kind === 'ENV');
  assert.deepEqual(legacy.pairs, [['D', 'the rest  of it']]);
  const arg = instr('ARG A B=2');
  assert.ok(arg.kind === 'ARG');
  assert.deepEqual(arg.args, [{ name: 'A' }, { name: 'B', value: '2' }]);
  const from = toInstruction(parseDockerfile('FROM --platform=$BUILDPLATFORM img:1 AS Build').instructions[0]!, '\\');
  assert.ok(from.kind === 'FROM');
  assert.deepEqual([from.image, from.name, from.platform], ['img:1', 'build', '$BUILDPLATFORM']);
  const run = instr('RUN --mount=type=cache,target=/c --network=none make');
  assert.ok(run.kind === 'RUN' && run.mounts.length === 1 && run.network === 'none');
  const hc = instr('HEALTHCHECK --interval=5s --retries=3 CMD curl -f x');
  assert.ok(hc.kind === 'HEALTHCHECK' && !hc.none && hc.flags.length === 2);
  assert.ok(instr('HEALTHCHECK NONE').kind === 'HEALTHCHECK');
  assert.throws(() => instr('SHELL /bin/bash -c'), /SHELL requires the arguments to be in JSON form/);
  assert.throws(() => instr('ONBUILD ONBUILD RUN x'), /chaining ONBUILD/);
  assert.throws(() => instr('ONBUILD FROM x'), /FROM isn't allowed/);
  assert.throws(() => instr('FROM a b'), /FROM requires either one argument, or three/);
  assert.throws(() => instr('LABEL novalue'), /LABEL requires key=value/);
  assert.throws(() => instr('ENV =x'), /names can not be blank/);
  assert.throws(() => instr('EXPOSE'), /EXPOSE requires at least one argument/);
  assert.throws(() => instr('COPY --from a b'), /--from needs a value/);
});
