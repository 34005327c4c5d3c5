import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UnsupportedError, ValidationError } from '../../lib/errors.js';
import { MountOpKind } from '../../lib/native.js';
import type { StorageDriver } from '../../lib/storage/driver.js';
import { overlayDriver } from '../../lib/storage/overlay-driver.js';
import { withRunLayer } from '../../lib/storage/run-layer.js';
import { checkStorageDriverName, storageDriverNamed } from '../../lib/storage/select.js';
import { vfsDriver } from '../../lib/storage/vfs-driver.js';
import { btrfsDriver } from '../../lib/storage/btrfs-driver.js';
import { fuseOverlayfsDriver } from '../../lib/storage/fuse-overlayfs-driver.js';
import { isStoreLayerDir, layerSubvolumeOf } from '../../lib/storage/btrfs-layers.js';
import { selfIdentity } from '../../lib/state/process-identity.js';

const MS_BIND = 0x1000;
const MS_REMOUNT = 0x20;
const MS_NODEV = 0x4;
const MS_NOSUID = 0x2;

describe('storage driver names', () => {
  it('accepts the four names and refuses others with the option named', () => {
    for (const n of ['overlay', 'fuse-overlayfs', 'vfs', 'btrfs']) assert.equal(checkStorageDriverName(n), n);
    assert.equal(checkStorageDriverName(undefined), undefined);
    assert.throws(() => checkStorageDriverName('overlay2'), (e: Error) => e instanceof ValidationError && e.option === 'storageDriver');
    assert.throws(() => checkStorageDriverName(1), ValidationError);
  });

  it('gives a container the driver it recorded, overlay for records without one', () => {
    assert.equal(storageDriverNamed(undefined), overlayDriver);
    assert.equal(storageDriverNamed('vfs'), vfsDriver);
    assert.equal(storageDriverNamed('btrfs'), btrfsDriver);
    assert.equal(storageDriverNamed('fuse-overlayfs'), fuseOverlayfsDriver);
  });
});

describe('vfs root', () => {
  const layer = { upperDir: '/state/c1/upper', workDir: '/state/c1/work' };
  it('binds the container\'s copy as its root, nodev and nosuid, and enters it', () => {
    const ops = vfsDriver.rootMountOps({ lowerDirs: ['/layers/a'], layer, stagingDir: '/run/s', userns: false, flags: MS_NODEV | MS_NOSUID });
    assert.deepEqual(ops.map((o) => o.kind), [MountOpKind.MkdirHost, MountOpKind.Mount, MountOpKind.Mount, MountOpKind.EnterRoot]);
    assert.equal(ops[1]!.source, layer.upperDir);
    assert.equal(ops[1]!.flags! & MS_BIND, MS_BIND);
    assert.equal(ops[2]!.flags, MS_REMOUNT | MS_BIND | MS_NODEV | MS_NOSUID);
    assert.ok(ops.every((o) => o.kind !== MountOpKind.Overlay), 'no overlay anywhere');
  });

  it('refuses a launch without a copy and a user-namespaced one, with typed errors', () => {
    assert.throws(() => vfsDriver.rootMountOps({ lowerDirs: ['/l'], stagingDir: '/run/s', userns: false, flags: 0 }), UnsupportedError);
    assert.throws(() => vfsDriver.rootMountOps({ lowerDirs: ['/l'], layer, stagingDir: '/run/s', userns: true, flags: 0 }), (e: Error) => e instanceof UnsupportedError && /userns/.test(e.message));
  });
});

describe('run layers', () => {
  const counting = (): StorageDriver & { made: string[] } => {
    const made: string[] = [];
    return { ...vfsDriver, made, async prepareContainerLayer(l) { made.push(l.upperDir); } };
  };

  it('makes a layer for the run, removes it after, and removes those whose owner died', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'berth-run-layer-'));
    try {
      const me = selfIdentity();
      // pid 2^22 + 1 is above pid_max's ceiling: no such process can exist.
      const orphan = join(tmp, 'run-layer-4194305-123-abc');
      const mine = join(tmp, `run-layer-${me.pid}-${me.startTime}-other`);
      mkdirSync(orphan);
      mkdirSync(mine);
      const driver = counting();
      const seen = await withRunLayer(driver, tmp, ['/l'], async (l) => {
        assert.ok(l && existsSync(l.upperDir));
        return l!.upperDir;
      });
      assert.deepEqual(driver.made, [seen]);
      assert.equal(existsSync(seen), false, 'the run\'s layer is gone');
      assert.deepEqual(readdirSync(tmp), [mine.slice(tmp.length + 1)], 'a live owner\'s layer stays, a dead one\'s goes');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('makes none for a driver that mounts layers in place', async () => {
    assert.equal(await withRunLayer(overlayDriver, '/nonexistent', ['/l'], async (l) => l), undefined);
  });
});

describe('btrfs root', () => {
  const layer = { upperDir: '/state/containers/c1/upper', workDir: '/state/containers/c1/work' };
  const top = `/state/layers/${'a'.repeat(64)}`;
  it('binds the container\'s snapshot as its root, nodev and nosuid, and refuses userns and a launch without one', () => {
    const ops = btrfsDriver.rootMountOps({ lowerDirs: [top], layer, stagingDir: '/run/s', userns: false, flags: MS_NODEV | MS_NOSUID });
    assert.deepEqual(ops.map((o) => o.kind), [MountOpKind.MkdirHost, MountOpKind.Mount, MountOpKind.Mount, MountOpKind.EnterRoot]);
    assert.equal(ops[1]!.source, layer.upperDir);
    assert.equal(ops[2]!.flags, MS_REMOUNT | MS_BIND | MS_NODEV | MS_NOSUID);
    assert.throws(() => btrfsDriver.rootMountOps({ lowerDirs: [top], layer, stagingDir: '/run/s', userns: true, flags: 0 }), (e: Error) => e instanceof UnsupportedError && /"btrfs".*userns/.test(e.message));
    assert.throws(() => btrfsDriver.rootMountOps({ lowerDirs: [top], stagingDir: '/run/s', userns: false, flags: 0 }), UnsupportedError);
  });
  it('reports the container\'s subvolume and its image\'s top layer subvolume as GraphDriver data', () => {
    assert.deepEqual(btrfsDriver.graphDriverData(layer, [top, `/state/layers/${'b'.repeat(64)}`]), { Dir: layer.upperDir, ImageSubvolume: `${top}.btrfs` });
    assert.deepEqual(btrfsDriver.graphDriverData(layer, ['/home/me/rootfs']), { Dir: layer.upperDir });
  });
  it('tells store layers (which get a subvolume chain) from a { rootfs } directory (which is copied)', () => {
    assert.equal(isStoreLayerDir(top), true);
    assert.equal(layerSubvolumeOf(top), `${top}.btrfs`);
    for (const d of ['/home/me/rootfs', `/state/layers/${'a'.repeat(63)}`, `/state/other/${'a'.repeat(64)}`, `/state/layers/${'A'.repeat(64)}`]) assert.equal(isStoreLayerDir(d), false, d);
  });
});
