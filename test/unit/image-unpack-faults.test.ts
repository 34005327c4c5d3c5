/**
 * lib/image/unpack.ts when the disk fills up mid-layer, against the recording fake of the
 * native contract passing through to the real confined file-system calls on a temp dir: the
 * failure names the tar entry, nothing after it is attempted, and aborting the applier leaves
 * no descriptor or writer thread behind (the caller then removes the temp dir; nothing of it
 * was ever visible in the store).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSystemError } from '../../lib/errors.js';
import { closePrivateRoot, openPrivateRoot } from '../../lib/image/fs-ops.js';
import { UnsafeLayerEntryError } from '../../lib/image/errors.js';
import { LayerApplier, applyLayer } from '../../lib/image/unpack.js';
import { native, type FsEntrySpec, type WritePoolHandle } from '../../lib/native.js';
import { NativeFake } from '../helpers/native-fake.js';
import { buildTar } from '../helpers/tar-builder.js';
import { newFdsSince, openFds, threadCount } from '../helpers/leaks.js';

let work: string;
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'berth-unpack-faults-'));
  // libuv starts its thread pool on first use: start it now, so that it does not count as a
  // thread the applier left behind.
  await stat(work);
});
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;

async function applyWith(fake: NativeFake, tar: Buffer, parallel: number): Promise<unknown> {
  const dir = join(work, `d${n++}`);
  mkdirSync(dir);
  const root = openPrivateRoot(dir, fake.binding);
  const applier = new LayerApplier(root, 'layer', 'sha256:t', fake.binding, { parallel });
  try {
    await applyLayer([tar], applier, { layer: 'sha256:t', compression: 'none' });
    applier.finish();
    return undefined;
  } catch (error) {
    return error;
  } finally {
    applier.abort();
    closePrivateRoot(root, fake.binding);
  }
}

test('ENOSPC creating an entry mid-layer: a SystemError naming the entry; nothing after it is attempted', async () => {
  const fake = new NativeFake({ delegate: native() }).fail('fsMakeEntry', 'ENOSPC', {
    syscall: 'openat2',
    when: (_root, entry) => (entry as FsEntrySpec).path === 'd/b',
  });
  const fds = openFds();
  const tar = buildTar([{ name: 'd/', type: 'dir' }, { name: 'd/a', content: 'a' }, { name: 'd/b', content: 'b' }, { name: 'd/c', content: 'c' }]);
  const error = await applyWith(fake, tar, 0);
  assert.ok(isSystemError(error), String(error));
  assert.equal(error.code, 'ENOSPC');
  assert.equal(error.path, 'd/b');
  assert.match(error.message, /layer sha256:t: entry "d\/b"/);
  const made = fake.callsOf('fsMakeEntry').map((c) => (c.args[1] as FsEntrySpec).path);
  assert.deepEqual(made, ['d', 'd/a', 'd/b'], 'the layer stops at the failure');
  assert.deepEqual(newFdsSince(fds), [], 'the open file of the entry before is closed on abort');
});

test('ENOSPC on a write-pool thread: the barrier reports it with the queued entry\'s name; threads stop', async () => {
  const fake = new NativeFake({ delegate: native() }).fail('fsWritePoolBarrier', 'ENOSPC', { syscall: 'write', path: 'f3' });
  const fds = openFds();
  const threads = threadCount();
  const tar = buildTar(Array.from({ length: 8 }, (_, i) => ({ name: `f${i}`, content: `file ${i}` })));
  const error = await applyWith(fake, tar, 2);
  assert.ok(isSystemError(error), String(error));
  assert.equal(error.code, 'ENOSPC');
  assert.match(error.message, /entry "f3"/);
  assert.ok(fake.callsOf('fsWritePoolSubmit').length > 0, 'the files went to the pool');
  assert.ok(fake.names().includes('fsWritePoolClose'), 'the pool is closed on abort');
  assert.deepEqual(newFdsSince(fds), []);
  assert.ok(threadCount() <= threads, 'the write pool\'s threads are gone');
});

test('EINTR finishing a file is not swallowed: the layer fails with a typed error', async () => {
  const fake = new NativeFake({ delegate: native() }).fail('fsFinishFile', 'EINTR', { syscall: 'fchown', after: 1 });
  const error = await applyWith(fake, buildTar([{ name: 'a', content: 'a' }, { name: 'b', content: 'b' }, { name: 'c', content: 'c' }]), 0);
  assert.ok(isSystemError(error) && error.code === 'EINTR' && /entry "b"/.test(error.message), String(error));
});

// Symlinks are new inodes like files (a busybox layer is hundreds of them): the pool creates
// them, and what depends on one (a child below it, a hard link to it) waits for it.
test('parallel: new symlinks are created by the pool; a queued symlink as a parent is refused, a hard link to one waits for it', async () => {
  const fake = new NativeFake({ delegate: native() });
  const dir = join(work, `d${n}`);
  const tar = buildTar([
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/busybox', content: 'ELF' },
    ...Array.from({ length: 20 }, (_, i) => ({ name: `bin/app${i}`, type: 'symlink' as const, linkname: 'busybox', uid: 1000, gid: 1000, mtime: 1600000000 + i })),
    { name: 'hl', type: 'link', linkname: 'bin/app3' },
  ]);
  assert.equal(await applyWith(fake, tar, 2), undefined);
  const submitted = fake.callsOf('fsWritePoolSubmit').filter((c) => (c.args[3] as { symlink?: string }).symlink === 'busybox').map((c) => c.args[1]);
  assert.equal(submitted.length, 20, 'every new symlink went to the pool');
  assert.ok(!fake.callsOf('fsMakeEntry').some((c) => (c.args[1] as FsEntrySpec).kind === 'symlink'), 'no symlink made on the JS thread');
  const st = lstatSync(join(dir, 'bin/app3'));
  assert.ok(st.isSymbolicLink() && readlinkSync(join(dir, 'bin/app3')) === 'busybox');
  assert.deepEqual([st.uid, st.gid, st.mtimeMs], [1000, 1000, 1600000003000], 'owner and mtime set by the worker');
  assert.equal(lstatSync(join(dir, 'hl')).ino, st.ino, 'the hard link to a queued symlink links the symlink');

  const escape = buildTar([{ name: 'evil', type: 'symlink', linkname: '/' }, { name: 'evil/tmp/escape', content: 'x' }]);
  const error = await applyWith(new NativeFake({ delegate: native() }), escape, 2);
  assert.ok(error instanceof UnsafeLayerEntryError, String(error));
  assert.ok(!(await stat('/tmp/escape').then(() => true, () => false)), 'nothing written through the queued symlink');
});

// A full queue is waited for between pieces of input, not inside fsWritePoolSubmit: the event
// loop stays free for the other layers of a pull (and the embedding program).
test('room(): a full write pool is waited for without holding the event loop; a signal stops the wait', async () => {
  const real = native();
  let full = 3;
  const fake = new NativeFake({ delegate: real }).stub('fsWritePoolHasRoom', (pool) => (full-- > 0 ? false : real.fsWritePoolHasRoom(pool)));
  const dir = join(work, `d${n++}`);
  mkdirSync(dir);
  const root = openPrivateRoot(dir, fake.binding);
  const applier = new LayerApplier(root, 'layer', 'sha256:t', fake.binding, { parallel: 2 });
  try {
    let timerRan = false;
    setTimeout(() => { timerRan = true; }, 0);
    await applyLayer([buildTar(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, content: `file ${i}` })))], applier, { layer: 'sha256:t', compression: 'none' });
    assert.ok(fake.callsOf('fsWritePoolHasRoom').length >= 4, 'it asked the pool until it had room');
    assert.ok(timerRan, 'timers ran while it waited');
    full = Infinity;
    const aborted = new AbortController();
    aborted.abort(new Error('stop'));
    await assert.rejects(applier.room(aborted.signal), /stop/);
    full = 0;
    applier.finish();
    assert.equal(readFileSync(join(dir, 'f7'), 'utf8'), 'file 7');
  } finally {
    applier.abort();
    closePrivateRoot(root, fake.binding);
  }
});

// pull awaits this before a layer's synchronous drain: while one layer's files are still being
// written, the event loop must stay free for the other layers in flight.
test('settled(): waits for the pool without holding the event loop; the drain after it has nothing left to wait for', async () => {
  const real = native();
  let idleCalls = 0;
  const fake = new NativeFake({ delegate: real }).stub('fsWritePoolIdle', (pool) => ++idleCalls > 3 && real.fsWritePoolIdle(pool));
  const dir = join(work, `d${n++}`);
  mkdirSync(dir);
  const root = openPrivateRoot(dir, fake.binding);
  const applier = new LayerApplier(root, 'layer', 'sha256:t', fake.binding, { parallel: 2 });
  try {
    await applyLayer([buildTar(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, content: `file ${i}` })))], applier, { layer: 'sha256:t', compression: 'none' });
    let timerRan = false;
    setTimeout(() => { timerRan = true; }, 0);
    await applier.settled();
    assert.ok(idleCalls >= 4, 'it asked the pool until it was idle');
    assert.ok(timerRan, 'timers ran while it waited');
    assert.ok(real.fsWritePoolIdle(fake.callsOf('fsWritePoolIdle')[0]!.args[0] as WritePoolHandle), 'the pool is idle when it resolves');
    const aborted = new AbortController();
    aborted.abort(new Error('stop'));
    await applier.settled(aborted.signal); // the pool is idle: nothing to wait for, so nothing to abort
    applier.finish();
    assert.equal(readFileSync(join(dir, 'f7'), 'utf8'), 'file 7');
  } finally {
    applier.abort();
    closePrivateRoot(root, fake.binding);
  }
});
