/**
 * The ext4 placement hint (FS_TOPDIR_FL, `chattr +T`) that spreads layer dirs and unpacked
 * trees over inode groups (docs/design/images.md, "Where new inodes go"): the native call sets
 * and clears exactly that flag, read back with `lsattr`; the store's tmp/ carries it, its other
 * directories do not; unpack() uses it while it fills the destination, renames each top-level
 * directory from a temporary name, and leaves the destination's flag as it found it.
 * On a file system without the flag the call says so (null) and nothing else changes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as FS, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from '../../lib/image/content-store.js';
import { ImageService } from '../../lib/image/image-service.js';
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

test('unpack() spreads top-level dirs, leaves no temporary name, and restores the destination flag', { skip: onExt(tmpdir()) ? false : `${tmpdir()} is not ext2/3/4` }, async () => {
  const src = join(work, 'rootfs');
  mkdirSync(join(src, 'usr/bin'), { recursive: true, mode: 0o755 });
  mkdirSync(join(src, 'etc'), { mode: 0o750 });
  execFileSync('sh', ['-c', `for i in $(seq 1 50); do echo $i > ${src}/usr/bin/f$i; done; echo x > ${src}/etc/hostname; echo top > ${src}/top-file; touch -d @1600000000 ${src}/etc`]);
  const tar = join(work, 'rootfs.tar');
  execFileSync('tar', ['-C', src, '-cf', tar, '.']);
  const svc = new ImageService(join(work, 'state'));
  await svc.import(tar, { ref: 'test/topdir:1' });

  const plain = join(work, 'dest-plain');
  await svc.unpack('test/topdir:1', plain);
  assert.ok(!attrs(plain).includes('T'), 'the flag is cleared again');
  assert.deepEqual(readdirSync(plain).sort(), ['etc', 'top-file', 'usr'], 'no temporary names left');
  assert.equal(readdirSync(join(plain, 'usr/bin')).length, 50);
  assert.equal(statSync(join(plain, 'etc')).mode & 0o7777, 0o750);
  assert.equal(statSync(join(plain, 'etc')).mtimeMs, 1600000000 * 1000, 'a renamed dir keeps the mtime of the image');

  const marked = join(work, 'dest-marked');
  mkdirSync(marked);
  withDirFd(marked, (fd) => native().fsSetTopDir(fd, true));
  await svc.unpack('test/topdir:1', marked);
  assert.ok(attrs(marked).includes('T'), 'a flag the user had set stays');
  assert.deepEqual(readdirSync(marked).sort(), ['etc', 'top-file', 'usr']);
});
