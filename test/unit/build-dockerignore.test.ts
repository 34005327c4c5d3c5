import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerfileSyntaxError } from '../../lib/build/build-errors.js';
import { DockerIgnore } from '../../lib/build/dockerignore.js';

test('Docker\'s documented .dockerignore example', () => {
  // docs.docker.com/build/concepts/context/#dockerignore-files
  const ig = DockerIgnore.parse('# comment\n*/temp*\n*/*/temp*\ntemp?\n');
  const table: Array<[string, boolean]> = [
    ['somedir/temporary.txt', true],
    ['somedir/temp', true],
    ['somedir/subdir/temporary.txt', true],
    ['tempa', true],
    ['tempb', true],
    ['temp', false],
    ['temporary.txt', false],
    ['a/b/c/temp', false],
  ];
  for (const [p, want] of table) assert.equal(ig.excludes(p), want, p);
});

test('exceptions: the last matching line wins (documented *.md / !README*.md / README-secret.md)', () => {
  const ig = DockerIgnore.parse('*.md\n!README*.md\nREADME-secret.md\n');
  assert.equal(ig.excludes('CHANGES.md'), true);
  assert.equal(ig.excludes('README.md'), false);
  assert.equal(ig.excludes('README-secret.md'), true);
  assert.equal(ig.excludes('docs/x.md'), false, '* does not cross /');
  const swapped = DockerIgnore.parse('*.md\nREADME-secret.md\n!README*.md\n');
  assert.equal(swapped.excludes('README-secret.md'), false);
  assert.ok(swapped.hasExceptions);
});

test('**, leading /, cleaning, parents, classes, escapes', () => {
  const table: Array<[string, string, boolean]> = [
    ['**/*.go', 'a/b/c.go', true],
    ['**/*.go', 'c.go', true],
    ['**/*.go', 'c.gox', false],
    ['/node_modules', 'node_modules/x/y.js', true],
    ['node_modules', 'node_modules', true],
    ['node_modules', 'a/node_modules', false],
    ['./a/../b', 'b/c', true],
    ['a/**', 'a/b/c', true],
    ['a/**', 'ab', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['[a-c]x', 'bx', true],
    ['[a-c]x', 'dx', false],
    ['[^a-c]x', 'dx', true],
    ['[!a-c]x', '!x', true], // Go: only ^ negates
    ['\\*x', '*x', true],
    ['\\*x', 'ax', false],
    ['a.b', 'axb', false],
    ['  spaced  ', 'spaced', true],
    ['?', 'a/b', true],
    ['*', 'anything/below', true],
  ];
  for (const [pattern, path, want] of table) assert.equal(DockerIgnore.parse(pattern).excludes(path), want, `${pattern} vs ${path}`);
  assert.equal(DockerIgnore.empty().excludes('x'), false);
  assert.deepEqual(DockerIgnore.parse('/a/\n! b\n#c\n\n').patterns(), ['a', '!b']);
});

test('malformed patterns name the line', () => {
  assert.throws(() => DockerIgnore.parse('ok\n[abc'), (e: unknown) => e instanceof DockerfileSyntaxError && e.line === 2 && e.file === '.dockerignore');
  assert.throws(() => DockerIgnore.parse('abc\\'), DockerfileSyntaxError);
});
