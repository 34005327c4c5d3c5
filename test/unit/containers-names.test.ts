import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../lib/errors.js';
import { generateName, normalizeName } from '../../lib/containers/names.js';

describe('names', () => {
  test('Docker\'s name rule; a leading slash is dropped', () => {
    assert.equal(normalizeName('/web-1'), 'web-1');
    assert.equal(normalizeName('a.b_c-d'), 'a.b_c-d');
    for (const bad of ['', 'a', '-x', 'has space', 'x/y', 'ü1', 42]) assert.throws(() => normalizeName(bad), ValidationError, String(bad));
  });

  test('generated names are valid names', () => {
    for (let i = 0; i < 50; i++) {
      const n = generateName();
      assert.equal(normalizeName(n), n);
    }
  });
});
