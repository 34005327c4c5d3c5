/**
 * `rt.images.build()` against the real kernel and a loopback registry: the cache rules of the
 * issue, failure and abort leaving nothing behind, ONBUILD, heredocs, reproducible layers,
 * located errors, and the attacks a hostile build context can try (symlinks out of the
 * context for COPY sources, the Dockerfile and bind mounts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../../lib/runtime.js';
import { AbortError, ValidationError } from '../../lib/errors.js';
import type { BuildOptions, BuildProgress } from '../../lib/image/build-types.js';
import { BuildSourceNotFoundError, BuildStepFailedError, BuildUnsupportedError, DockerfileSyntaxError } from '../../lib/build/build-errors.js';
import { registryToolsMissing, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { buildBaseImage, BASE_TAG } from '../helpers/build-base-image.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { isClean, settledDiff, snapshot } from '../helpers/leaks.js';
import { buildTar } from '../helpers/tar-builder.js';
import { gzipSync } from 'node:zlib';

const skip = registryToolsMissing() ?? kernelSkipReason();

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let base: string;
let rt: Runtime;
let n = 0;

before(async () => {
  if (skip) return;
  work = tempDir('berth-build-');
  registry = await startRegistry();
  await skopeoPush(await buildBaseImage(work.path), BASE_TAG, registry, 'fixtures/base:1');
  base = `${registry.host}/fixtures/base:1`;
  rt = await Runtime.open({ root: join(work.path, 'state') });
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

function context(files: Record<string, string>): string {
  const dir = join(work.path, `ctx-${n++}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

async function build(options: BuildOptions): Promise<{ id: string; events: BuildProgress[] }> {
  const events: BuildProgress[] = [];
  const img = await rt.images.build({ ...options, onProgress: (e) => events.push(e) });
  return { id: img.id, events };
}

/** `cached` per step (start events only), FROM steps left out. */
function cachedSteps(events: BuildProgress[]): Array<[string, boolean]> {
  return events.filter((e) => e.line === undefined && !e.instruction.startsWith('FROM')).map((e) => [e.instruction, e.cached]);
}

async function fileIn(id: string, path: string): Promise<string | undefined> {
  const r = await rt.run(id, ['cat', path]);
  return r.exitCode === 0 ? r.stdout : undefined;
}

/** Nothing half-done in the store: tmp/ empty, every layer directory with its metadata. */
function storeIsClean(): void {
  const tmp = join(rt.root, 'tmp');
  assert.deepEqual(readdirSync(tmp).filter((n) => !n.startsWith('blob-')), [], 'tmp/ holds no staging dir, layer or upper dir');
  const layers = readdirSync(join(rt.root, 'layers'));
  for (const l of layers.filter((x) => !x.endsWith('.json'))) assert.ok(layers.includes(`${l}.json`), `layer ${l} has its metadata`);
}

test('cache: a second build reuses every step; a touched file invalidates from its COPY on; mtimes alone do not', { skip }, async () => {
  const ctx = context({ 'a.txt': 'a\n', 'b.txt': 'b\n', Dockerfile: `FROM ${base}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a2.txt\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b2.txt\nENV X=1\n` });
  const first = await build({ context: ctx });
  assert.ok(cachedSteps(first.events).every(([, c]) => !c), 'cold build: nothing cached');
  const second = await build({ context: ctx });
  assert.ok(cachedSteps(second.events).every(([, c]) => c), 'every step cached');
  assert.equal(second.id, first.id, 'same image id');
  utimesSync(join(ctx, 'a.txt'), new Date(2000, 1, 1), new Date(2000, 1, 1));
  assert.equal((await build({ context: ctx })).id, first.id, 'an mtime is not part of the key');
  writeFileSync(join(ctx, 'b.txt'), 'B\n');
  const third = await build({ context: ctx });
  assert.deepEqual(cachedSteps(third.events), [
    ['COPY a.txt /a.txt', true], ['RUN cat /a.txt > /a2.txt', true],
    ['COPY b.txt /b.txt', false], ['RUN cat /b.txt > /b2.txt', false], ['ENV X=1', false],
  ]);
  assert.equal(await fileIn(third.id, '/b2.txt'), 'B\n');
  const fresh = await build({ context: ctx, noCache: true });
  assert.ok(cachedSteps(fresh.events).every(([, c]) => !c), 'noCache runs every step');
});

