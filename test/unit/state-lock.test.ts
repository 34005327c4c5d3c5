/**
 * lib/state/lock.ts against the recording fake of the native contract: the flock outcomes a
 * real kernel rarely gives (ENOLCK on a network file system, EINTR), contention, timeouts —
 * each reported as a typed error without leaking the lock file's descriptor.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConflictError, isSystemError } from '../../lib/errors.js';
import { native } from '../../lib/native.js';
import { LockDir, acquireFileLock, tryFileLock } from '../../lib/state/lock.js';
import { NativeFake } from '../helpers/native-fake.js';
import { newFdsSince, openFds } from '../helpers/leaks.js';

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'berth-lock-')); });
after(() => rmSync(dir, { recursive: true, force: true }));


test('ENOLCK from flock: a SystemError, and the lock file is closed again', async () => {
  const fake = new NativeFake().fail('fsFlock', 'ENOLCK', { syscall: 'flock', times: Infinity });
  const before = openFds();
  await assert.rejects(
    acquireFileLock(join(dir, 'a.lock'), { what: 'lock a', native: fake.binding }),
    (e: unknown) => isSystemError(e) && e.code === 'ENOLCK' && e.syscall === 'flock',
  );
  assert.throws(() => tryFileLock(join(dir, 'a.lock'), 'shared', fake.binding), (e: unknown) => isSystemError(e) && e.code === 'ENOLCK');
  assert.deepEqual(newFdsSince(before), [], 'no descriptor left open');
});

test('EINTR from flock is reported as a typed error (the addon retries it; one that escapes is a failure, not a "held")', () => {
  const fake = new NativeFake().fail('fsFlock', 'EINTR');
  const before = openFds();
  assert.throws(() => tryFileLock(join(dir, 'b.lock'), 'exclusive', fake.binding), (e: unknown) => isSystemError(e) && e.code === 'EINTR');
  assert.deepEqual(newFdsSince(before), []);
});

test('contention: polls until flock succeeds, with the mode asked for', async () => {
  let busy = 2;
  const fake = new NativeFake().stub('fsFlock', () => busy-- <= 0);
  const lock = await acquireFileLock(join(dir, 'c.lock'), { what: 'lock c', mode: 'shared', firstDelayMs: 1, native: fake.binding });
  assert.deepEqual(fake.callsOf('fsFlock').map((c) => c.args[1]), ['shared', 'shared', 'shared']);
  lock.release();
  lock.release();
});

test('a lock never granted: ConflictError after the timeout, descriptor closed', async () => {
  const fake = new NativeFake().stub('fsFlock', () => false);
  const before = openFds();
  await assert.rejects(
    acquireFileLock(join(dir, 'd.lock'), { what: 'lock d', timeoutMs: 20, maxDelayMs: 2, native: fake.binding }),
    (e: unknown) => e instanceof ConflictError && /timed out waiting for lock d/.test(e.message),
  );
  assert.ok(fake.callsOf('fsFlock').length > 1);
  assert.deepEqual(newFdsSince(before), []);
});

test('LockDir hands its binding to every acquisition', async () => {
  const fake = new NativeFake({ delegate: native() });
  const locks = new LockDir(join(dir, 'root'), { native: fake.binding });
  await locks.with('x', () => {
    assert.equal(tryFileLock(locks.path('x'), 'exclusive'), undefined, 'held for real: the fake passed through to flock(2)');
  });
  assert.deepEqual(fake.callsOf('fsFlock').map((c) => c.args[1]), ['exclusive']);
});
