/**
 * `list()`'s liveness checks (lib/state/process-liveness.ts) against real processes: a process
 * that exits is dead at the next check although it was confirmed a moment before; a recorded
 * identity whose start time is not the live process's is never taken for it; within the
 * window a confirmed process is not read again, after it it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { LivenessCache } from '../../lib/state/process-liveness.js';
import { identityOf } from '../../lib/state/process-identity.js';

test('a confirmed process that exits is dead at the next check; a wrong start time is never alive', async () => {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const id = identityOf(child.pid!);
    assert.ok(id, 'the child is visible in /proc');
    const cache = new LivenessCache(60_000);
    assert.equal(cache.begin()(id), true);
    assert.equal(cache.size, 1);
    const other = { pid: id.pid, startTime: String(Number(id.startTime) + 1) };
    assert.equal(cache.begin()(other), false, 'same pid, other start time: a reused pid is not the recorded process');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(cache.begin()(id), false, 'an exited (reaped) process is dead at once, inside the trust window');
    assert.equal(cache.begin()(undefined), false);
    assert.equal(cache.begin()({ pid: 0, startTime: '0' }), false);
  } finally {
    child.kill('SIGKILL');
  }
});

test('within the window a confirmed pid is not read again (the documented trade); with a zero window it is', async () => {
  // `sleep 0.3` becomes a zombie under a parent (`exec sleep 60`) that never reaps: its pid stays
  // in /proc, and only /proc/<pid>/stat says it is dead.
  const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const id = identityOf(Number(line.toString().trim()))!;
    assert.ok(id, 'the short sleep is visible in /proc');
    const trusting = new LivenessCache(60_000);
    const strict = new LivenessCache(0);
    assert.equal(trusting.begin()(id), true);
    assert.equal(strict.begin()(id), true);
    for (let i = 0; i < 100 && identityOf(id.pid) !== undefined && strict.begin()(id); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(identityOf(id.pid), 'the exited sleep is a zombie, still in /proc');
    assert.equal(strict.begin()(id), false, 'read again: a zombie is dead');
    assert.equal(trusting.begin()(id), true, 'inside the window the confirmed pid is not read again');
  } finally {
    parent.kill('SIGKILL');
    await once(parent, 'exit').catch(() => undefined);
  }
});