test('cache: a changed build arg invalidates from its first use, not its declaration', { skip }, async () => {
  const ctx = context({ 'a.txt': 'a\n', Dockerfile: `FROM ${base}\nARG V=1\nCOPY a.txt /a.txt\nENV E=fixed\nRUN echo $V > /v.txt\nLABEL after=1\n` });
  await build({ context: ctx });
  const changed = await build({ context: ctx, buildArgs: { V: '2' } });
  assert.deepEqual(cachedSteps(changed.events), [['ARG V=1', true], ['COPY a.txt /a.txt', true], ['ENV E=fixed', true], ['RUN echo $V > /v.txt', false], ['LABEL after=1', false]]);
  assert.equal(await fileIn(changed.id, '/v.txt'), '2\n');
  const history = (await rt.images.config(changed.id)).history!.map((h) => h.created_by);
  assert.ok(history.includes('|1 V=2 /bin/sh -c echo $V > /v.txt'), 'RUN history names the args it saw, as Docker writes it');
});

test('a failing RUN: typed error with exit code and last lines; no container, mount, cgroup or half layer left', { skip }, async () => {
  const ctx = context({ Dockerfile: `FROM ${base}\nRUN echo preparing\nRUN echo one; echo two >&2; exit 3\n` });
  await build({ context: context({ Dockerfile: `FROM ${base}\nRUN true\n` }) }); // base pulled, helpers warm
  const before = snapshot();
  await assert.rejects(build({ context: ctx }), (e: unknown) => {
    assert.ok(e instanceof BuildStepFailedError);
    assert.equal(e.exitCode, 3);
    assert.equal(e.line, 3);
    assert.deepEqual(e.output.slice(-2).sort(), ['one', 'two']);
    return true;
  });
  const leaks = await settledDiff(before);
  assert.ok(isClean(leaks), `leaks: ${JSON.stringify(leaks)}`);
  storeIsClean();
});

test('an aborted build kills its RUN container and leaves nothing behind', { skip }, async () => {
  const ctx = context({ Dockerfile: `FROM ${base}\nRUN echo started; sleep 60\n` });
  const ac = new AbortController();
  const before = snapshot();
  const started = Date.now();
  await assert.rejects(rt.images.build({ context: ctx, signal: ac.signal, onProgress: (e) => e.line === 'started' && ac.abort() }), AbortError);
  assert.ok(Date.now() - started < 50_000, 'the sleep did not run to its end');
  const leaks = await settledDiff(before);
  assert.ok(isClean(leaks), `leaks: ${JSON.stringify(leaks)}`);
  storeIsClean();
});

test('ONBUILD is recorded, runs when the image is a base, and is not inherited further', { skip }, async () => {
  const parent = await build({ context: context({ Dockerfile: `FROM ${base}\nONBUILD RUN echo triggered > /onbuild.txt\n` }), tags: ['onbuild/parent:1'] });
  assert.deepEqual((await rt.images.config(parent.id)).config?.OnBuild, ['RUN echo triggered > /onbuild.txt']);
  assert.equal(await fileIn(parent.id, '/onbuild.txt'), undefined, 'not run in the image that declares it');
  const child = await build({ context: context({ Dockerfile: 'FROM onbuild/parent:1\nRUN cat /onbuild.txt\n' }) });
  assert.equal(await fileIn(child.id, '/onbuild.txt'), 'triggered\n');
  assert.equal((await rt.images.config(child.id)).config?.OnBuild ?? null, null);
});

