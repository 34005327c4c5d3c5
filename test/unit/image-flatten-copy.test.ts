/**
 * lib/image/flatten-copy.ts (`images.unpack()` from stored layer dirs) against real layer dirs
 * on disk, through the recording fake of the native contract: regular files and symlinks are
 * handed to the write pool, which copies the layer's content in the kernel (the JS thread reads
 * none of it), large files included, with their xattrs; the result is the merged tree; a file that cannot be
 * copied fails the unpack with a typed error naming it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBerthError } from '../../lib/errors.js';
import { copyMergedLayers } from '../../lib/image/flatten-copy.js';
import { native } from '../../lib/native.js';
import { NativeFake } from '../helpers/native-fake.js';
import { newFdsSince, openFds } from '../helpers/leaks.js';

let work: string;
before(() => { work = mkdtempSync(join(tmpdir(), 'berth-flatten-copy-')); });
after(() => rmSync(work, { recursive: true, force: true }));

const big = randomBytes(3 * 1024 * 1024 + 17); // above the 1 MiB the pool once took with content

/** Two layer dirs as a pull stores them: the lower one with files, the upper one deleting one. */
function layers(): { upper: string; lower: string } {
  const lower = mkdtempSync(join(work, 'lower-'));
  const upper = mkdtempSync(join(work, 'upper-'));
  mkdirSync(join(lower, 'usr/lib'), { recursive: true });
  writeFileSync(join(lower, 'usr/lib/big.bin'), big);
  for (let i = 0; i < 40; i++) writeFileSync(join(lower, 'usr/lib', `f${i}`), `small ${i}`, { mode: 0o640 });
  utimesSync(join(lower, 'usr/lib/f1'), 1600000000, 1600000000);
  writeFileSync(join(lower, 'usr/lib/linked'), 'two names');
  linkSync(join(lower, 'usr/lib/linked'), join(lower, 'usr/lib/linked2'));
  symlinkSync('big.bin', join(lower, 'usr/lib/alias'));
  writeFileSync(join(lower, 'gone'), 'deleted above');
  // A file's own xattr is content; overlay's markers are how a layer dir stores a deletion.
  const fd = native().fsOpenRoot(lower);
  native().fsSetXattrAt(fd, 'usr/lib/f3', 'user.note', Buffer.from('hi'));
  native().fsSetXattrAt(fd, 'usr/lib/f3', 'user.overlay.origin', Buffer.from('x'));
  native().fsCloseRoot(fd);
  mkdirSync(join(upper, 'usr'));
  writeFileSync(join(upper, 'usr/new'), 'from the upper layer');
  return { upper, lower };
}

async function copy(fake: NativeFake, dirs: string[]): Promise<{ dest: string; error: unknown }> {
  const dest = mkdtempSync(join(work, 'dest-'));
  const fd = fake.binding.fsOpenRoot(dest);
  try {
    await copyMergedLayers(fake.binding, dirs, fd, { devices: false, threads: 2, image: 'img' });
    return { dest, error: undefined };
  } catch (error) {
    return { dest, error };
  } finally {
    fake.binding.fsCloseRoot(fd);
  }
}

test('files of any size and symlinks go to the pool as kernel copies; the tree is the merged view', async () => {
  const { upper, lower } = layers();
  const fake = new NativeFake({ delegate: native() });
  const fds = openFds();
  const { dest, error } = await copy(fake, [upper, lower]);
  assert.equal(error, undefined, String(error));
  const submits = fake.callsOf('fsWritePoolSubmit').map((c) => [c.args[1], c.args[3]] as [string, unknown]);
  const copied = submits.filter(([, c]) => typeof c === 'object' && c !== null && 'copyFrom' in c).map(([p]) => p);
  assert.ok(copied.includes('usr/lib/big.bin') && copied.includes('usr/lib/f7') && copied.includes('usr/new'), copied.join(' '));
  assert.ok(submits.some(([p, c]) => p === 'usr/lib/alias' && (c as { symlink?: string }).symlink === 'big.bin'));
  assert.ok(!submits.some(([, c]) => Buffer.isBuffer(c)), 'no content read into JS');
  assert.ok(!fake.callsOf('fsOpenAt').some((c) => c.args[1] === 'usr/lib/big.bin'), 'the JS thread never opened the file to read it');
  assert.deepEqual(readFileSync(join(dest, 'usr/lib/big.bin')), big);
  assert.equal(readFileSync(join(dest, 'usr/lib/f5'), 'utf8'), 'small 5');
  assert.equal(lstatSync(join(dest, 'usr/lib/f5')).mode & 0o777, 0o640);
  assert.equal(lstatSync(join(dest, 'usr/lib/f1')).mtimeMs, 1600000000000);
  assert.equal(readlinkSync(join(dest, 'usr/lib/alias')), 'big.bin');
  assert.equal(lstatSync(join(dest, 'usr/lib/linked')).ino, lstatSync(join(dest, 'usr/lib/linked2')).ino, 'a hard-link group stays one inode');
  assert.equal(readFileSync(join(dest, 'usr/new'), 'utf8'), 'from the upper layer');
  const root = native().fsOpenRoot(dest);
  assert.deepEqual(native().fsListXattrsAt(root, 'usr/lib/f3').map(([k, v]) => [k, v.toString()]), [['user.note', 'hi']], 'xattrs copied on the pool thread, overlay\'s own left out');
  native().fsCloseRoot(root);
  assert.equal(readFileSync(join(dest, 'gone'), 'utf8'), 'deleted above'); // no whiteout in this upper layer
  assert.deepEqual(newFdsSince(fds), []);
});

test('a file that cannot be copied on a pool thread fails the unpack with a typed error naming it', async () => {
  const { upper, lower } = layers();
  // The source vanishes between the walk and the worker's open (as if the store were damaged).
  const fake = new NativeFake({ delegate: native() }).fail('fsWritePoolSubmit', 'EIO', {
    when: (_pool, path) => {
      if (path === 'usr/lib/f9') rmSync(join(lower, 'usr/lib/f9'));
      return false;
    },
  });
  const fds = openFds();
  const { error } = await copy(fake, [upper, lower]);
  assert.ok(isBerthError(error), String(error));
  assert.equal((error as { code?: string }).code, 'ENOENT');
  assert.match((error as Error).message, /unpack of img/);
  assert.match((error as Error).message, /usr\/lib\/f9/);
  assert.deepEqual(newFdsSince(fds), []);
});

test('more entries than the pool queues at once (8,192) all arrive: the queue blocks and drains, it does not stall', async () => {
  const lower = mkdtempSync(join(work, 'many-'));
  for (let d = 0; d < 3; d++) {
    mkdirSync(join(lower, `d${d}`));
    for (let i = 0; i < 3000; i++) writeFileSync(join(lower, `d${d}`, `f${i}`), '');
  }
  const { dest, error } = await copy(new NativeFake({ delegate: native() }), [lower]);
  assert.equal(error, undefined, String(error));
  for (let d = 0; d < 3; d++) assert.equal(readdirSync(join(dest, `d${d}`)).length, 3000);
});
