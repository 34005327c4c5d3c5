import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExpansionError, expandWord, splitWords } from '../../lib/build/shell-expand.js';

const vars: Record<string, string> = { A: 'a', EMPTY: '', SPACE: 'x y', PATH: '/usr/bin' };
const lookup = (n: string) => vars[n];

test('expandWord: the operators and quoting of BuildKit\'s lexer', () => {
  const cases: Array<[string, string, string?]> = [
    ['$A', 'a'],
    ['${A}', 'a'],
    ['${A}b', 'ab'],
    ['$Ab', ''], // the name runs on: $Ab is unset
    ['$UNSET', ''],
    ['${UNSET:-word}', 'word'],
    ['${EMPTY:-word}', 'word'],
    ['${EMPTY-word}', ''],
    ['${UNSET-word}', 'word'],
    ['${A:-word}', 'a'],
    ['${A:+word}', 'word'],
    ['${EMPTY:+word}', ''],
    ['${EMPTY+word}', 'word'],
    ['${UNSET:+word}', ''],
    ['${UNSET:-$A}', 'a'],
    ['${UNSET:-${A}x}', 'ax'],
    ["'$A'", '$A'],
    ['"$A"', 'a'],
    ['"\\$A"', '$A'],
    ['\\$A', '$A'],
    ['a\\ b', 'a b'],
    ['"a\\b"', 'a\\b'],
    ['"a\\"b"', 'a"b'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$1', ''],
    ['${PATH}:/bin', '/usr/bin:/bin'],
    ['"${SPACE}"', 'x y'],
    ["'a'\"b\"c", 'abc'],
    ['`$A', '$A', '`'],
    ['\\$A', '\\a', '`'],
  ];
  for (const [input, want, escape] of cases) {
    assert.equal(expandWord(input, lookup, escape ? { escape } : {}), want, `${input} (escape ${escape ?? '\\'})`);
  }
});

test('expandWord: raw mode (heredoc bodies) expands $ only', () => {
  assert.equal(expandWord('echo "$A" \'$A\' \\$A \\n', lookup, { raw: true }), 'echo "a" \'a\' $A \\n');
});

test('expandWord: errors carry the offset', () => {
  const bad: Array<[string, RegExp]> = [
    ["'abc", /single-quote/],
    ['"abc', /double-quote/],
    ['${A', /missing '}'/],
    ['${}', /bad substitution/],
    ['${A#x}', /unsupported modifier/],
    ['${UNSET:?must be set}', /UNSET: must be set/],
    ['${EMPTY:?}', /EMPTY: is not allowed to be unset/],
  ];
  for (const [input, re] of bad) {
    assert.throws(() => expandWord(input, lookup), (e: unknown) => e instanceof ExpansionError && re.test(e.message), input);
  }
  assert.equal(expandWord('${EMPTY?x}', lookup), '');
});

test('splitWords keeps quotes and escapes for the expansion that follows', () => {
  assert.deepEqual(splitWords('a "b c" d\\ e  \'f g\''), ['a', '"b c"', 'd\\ e', "'f g'"]);
  assert.deepEqual(splitWords('A="x y" B=z'), ['A="x y"', 'B=z']);
  assert.deepEqual(splitWords('a`  b', '`'), ['a` ', 'b']);
  assert.deepEqual(splitWords('   '), []);
});