test('heredocs: RUN <<EOF runs the script, COPY <<EOF writes the file (expanded unless quoted)', { skip }, async () => {
  const df = `FROM ${base}\nARG WHO=world\nRUN <<EOF\necho "hello $WHO" > /greeting\nEOF\nCOPY <<EOF /expanded.txt\nhi $WHO\nEOF\nCOPY <<"EOF" /literal.txt\nhi $WHO\nEOF\n`;
  const { id } = await build({ context: context({}), dockerfile: { content: df } });
  assert.equal(await fileIn(id, '/greeting'), 'hello world\n');
  assert.equal(await fileIn(id, '/expanded.txt'), 'hi world\n');
  assert.equal(await fileIn(id, '/literal.txt'), 'hi $WHO\n');
  const shebang = await build({ context: context({}), dockerfile: { content: `FROM ${base}\nARG WHO=you\nRUN <<EOF\n#!/bin/sh -e\necho "script $0 for $WHO" > /sb\nEOF\n` } });
  assert.equal(await fileIn(shebang.id, '/sb'), 'script /dev/pipes/EOF for you\n');
  assert.equal(await fileIn(shebang.id, '/dev/pipes/EOF'), undefined);
});

test('SOURCE_DATE_EPOCH: identical builds give identical layers and image ids', { skip }, async () => {
  const ctx = context({ 'dir/a.txt': 'a\n', 'dir/b/c.txt': 'c\n', Dockerfile: `FROM ${base}\nWORKDIR /app\nCOPY dir/ ./\nENV A=1\n` });
  const one = await build({ context: ctx, noCache: true, buildArgs: { SOURCE_DATE_EPOCH: '1700000000' } });
  const two = await build({ context: ctx, noCache: true, buildArgs: { SOURCE_DATE_EPOCH: '1700000000' } });
  assert.equal(two.id, one.id);
  assert.equal((await rt.images.config(one.id)).created, '2023-11-14T22:13:20.000Z');
});

test('located errors: syntax, unknown instruction, missing source, unknown stage, ADD URL, bad target', { skip }, async () => {
  const cases: Array<[string, (e: unknown) => boolean]> = [
    [`FROM ${base}\nENV X=\${A`, (e) => e instanceof DockerfileSyntaxError && e.line === 2 && /missing '}'/.test(e.message)],
    [`FROM ${base}\n\n  FETCH x`, (e) => e instanceof DockerfileSyntaxError && e.line === 3 && e.column === 3 && /unknown instruction: FETCH/.test(e.message)],
    [`FROM ${base}\nCOPY missing.txt /`, (e) => e instanceof BuildSourceNotFoundError && e.line === 2 && /missing\.txt/.test(e.message)],
    [`FROM ${base}\nCOPY --from=nostage /a /a`, (e) => e instanceof BuildSourceNotFoundError && e.line === 2 && /nostage/.test(e.message)],
    [`FROM ${base}\nADD https://example.com/x.tgz /x`, (e) => e instanceof BuildUnsupportedError && e.line === 2 && /ADD of a URL/.test(e.message)],
  ];
  for (const [df, check] of cases) await assert.rejects(build({ context: context({}), dockerfile: { content: df } }), check, df);
  await assert.rejects(build({ context: context({ Dockerfile: `FROM ${base}\n` }), target: 'nope' }), BuildSourceNotFoundError);
  await assert.rejects(build({ context: 'relative/dir' }), ValidationError);
  await assert.rejects(rt.images.build({ context: context({}), bogus: 1 } as unknown as BuildOptions), /unknown build option/);
  for (const [bad, option] of [[{ tags: 'app:1' }, 'tags'], [{ tags: ['app@sha256:0'] }, 'tags[0]'], [{ buildArgs: { A: 1 } }, 'buildArgs.A'], [{ noCache: 'yes' }, 'noCache'], [{ platform: 'linux/s390x' }, undefined], [{ dockerfile: 'nope/Dockerfile' }, 'dockerfile']] as const) {
    await assert.rejects(rt.images.build({ context: context({}), ...bad } as unknown as BuildOptions), (e: unknown) => (option === undefined ? e instanceof BuildUnsupportedError : e instanceof ValidationError && e.option === option), JSON.stringify(bad));
  }
  storeIsClean();
});

