import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../lib/errors.js';
import { parseDuration, parseTimePoint } from '../../lib/containers/duration.js';
import { parseGoDuration } from '../../lib/units.js';

describe('durations and time points', () => {
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

  test('since/until: Date, RFC 3339, Unix seconds, duration before now', () => {
    const now = Date.parse('2026-01-01T00:10:00Z');
    assert.equal(parseTimePoint(new Date(now), 'since', now), now);
    assert.equal(parseTimePoint('2026-01-01T00:00:00Z', 'since', now), Date.parse('2026-01-01T00:00:00Z'));
    assert.equal(parseTimePoint(1_700_000_000, 'since', now), 1_700_000_000_000);
    assert.equal(parseTimePoint('1700000000.5', 'since', now), 1_700_000_000_500);
    assert.equal(parseTimePoint('10m', 'since', now), now - 600_000);
    assert.throws(() => parseTimePoint('yesterday', 'since', now), /since: must be/);
  });
});
