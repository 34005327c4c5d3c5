import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../lib/errors.js';
import { parseDuration } from '../../lib/containers/duration.js';
import { parseGoDuration } from '../../lib/units.js';

describe('duration options', () => {
  test('Go durations and numbers of milliseconds', () => {
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('500ms'), 500);
    assert.equal(parseGoDuration('1h'), 3_600_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('5'), undefined);
    assert.equal(parseDuration(250, 'x'), 250);
    assert.equal(parseDuration('2s', 'x'), 2000);
    assert.throws(() => parseDuration(-1, 'x'), /x: must be milliseconds/);
    assert.throws(() => parseDuration('soon', 'x'), ValidationError);
  });
});