test('.dockerignore: excluded files are invisible to COPY, exceptions come back', { skip }, async () => {
  const ctx = context({ 'keep.txt': 'k\n', 'a.log': 'x\n', 'logs/important.log': 'i\n', 'logs/other.log': 'o\n', '.dockerignore': '*.log\nlogs\n!logs/important.log\n', Dockerfile: `FROM ${base}\nCOPY . /ctx/\nRUN ls -R /ctx > /listing\n` });
  const { id } = await build({ context: ctx });
  const listing = (await fileIn(id, '/listing'))!;
  assert.match(listing, /keep\.txt/);
  assert.match(listing, /important\.log/);
  assert.doesNotMatch(listing, /a\.log|other\.log/);
  await assert.rejects(build({ context: ctx, dockerfile: { content: `FROM ${base}\nCOPY a.log /` } }), /excluded by \.dockerignore/);
});

test('ADD extracts a local tar or tar.gz into the destination; COPY copies it as a file', { skip }, async () => {
  const tar = buildTar([
    { name: 'pkg/', type: 'dir', mode: 0o750, uid: 7, gid: 8 },
    { name: 'pkg/bin/tool', content: 'tool\n', mode: 0o755, uid: 7, gid: 8 },
    { name: 'pkg/tool-again', type: 'link', linkname: 'pkg/bin/tool' },
    { name: 'pkg/latest', type: 'symlink', linkname: 'bin/tool' },
  ]);
  const ctx = context({ Dockerfile: `FROM ${base}\nADD app.tar.gz /opt/\nADD app.tar /plain/\nCOPY app.tar /copied.tar\n` });
  writeFileSync(join(ctx, 'app.tar.gz'), gzipSync(tar));
  writeFileSync(join(ctx, 'app.tar'), tar);
  const { id } = await build({ context: ctx });
  const r = await rt.run(id, ['sh', '-c', 'stat -c "%n %a %u:%g" /opt/pkg /opt/pkg/bin/tool; cat /opt/pkg/tool-again /plain/pkg/latest; ls -l /copied.tar | wc -l']);
  assert.equal(r.stdout, '/opt/pkg 750 7:8\n/opt/pkg/bin/tool 755 7:8\ntool\ntool\n1\n');
});

test('attack: an ADD archive cannot write outside its destination', { skip }, async () => {
  for (const evil of [{ name: '../../etc/evil', content: 'x' }, { name: '/etc/evil', content: 'x' }, { name: 'dev-null', type: 'char' as const }]) {
    const ctx = context({ Dockerfile: `FROM ${base}\nADD evil.tar /opt/dest/\n` });
    writeFileSync(join(ctx, 'evil.tar'), buildTar([evil]));
    await assert.rejects(build({ context: ctx }), (e: unknown) => e instanceof DockerfileSyntaxError && e.line === 2 && /refused|device/.test(e.message), evil.name);
  }
});

test('RUN mounts: a secret is readable but never in a layer; a cache mount outlives the build; tmpfs', { skip }, async () => {
  const secretFile = join(work.path, `npmrc-${n++}`);
  writeFileSync(secretFile, 'token=SECRET-VALUE\n');
  const df = `FROM ${base}\nRUN --mount=type=secret,id=npmrc --mount=type=cache,target=/var/cache/app --mount=type=tmpfs,target=/scratch \\\n  grep -c SECRET /run/secrets/npmrc > /secret-seen && echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /cache-lines && touch /scratch/x\n`;
  const first = await build({ context: context({}), dockerfile: { content: df }, secrets: { npmrc: secretFile } });
  assert.equal(await fileIn(first.id, '/secret-seen'), '1\n');
  const r = await rt.run(first.id, ['sh', '-c', 'ls /run/secrets /var/cache/app /scratch 2>&1; cat /cache-lines']);
  assert.doesNotMatch(r.stdout, /npmrc|log|\bx\b/, 'no secret, cache content or tmpfs file in the image');
  assert.match(r.stdout, /1\n$/);
  const second = await build({ context: context({}), dockerfile: { content: df }, secrets: { npmrc: secretFile }, noCache: true });
  assert.equal(await fileIn(second.id, '/cache-lines'), '2\n', 'the cache mount kept the first build\'s file');
  await assert.rejects(build({ context: context({}), dockerfile: { content: `FROM ${base}\nRUN --mount=type=secret,id=missing,required=true true\n` } }), BuildSourceNotFoundError);
});

