/**
 * lib/native.ts: the one contract and the one error rule (docs/design/errors.md), checked
 * against the real addon; and the recording fake checked against the same contract.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError, NotFoundError, SystemError, isSystemError } from '../../lib/errors.js';
import { fromNativeError, native } from '../../lib/native.js';
import { NativeFake } from '../helpers/native-fake.js';

test('the addon exports exactly the declared contract, and the fake implements the same', () => {
  const real = Object.keys(native()).sort();
  assert.deepEqual(real, Object.keys(new NativeFake().binding).sort());
  assert.ok(!real.includes('closeFd') && !real.includes('netnsPoolFds'));
  assert.ok(Object.isFrozen(native()), 'nobody patches the shared binding: inject a fake instead');
});

test('a failing syscall arrives as a SystemError built by the addon, in the one message format', () => {
  assert.throws(() => native().fsOpenRoot('/nonexistent/berth'), (e: unknown) => {
    assert.ok(e instanceof SystemError, String(e));
    assert.ok(isSystemError(e));
    assert.equal(e.code, 'ENOENT');
    assert.equal(e.errno, 2);
    assert.equal(e.syscall, 'open');
    assert.equal(e.path, '/nonexistent/berth');
    assert.equal(e.message, "open '/nonexistent/berth': No such file or directory");
    return true;
  });
  const root = native().fsOpenRoot('/');
  try {
    assert.throws(() => native().fsRemoveAt(root, '../x'), (e: unknown) => isSystemError(e) && e.code === 'EINVAL' && e.message === "openat2 '../x': Invalid argument");
  } finally {
    native().fsCloseRoot(root);
  }
});

test('zstd failures carry an errno: EINVAL for what is not a frame, EIO for input that stops inside one', () => {
  const z = native().zstdCreate();
  assert.throws(() => native().zstdDecompress(z, Buffer.from('definitely not zstd'), 0), (e: unknown) => isSystemError(e) && e.code === 'EINVAL' && e.syscall === 'zstd');
  const t = native().zstdCreate();
  native().zstdDecompress(t, Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 0); // a frame's magic, then nothing
  assert.throws(() => native().zstdEnd(t), (e: unknown) => isSystemError(e) && e.code === 'EIO' && e.syscall === 'zstd' && /middle of a frame/.test(e.message));
});

test('fromNativeError: the one converter', () => {
  const thrown = new SystemError('EBUSY', "umount2 '/x': Device or resource busy", { errno: 16, syscall: 'umount2', path: '/x' });
  assert.equal(fromNativeError(thrown), thrown, 'nothing to add: the same error');
  const hinted = fromNativeError(thrown, { context: 'removing volume v', path: '/var/lib/berth/volumes/v', hint: (e) => (e.code === 'EBUSY' ? 'still mounted somewhere?' : undefined) });
  assert.ok(isSystemError(hinted));
  assert.equal(hinted.message, "removing volume v: umount2 '/x': Device or resource busy: still mounted somewhere?");
  assert.equal(hinted.path, '/var/lib/berth/volumes/v');
  assert.equal(hinted.syscall, 'umount2');
  assert.equal(hinted.cause, thrown);
  // As data: the detached monitor's JSON status, an exec failure.
  const data = fromNativeError({ code: 'ENOENT', errno: 2, syscall: 'execve', path: '/bin/x', message: "execve '/bin/x': No such file or directory" });
  assert.ok(data instanceof SystemError && data.errno === 2 && data.path === '/bin/x');
  const other = new NotFoundError('no such image');
  assert.equal(fromNativeError(other), other);
  const unknown = fromNativeError(new TypeError('fsOpenRoot(dir: string)'));
  assert.ok(unknown instanceof BerthError && unknown.code === 'ERR_NATIVE' && !isSystemError(unknown));
});

test('the fake: records calls, injects errnos per call, rejects for async members', async () => {
  const fake = new NativeFake()
    .stub('sendSignal', () => true)
    .fail('sendSignal', 'ESRCH', { after: 1, syscall: 'pidfd_send_signal' })
    .fail('netDeleteLink', 'EBUSY', { when: (name) => name === 'br0' });
  assert.equal(fake.binding.sendSignal(3, 15), true);
  assert.throws(() => fake.binding.sendSignal(3, 9), (e: unknown) => isSystemError(e) && e.code === 'ESRCH' && e.errno === 3 && e.syscall === 'pidfd_send_signal');
  assert.equal(fake.binding.sendSignal(3, 9), true, 'once by default');
  await assert.rejects(fake.binding.netDeleteLink('br0'), (e: unknown) => isSystemError(e) && e.code === 'EBUSY');
  await assert.rejects(fake.binding.netDeleteLink('br1'), (e: unknown) => isSystemError(e) && e.code === 'ENOSYS', 'unscripted without a delegate');
  assert.deepEqual(fake.calls.map((c) => [c.name, c.failed]), [
    ['sendSignal', undefined],
    ['sendSignal', 'ESRCH'],
    ['sendSignal', undefined],
    ['netDeleteLink', 'EBUSY'],
    ['netDeleteLink', undefined],
  ]);
});
