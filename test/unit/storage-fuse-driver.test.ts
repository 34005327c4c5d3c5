/**
 * The fuse-overlayfs driver without its daemon: the root it asks the launch to bind, what it
 * refuses, and its reader of the markers fuse-overlayfs writes in an upper dir (made here by
 * hand, as fuse-overlayfs writes them on a filesystem that refuses whiteout devices).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UnsupportedError } from '../../lib/errors.js';
import { MergedView, ConfinedDir } from '../../lib/image/merged-view.js';
import { isWhiteout } from '../../lib/image/overlay-format.js';
import { MountOpKind } from '../../lib/native.js';
import { fuseOverlayfsDriver } from '../../lib/storage/fuse-overlayfs-driver.js';
import { FuseUpperDir } from '../../lib/storage/fuse-upper-dir.js';
import { storageDriverNamed } from '../../lib/storage/select.js';

const MS_BIND = 0x1000;
const MS_REMOUNT = 0x20;
const MS_NODEV = 0x4;
const MS_NOSUID = 0x2;

describe('fuse-overlayfs root', () => {
  const layer = { upperDir: '/state/containers/c1/upper', workDir: '/state/containers/c1/work' };
  it('binds the host-side merged mount as the root, nodev and nosuid, and enters it', () => {
    assert.equal(storageDriverNamed('fuse-overlayfs'), fuseOverlayfsDriver);
    const ops = fuseOverlayfsDriver.rootMountOps({ lowerDirs: ['/layers/a'], layer, stagingDir: '/run/s', userns: false, flags: MS_NODEV | MS_NOSUID });
    assert.deepEqual(ops.map((o) => o.kind), [MountOpKind.MkdirHost, MountOpKind.Mount, MountOpKind.Mount, MountOpKind.EnterRoot]);
    assert.equal(ops[1]!.source, '/state/containers/c1/merged');
    assert.equal(ops[1]!.flags! & MS_BIND, MS_BIND);
    assert.equal(ops[2]!.flags, MS_REMOUNT | MS_BIND | MS_NODEV | MS_NOSUID);
    assert.equal(fuseOverlayfsDriver.graphDriverData(layer, ['/layers/a']).MergedDir, '/state/containers/c1/merged');
  });

  it('refuses a launch without a layer and a user-namespaced one, with typed errors', () => {
    assert.throws(() => fuseOverlayfsDriver.rootMountOps({ lowerDirs: ['/l'], stagingDir: '/run/s', userns: false, flags: 0 }), UnsupportedError);
    assert.throws(() => fuseOverlayfsDriver.rootMountOps({ lowerDirs: ['/l'], layer, stagingDir: '/run/s', userns: true, flags: 0 }), (e: Error) => e instanceof UnsupportedError && /userns/.test(e.message));
  });
});

describe('fuse-overlayfs upper dir read as overlay', { skip: process.getuid?.() !== 0 ? 'needs root (trusted xattrs)' : false }, () => {
  it('reads .wh. files as whiteouts, .wh..wh..opq as opaque, and hides the markers', () => {
    const base = mkdtempSync(join(tmpdir(), 'berth-fuse-upper-'));
    try {
      const lower = join(base, 'lower');
      const upper = join(base, 'upper');
      for (const d of ['etc', 'bin', 'var/cache']) mkdirSync(join(lower, d), { recursive: true });
      writeFileSync(join(lower, 'bin/cat'), 'cat');
      writeFileSync(join(lower, 'etc/passwd'), 'root');
      writeFileSync(join(lower, 'var/cache/x'), 'x');
      mkdirSync(join(upper, 'bin'), { recursive: true });
      mkdirSync(join(upper, 'var/cache'), { recursive: true });
      writeFileSync(join(upper, 'bin/.wh.cat'), '');
      writeFileSync(join(upper, '.wh.etc'), '');
      writeFileSync(join(upper, 'var/cache/.wh..wh..opq'), '');
      writeFileSync(join(upper, 'var/cache/new'), 'n');
      const dir = FuseUpperDir.openUpper(upper);
      try {
        assert.deepEqual(dir.readdir(''), ['bin', 'etc', 'var']);
        assert.deepEqual(dir.readdir('bin'), ['cat']);
        assert.ok(isWhiteout(dir.lstat('bin/cat')!), 'bin/cat reads as a whiteout');
        assert.equal(dir.lstat('bin/.wh.cat'), null, 'the marker itself is not a name');
        assert.equal(dir.isOpaque('var/cache'), true);
        assert.deepEqual(dir.readdir('var/cache'), ['new']);
      } finally {
        dir.close();
      }
      const view = new MergedView([FuseUpperDir.openUpper(upper), ConfinedDir.open(lower)]);
      try {
        assert.deepEqual([...view.walk()].map((e) => e.path), ['bin', 'var', 'var/cache', 'var/cache/new']);
      } finally {
        view.close();
      }
      assert.deepEqual(fuseOverlayfsDriver.changes(
        { upperDir: upper, workDir: join(base, 'work') },
        [lower],
      ).map((c) => `${c.kind} ${c.path}`).sort(), ['C /bin', 'C /var', 'C /var/cache', 'D /bin/cat', 'D /etc', 'D /var/cache/x', 'A /var/cache/new'].sort());
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