test('COPY follows a destination directory that is a symlink in the image, inside the image; --chmod, numeric --chown', { skip }, async () => {
  const df = `FROM ${base}\nRUN mkdir -p /real && ln -s /real /var/link && ln -s ../../../../.. /var/up\nCOPY a.txt /var/link/sub/\nCOPY a.txt /var/up/top/\nCOPY --chmod=0700 --chown=1234:5678 d/ /chmodded/\n`;
  const { id } = await build({ context: context({ 'a.txt': 'a\n', 'd/f': 'f\n' }), dockerfile: { content: df } });
  const r = await rt.run(id, ['sh', '-c', 'cat /real/sub/a.txt /top/a.txt; ls -ld /var/link | cut -c1; stat -c "%a %u:%g" /chmodded/f']);
  assert.equal(r.stdout, 'a\na\nl\n700 1234:5678\n');
});

test('RUN --mount=type=bind,from=<stage>: the stage\'s files, read-only, not in the layer', { skip }, async () => {
  const df = `FROM ${base} AS tools\nRUN mkdir /tools && echo tool-data > /tools/data\nFROM ${base}\nRUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/data > /copied && (touch /t/new 2>/dev/null && echo writable || echo read-only) > /mode\n`;
  const { id } = await build({ context: context({}), dockerfile: { content: df } });
  assert.equal(await fileIn(id, '/copied'), 'tool-data\n');
  assert.equal(await fileIn(id, '/mode'), 'read-only\n');
  assert.equal(await fileIn(id, '/t/data'), undefined);
});

test('attack: a stage\'s symlink cannot make a bind from= mount a host directory', { skip }, async () => {
  const host = readFileSync('/etc/hostname', 'utf8');
  const df = `FROM ${base} AS evil\nRUN ln -s /etc /hostetc\nFROM ${base}\nRUN --mount=type=bind,from=evil,source=/hostetc,target=/t cat /t/hostname > /stolen 2>&1 || true; ls /t > /listing 2>&1 || true\n`;
  const { id } = await build({ context: context({}), dockerfile: { content: df } });
  assert.notEqual(await fileIn(id, '/stolen'), host);
  assert.match((await fileIn(id, '/listing'))!, /passwd/, 'the stage\'s own /etc was mounted');
});

test('the context may be a tar stream (plain or gzip)', { skip }, async () => {
  const tar = buildTar([
    { name: 'Dockerfile', content: `FROM ${base}\nCOPY app/ /app/\nRUN cat /app/hello\n` },
    { name: 'app/', type: 'dir' },
    { name: 'app/hello', content: 'hello from a tar\n' },
  ]);
  for (const bytes of [tar, gzipSync(tar)]) {
    const { id } = await build({ context: (async function* () { yield bytes; })() });
    assert.equal(await fileIn(id, '/app/hello'), 'hello from a tar\n');
  }
  storeIsClean();
});

// ---- attacks: a hostile build context -------------------------------------------------------

test('attack: context symlinks cannot make COPY read host files', { skip }, async () => {
  const outside = join(work.path, `outside-${n++}`);
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'HOST-SECRET\n');
  const ctx = context({ Dockerfile: `FROM ${base}\nCOPY . /ctx/\n` });
  symlinkSync(outside, join(ctx, 'abs'));
  symlinkSync('../../../../../../../../..', join(ctx, 'up'));
  // Named as sources, the links resolve inside the context, where no secret exists.
  for (const src of ['abs/secret.txt', `up${outside}/secret.txt`]) {
    await assert.rejects(build({ context: ctx, dockerfile: { content: `FROM ${base}\nCOPY ${src} /stolen\n` } }), BuildSourceNotFoundError, src);
  }
  // Inside a copied directory they stay links, never the content behind them.
  const { id } = await build({ context: ctx });
  const r = await rt.run(id, ['sh', '-c', 'ls -l /ctx; cat /ctx/abs/secret.txt 2>&1']);
  assert.doesNotMatch(r.stdout, /HOST-SECRET/);
  assert.match(r.stdout, /abs -> /);
});

