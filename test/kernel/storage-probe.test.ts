/**
 * `Runtime.open({ storageDriver })` on this machine: a driver named by the caller is tried on
 * the state directory's filesystem and refused with a typed error naming the fix when it
 * cannot work there (a state directory on a real overlay mount, as inside a container); by
 * default the probe falls back to vfs there and containers run; the probe leaves nothing
 * behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UnsupportedError, ValidationError } from '../../lib/errors.js';
import { Runtime } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { STAGING_DIR } from '../../lib/launch/launcher.js';
import { mountLines } from '../helpers/leaks.js';

const skip = kernelSkipReason();

/** Host mounts this test could leave: below its base directory or berth's staging directory. Others come and go on a shared host. */
function ourMounts(base: string): string[] {
  return mountLines().filter((l) => l.includes(base) || l.includes(STAGING_DIR));
}

describe('storage driver choice', { skip }, () => {
  let base: string;
  let mounted = false;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'berth-storage-probe-'));
    for (const d of ['l', 'u', 'w', 'm', 'plain']) mkdirSync(join(base, d));
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w`, `${base}/m`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    mounted = true;
  });
  after(() => {
    if (mounted) spawnSync('umount', [`${base}/m`]);
    rmSync(base, { recursive: true, force: true });
  });

  it('refuses a driver name it does not know, naming the option', async () => {
    await assert.rejects(Runtime.open({ root: join(base, 'plain'), storageDriver: 'aufs' as never }), (e: Error) => e instanceof ValidationError && e.option === 'storageDriver' && /"overlay"/.test(e.message));
  });

  it('uses overlay when asked on a filesystem it mounts on, and leaves no probe behind', async () => {
    const mounts = ourMounts(base);
    const rt = await Runtime.open({ root: join(base, 'plain'), storageDriver: 'overlay' });
    try {
      const info = await rt.info();
      assert.equal(info.Driver, 'overlay');
      assert.equal(info.Storage.usable, true);
      assert.match(info.Storage.reason, /^chosen/);
    } finally {
      await rt.close();
    }
    assert.deepEqual(ourMounts(base), mounts);
    assert.deepEqual(readdirSync(join(base, 'plain')).filter((n) => n.startsWith('.storage-probe-')), []);
  });

  it('refuses overlay on a state directory that is itself on overlayfs, with the fix', async () => {
    const root = join(base, 'm', 'state');
    await assert.rejects(Runtime.open({ root, storageDriver: 'overlay' }), (e: Error) => {
      assert.ok(e instanceof UnsupportedError, String(e));
      assert.equal(e.option, 'storageDriver');
      assert.match(e.message, /overlayfs/);
      assert.match(e.message, /fix: .*(volume|tmpfs)/);
      return true;
    });
    assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('.storage-probe-')), []);
  });

  it('falls back to vfs by default on a state directory on overlayfs, says why, and runs containers there', async () => {
    const root = join(base, 'm', 'fallback');
    const mounts = ourMounts(base);
    const rt = await Runtime.open({ root });
    try {
      const info = await rt.info();
      assert.equal(info.Driver, 'vfs');
      assert.equal(info.Storage.backingFilesystem, 'overlayfs');
      assert.match(info.Storage.reason, /^probed: kernel overlay does not mount with its upper dir on overlayfs.*vfs.*volume or tmpfs/);
      const r = await rt.run({ rootfs: busyboxRootfs() }, ['sh', '-c', 'echo hi > /written && cat /written']);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, 'hi\n');
      assert.equal(existsSync(join(busyboxRootfs(), 'written')), false, 'the rootfs directory is never written');
      const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sh', '-c', 'echo c > /c'] });
      await c.start();
      assert.equal((await c.wait()).exitCode, 0);
      assert.deepEqual(await c.diff(), [{ path: '/c', kind: 'A' }]);
      assert.equal((await c.inspect()).GraphDriver.Name, 'vfs');
      await c.remove();
    } finally {
      await rt.close();
    }
    assert.deepEqual(readdirSync(join(root, 'tmp')).filter((n) => n.startsWith('run-layer-')), []);
    assert.deepEqual(ourMounts(base), mounts);
  });

  it('refuses drivers this version does not have, naming them', async () => {
    for (const name of ['fuse-overlayfs'] as const) {
      await assert.rejects(Runtime.open({ root: join(base, 'plain'), storageDriver: name }), (e: Error) => e instanceof UnsupportedError && e.option === 'storageDriver' && e.message.includes(`"${name}" is not built`));
    }
  });

  it('refuses btrfs on a state directory that is not on btrfs, naming the filesystem and the fix, and leaves nothing', async () => {
    const root = join(base, 'plain');
    const before = readdirSync(root).sort();
    await assert.rejects(Runtime.open({ root, storageDriver: 'btrfs' }), (e: Error) => {
      assert.ok(e instanceof UnsupportedError);
      assert.equal(e.option, 'storageDriver');
      assert.match(e.message, /is on \S+, not btrfs; fix: put the state directory on a btrfs filesystem/);
      return true;
    });
    assert.deepEqual(readdirSync(root).sort(), before);
  });
});
