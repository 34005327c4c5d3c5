import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../lib/errors.js';
import { danglingFilter, globToRegExp, labelMatches, normaliseFilters, referenceMatches } from '../../lib/image/image-filters.js';

test("globToRegExp follows Go's path.Match (Docker's reference filter)", () => {
  const cases: Array<[string, string, boolean]> = [
    ['busybox', 'busybox', true],
    ['busy*', 'busybox', true],
    ['*', 'library/busybox', false], // * never crosses a /
    ['*/busybox', 'library/busybox', true],
    ['b?sybox', 'busybox', true],
    ['b?sybox', 'b/sybox', false],
    ['[a-c]usybox', 'busybox', true],
    ['[^a-c]usybox', 'busybox', false],
    ['[^a-c]usybox', 'musybox', true],
    ['[!x]', 'y', false], // Go has no [!...]: ! is a literal member
    ['[!x]', '!', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['*:1', 'app:1', true],
    ['*:1', 'ns/app:1', false],
    ['127.0.0.1:5000/*', '127.0.0.1:5000/app', true],
    ['127.0.0.1:5000/*', '127.0.0.1x5000/app', false], // dots are literal
    ['a+b(c)', 'a+b(c)', true],
    ['[\\]a]', ']', true],
    ['[\\-]', '-', true],
    ['[^a]', '/', true], // unlike * and ?, a class may match '/', as in Go
    ['é[à-ü]', 'éé', true],
  ];
  for (const [pattern, s, want] of cases) assert.equal(globToRegExp(pattern).test(s), want, `${pattern} vs ${s}`);
  for (const bad of ['[', 'a[b', 'x\\', '[z-a]', '[]a]', '[a-]', '[-a]', '[a', '[^]']) assert.throws(() => globToRegExp(bad), ValidationError, bad);
});

test('referenceMatches: the familiar name:tag, then the name alone', () => {
  const refs = ['docker.io/library/busybox:latest', 'docker.io/user/app:1', '127.0.0.1:5000/ns/app@sha256:' + 'a'.repeat(64)];
  const m = (p: string) => referenceMatches(globToRegExp(p), refs);
  assert.ok(m('busybox'));
  assert.ok(m('busybox:latest'));
  assert.ok(!m('docker.io/library/busybox'), 'the familiar form, as Docker matches');
  assert.ok(m('user/*'));
  assert.ok(m('*/app:1'));
  assert.ok(m('127.0.0.1:5000/ns/app'));
  assert.ok(m('127.0.0.1:5000/ns/app@sha256:*'));
  assert.ok(!m('app'));
});

test('labelMatches: key, key=value, negation', () => {
  const labels = { a: '1', b: '', 'x=y': 'z' };
  assert.ok(labelMatches(labels, 'a'));
  assert.ok(labelMatches(labels, 'a=1'));
  assert.ok(!labelMatches(labels, 'a=2'));
  assert.ok(labelMatches(labels, 'b='));
  assert.ok(!labelMatches(labels, 'c'));
  assert.ok(labelMatches(labels, '!c'));
  assert.ok(!labelMatches(labels, '!a'));
  assert.ok(labelMatches(labels, '!a=2'));
  assert.ok(!labelMatches(undefined, 'a'));
  assert.ok(!labelMatches(labels, 'toString'), 'no prototype keys');
});

test('normaliseFilters: names checked, values to strings, both API shapes', () => {
  const allowed = ['reference', 'dangling', 'label'];
  assert.deepEqual([...normaliseFilters({ reference: 'a', dangling: true, label: ['x', 'y'] }, allowed)], [['reference', ['a']], ['dangling', ['true']], ['label', ['x', 'y']]]);
  assert.deepEqual([...normaliseFilters({ reference: ['a', 'b'] }, allowed)], [['reference', ['a', 'b']]]);
  assert.deepEqual([...normaliseFilters(undefined, allowed)], []);
  assert.deepEqual([...normaliseFilters({ reference: undefined }, allowed)], []);
  assert.throws(() => normaliseFilters({ refrence: 'a' }, allowed), (e: unknown) => e instanceof ValidationError && e.option === 'filters.refrence' && /known: reference, dangling, label/.test(e.message));
  assert.throws(() => normaliseFilters('dangling=true', allowed), ValidationError);
  assert.throws(() => normaliseFilters({ label: [{}] }, allowed), (e: unknown) => e instanceof ValidationError && e.option === 'filters.label[0]');
  assert.equal(danglingFilter(normaliseFilters({ dangling: 'TRUE' }, allowed)), true);
  assert.equal(danglingFilter(normaliseFilters({ dangling: ['0'] }, allowed)), false);
  assert.equal(danglingFilter(normaliseFilters({}, allowed)), undefined);
  assert.throws(() => danglingFilter(normaliseFilters({ dangling: ['true', 'false'] }, allowed)), /single value/);
});