test('attack: a Dockerfile or .dockerignore symlinked out of the context is not read', { skip }, async () => {
  const outside = join(work.path, `outside-${n++}`);
  mkdirSync(outside);
  writeFileSync(join(outside, 'Dockerfile'), `FROM ${base}\nLABEL stolen=HOST-DOCKERFILE\n`);
  const ctx = context({});
  symlinkSync(join(outside, 'Dockerfile'), join(ctx, 'Dockerfile'));
  await assert.rejects(build({ context: ctx }), (e: unknown) => e instanceof ValidationError && /not a file in the build context/.test(e.message));
});

test('attack: RUN --mount=type=bind cannot bind a host path through a context symlink', { skip }, async () => {
  const outside = join(work.path, `outside-${n++}`);
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'HOST-SECRET\n');
  const ctx = context({ 'inside/ok.txt': 'ok\n' });
  symlinkSync(outside, join(ctx, 'link'));
  const df = (src: string) => `FROM ${base}\nRUN --mount=type=bind,source=${src},target=/m cat /m/secret.txt /m/ok.txt > /out 2>&1 || true\n`;
  await assert.rejects(build({ context: ctx, dockerfile: { content: df('link') } }), BuildSourceNotFoundError);
  const ok = await build({ context: ctx, dockerfile: { content: df('inside') } });
  assert.match((await fileIn(ok.id, '/out'))!, /ok/);
  assert.equal(existsSync(join(outside, 'secret.txt')), true);
  assert.equal(readFileSync(join(outside, 'secret.txt'), 'utf8'), 'HOST-SECRET\n');
});

test('attack: --chown names are resolved in the stage\'s own passwd, even when /etc/passwd is a symlink to the host\'s', { skip }, async () => {
  // The stage makes its /etc/passwd a link to an absolute path: in-root resolution reads the
  // stage's file at that path, not the host's (where "root" and daemon users exist).
  const df = `FROM ${base}\nRUN mkdir -p /host/etc && echo 'ghost:x:4242:4242::/:/bin/sh' > /host/etc/passwd && rm /etc/passwd && ln -s /host/etc/passwd /etc/passwd\nCOPY --chown=ghost:4242 f /f\nCOPY --chown=daemon f /g\n`;
  const ctx = context({ f: 'x\n' });
  await assert.rejects(build({ context: ctx, dockerfile: { content: df } }), (e: unknown) => e instanceof BuildSourceNotFoundError && /unable to find user daemon/.test(e.message));
  const { id } = await build({ context: ctx, dockerfile: { content: df.split('\n').slice(0, 3).join('\n') } });
  assert.equal((await rt.run(id, ['stat', '-c', '%u:%g', '/f'])).stdout.trim(), '4242:4242');
});

test('pruneBuildCache removes the entries and the layers only they held; images.prune keeps what images hold', { skip }, async () => {
  const ctx = context({ 'a.txt': 'a\n', Dockerfile: `FROM ${base} AS b\nRUN echo intermediate > /i && echo only-here > /j\nFROM ${base}\nCOPY --from=b /i /i\nCOPY a.txt /a\n` });
  const built = await build({ context: ctx, tags: ['prune/test:1'] });
  const again = await build({ context: ctx });
  assert.ok(cachedSteps(again.events).every(([, c]) => c));
  await rt.images.prune();
  const afterPrune = await build({ context: ctx });
  assert.deepEqual(cachedSteps(afterPrune.events).map(([, c]) => c), [false, true, true], 'the builder stage\'s RUN (held by no image) went with prune; the final image\'s steps stayed');
  const pruned = await rt.images.pruneBuildCache();
  assert.ok(pruned.entriesDeleted > 0);
  const cold = await build({ context: ctx });
  assert.ok(cachedSteps(cold.events).every(([, c]) => !c));
  assert.equal((await rt.images.get('prune/test:1')).id, built.id, 'the tagged image survived');
});
