/** Interpolation and env files of compose, table-driven (the specification's operators). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../../lib/errors.js';
import { parseEnvFile } from '../../lib/compose/env-file.js';
import { interpolateString } from '../../lib/compose/interpolate.js';

const vars: Record<string, string> = { SET: 'value', EMPTY: '', TAG: '1.25', PORT: '8080' };
const lookup = (n: string) => vars[n];

describe('compose interpolation', () => {
  const cases: Array<[string, string]> = [
    ['plain', 'plain'],
    ['$SET', 'value'],
    ['${SET}', 'value'],
    ['nginx:${TAG}', 'nginx:1.25'],
    ['${UNSET}', ''],
    ['${UNSET:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${EMPTY-fallback}', ''],
    ['${UNSET-fallback}', 'fallback'],
    ['${SET:-fallback}', 'value'],
    ['${SET:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['$$SET', '$SET'],
    ['$${SET}', '${SET}'],
    ['cost: 5$', 'cost: 5$'],
    ['${UNSET:-${PORT}}', '8080'],
    ['${UNSET:-${ALSO_UNSET:-deep}}', 'deep'],
    ['${UNSET:-a}${SET}', 'avalue'],
    ['127.0.0.1:${PORT}:80', '127.0.0.1:8080:80'],
  ];
  for (const [input, want] of cases) {
    it(`${input} -> ${JSON.stringify(want)}`, () => assert.equal(interpolateString(input, lookup, 'x'), want));
  }

  const errors: Array<[string, RegExp]> = [
    ['${UNSET:?must be set}', /required variable UNSET is missing: must be set/],
    ['${EMPTY:?no empty}', /required variable EMPTY is empty: no empty/],
    ['${UNSET?}', /required variable UNSET is missing/],
    ['${unclosed', /unclosed/],
    ['${1BAD}', /variable name/],
    ['${SET%suffix}', /after the name/],
  ];
  for (const [input, message] of errors) {
    it(`${input} is a ValidationError naming the value's path`, () => {
      assert.throws(() => interpolateString(input, lookup, 'services.web.image'), (e: unknown) => e instanceof ValidationError && e.option === 'services.web.image' && message.test(e.message));
    });
  }
  it('${EMPTY?e} accepts an empty value (only unset fails without ":")', () => assert.equal(interpolateString('${EMPTY?e}', lookup, 'x'), ''));
});

describe('compose env files', () => {
  it('reads the forms compose reads', () => {
    const text = [
      '# a comment',
      '',
      'PLAIN=value',
      'export EXPORTED=yes',
      'SPACED = padded  ',
      "SINGLE='literal $PLAIN # not a comment'",
      'DOUBLE="line1\\nline2 ${PLAIN}"',
      'TRAILING=abc # comment',
      'REF=${PLAIN}-suffix',
      'INHERIT',
      'MISSING',
      'MULTI="first',
      'second"',
      'EMPTY=',
    ].join('\n');
    const env = parseEnvFile(text, '.env', (n) => (n === 'INHERIT' ? 'from-process' : undefined));
    assert.deepEqual(env, {
      PLAIN: 'value',
      EXPORTED: 'yes',
      SPACED: 'padded',
      SINGLE: 'literal $PLAIN # not a comment',
      DOUBLE: 'line1\nline2 value',
      TRAILING: 'abc',
      REF: 'value-suffix',
      INHERIT: 'from-process',
      MULTI: 'first\nsecond',
      EMPTY: '',
    });
  });
  it('names file and line of a bad line', () => {
    assert.throws(() => parseEnvFile('OK=1\n1BAD=2\n', '/p/.env'), (e: unknown) => e instanceof ValidationError && e.option === '/p/.env:2');
    assert.throws(() => parseEnvFile('Q="open\n', '/p/.env'), (e: unknown) => e instanceof ValidationError && /unclosed/.test(e.message));
  });
});
