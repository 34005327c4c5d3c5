import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../lib/errors.js';
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, nextBackoff, parseRestartPolicy, shouldRestart } from '../../lib/containers/restart-policy.js';

describe('restart policy', () => {
  test('parses Docker\'s strings and objects', () => {
    assert.deepEqual(parseRestartPolicy(undefined), { name: 'no', maximumRetryCount: 0 });
    assert.deepEqual(parseRestartPolicy('always'), { name: 'always', maximumRetryCount: 0 });
    assert.deepEqual(parseRestartPolicy('unless-stopped'), { name: 'unless-stopped', maximumRetryCount: 0 });
    assert.deepEqual(parseRestartPolicy('on-failure'), { name: 'on-failure', maximumRetryCount: 0 });
    assert.deepEqual(parseRestartPolicy('on-failure:2'), { name: 'on-failure', maximumRetryCount: 2 });
    assert.deepEqual(parseRestartPolicy({ name: 'on-failure', maximumRetryCount: 5 }), { name: 'on-failure', maximumRetryCount: 5 });
    for (const bad of ['sometimes', 'always:3', 'on-failure:-1', 'on-failure:x', 3]) {
      assert.throws(() => parseRestartPolicy(bad), ValidationError, String(bad));
    }
    assert.throws(() => parseRestartPolicy({ name: 'always', maximumRetryCount: 2 }), /only valid with "on-failure"/);
  });

  test('on-failure:2 allows exactly two restarts of a failing container, none after success', () => {
    const p = parseRestartPolicy('on-failure:2');
    assert.equal(shouldRestart(p, { exitCode: 1, manuallyStopped: false, retries: 0 }), true);
    assert.equal(shouldRestart(p, { exitCode: 1, manuallyStopped: false, retries: 1 }), true);
    assert.equal(shouldRestart(p, { exitCode: 1, manuallyStopped: false, retries: 2 }), false);
    assert.equal(shouldRestart(p, { exitCode: 0, manuallyStopped: false, retries: 0 }), false);
    assert.equal(shouldRestart(parseRestartPolicy('on-failure'), { exitCode: 1, manuallyStopped: false, retries: 1000 }), true);
  });

  test('always and unless-stopped restart after any exit but never after a manual stop; no never', () => {
    for (const name of ['always', 'unless-stopped'] as const) {
      const p = parseRestartPolicy(name);
      assert.equal(shouldRestart(p, { exitCode: 0, manuallyStopped: false, retries: 99 }), true);
      assert.equal(shouldRestart(p, { exitCode: 137, manuallyStopped: true, retries: 0 }), false);
    }
    assert.equal(shouldRestart(parseRestartPolicy('no'), { exitCode: 1, manuallyStopped: false, retries: 0 }), false);
  });

  test('backoff doubles from 100 ms, caps at one minute, resets after a 10 s run', () => {
    let b = 0;
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      b = nextBackoff(b, 50);
      seen.push(b);
    }
    assert.deepEqual(seen.slice(0, 4), [100, 200, 400, 800]);
    assert.equal(seen[seen.length - 1], BACKOFF_MAX_MS);
    assert.equal(nextBackoff(6400, 10_000), BACKOFF_INITIAL_MS);
  });
});
