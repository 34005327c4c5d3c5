/**
 * The ext4 placement hint (FS_TOPDIR_FL, `chattr +T`) that spreads layer dirs over inode
 * groups (docs/design/images.md, "Where new inodes go"): the native call sets
 * and clears exactly that flag, read back with `lsattr`; the store's tmp/ carries it, its other
 * directories do not.
 * On a file system without the flag the call says so (null) and nothing else changes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as FS, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from '../../lib/image/content-store.js';
import { native } from '../../lib/native.js';
import { NativeFake } from '../helpers/native-fake.js';

let work: string;
before(() => { work = mkdtempSync(join(tmpdir(), 'berth-topdir-')); });
after(() => rmSync(work, { recursive: true, force: true }));

/** Whether the directory is on ext2/3/4 (`stat -f`), the file systems that have the flag. */
const onExt = (dir: string) => execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim().startsWith('ext2');
/** The directory's own attribute letters, as `lsattr -d` prints them. */
const attrs = (dir: string) => execFileSync('lsattr', ['-d', dir], { encoding: 'utf8' }).trim().split(/\s+/)[0]!;
const withDirFd = <T>(dir: string, fn: (fd: number) => T): T => {
  const fd = openSync(dir, FS.O_RDONLY | FS.O_DIRECTORY);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
};

test('fsSetTopDir sets and clears FS_TOPDIR_FL and reports the state before', { skip: onExt(tmpdir()) ? false : `${tmpdir()} is not ext2/3/4` }, () => {
  const dir = mkdtempSync(join(work, 'flag-'));
  assert.ok(!attrs(dir).includes('T'));
  withDirFd(dir, (fd) => {
    assert.equal(native().fsSetTopDir(fd, true), false);
    assert.ok(attrs(dir).includes('T'), attrs(dir));
    assert.equal(native().fsSetTopDir(fd, true), true);
    assert.equal(native().fsSetTopDir(fd, false), true);
    assert.ok(!attrs(dir).includes('T'), attrs(dir));
    assert.equal(native().fsSetTopDir(fd, false), false);
  });
});

test('fsSetTopDir: null where the file system has no such flag (tmpfs), a TypeError for bad arguments', () => {
  const dev = '/dev/shm';
  if (execFileSync('stat', ['-f', '-c', '%T', dev], { encoding: 'utf8' }).trim() === 'tmpfs') {
    const dir = mkdtempSync(join(dev, 'berth-topdir-'));
    try {
      withDirFd(dir, (fd) => assert.equal(native().fsSetTopDir(fd, true), null));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  assert.throws(() => native().fsSetTopDir(-1, true), TypeError);
  assert.throws(() => (native().fsSetTopDir as (fd: number, on: unknown) => unknown)(0, 'yes'), TypeError);
});

test('the store marks tmp/, where layer dirs are made; a failing hint does not fail init', { skip: onExt(tmpdir()) ? false : `${tmpdir()} is not ext2/3/4` }, async () => {
  const s = new ContentStore(join(work, 'store'));
  await s.init();
  assert.ok(attrs(s.tmpDir).includes('T'), attrs(s.tmpDir));
  assert.ok(!attrs(s.layersDir).includes('T'));
  const fake = new NativeFake();
  fake.fail('fsSetTopDir', 'EPERM');
  const refused = new ContentStore(join(work, 'store-refused'), { native: fake.binding });
  await refused.init();
  assert.equal(fake.callsOf('fsSetTopDir').length, 1);
  assert.ok(!attrs(refused.tmpDir).includes('T'));
});
