/**
 * `Runtime.open({ storageDriver })` on this machine: a driver named by the caller is tried on
 * the state directory's filesystem and refused with a typed error naming the fix when it
 * cannot work there (a state directory on a real overlay mount, as inside a container); by
 * default the probe falls back to fuse-overlayfs there (vfs without a working /dev/fuse) and
 * containers run; the probe leaves nothing behind.
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
import { mountOverlay, type OverlayMount } from '../helpers/overlay-state.js';

const skip = kernelSkipReason();

/** Host mounts this test could leave: below its base directory or berth's staging directory. Others come and go on a shared host. */
function ourMounts(base: string): string[] {
  return mountLines().filter((l) => l.includes(base) || l.includes(STAGING_DIR));
}

describe('storage driver choice', { skip }, () => {
  let base: string;
  let overlay: OverlayMount | undefined;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'berth-storage-probe-'));
    mkdirSync(join(base, 'plain'));
    overlay = mountOverlay(base);
  });
  after(() => {
    overlay?.unmount();
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

  it('falls back to fuse-overlayfs by default on a state directory on overlayfs when /dev/fuse works, says why, and runs containers there', async () => {
    const root = join(base, 'm', 'fallback');
    const mounts = ourMounts(base);
    const rt = await Runtime.open({ root });
    try {
      const info = await rt.info();
      assert.equal(info.Driver, 'fuse-overlayfs');
      assert.equal(info.Storage.backingFilesystem, 'overlayfs');
      assert.match(info.Storage.reason, /^probed: kernel overlay does not mount with its upper dir on overlayfs.*fuse-overlayfs mounts .*volume or tmpfs/);
      const r = await rt.run({ rootfs: busyboxRootfs() }, ['sh', '-c', 'echo hi > /written && cat /written']);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, 'hi\n');
      assert.equal(existsSync(join(busyboxRootfs(), 'written')), false, 'the rootfs directory is never written');
      // On an overlay-backed upper dir fuse-overlayfs writes deletions as `.wh.` files and
      // marks opaque directories with files: diff must read them as overlay's markers.
      const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sh', '-c', 'echo c > /c && rm /bin/cat && rm -r /etc && mkdir /etc && echo e > /etc/e'] });
      await c.start();
      assert.equal((await c.wait()).exitCode, 0);
      const diff = await c.diff();
      assert.deepEqual(diff.filter((d) => !d.path.startsWith('/etc/') || d.path === '/etc/e'), [
        { path: '/bin', kind: 'C' },
        { path: '/bin/cat', kind: 'D' },
        { path: '/c', kind: 'A' },
        { path: '/etc', kind: 'C' },
        { path: '/etc/e', kind: 'A' },
      ]);
      assert.ok(diff.every((d) => !d.path.includes('.wh.')), JSON.stringify(diff));
      assert.ok(diff.some((d) => d.path === '/etc/passwd' && d.kind === 'D'), 'the opaque /etc deletes what the image had there');
      assert.equal((await c.inspect()).GraphDriver.Name, 'fuse-overlayfs');
      const committed = await c.commit();
      const seen = await rt.run(committed, ['sh', '-c', 'cat /etc/e; [ -e /etc/passwd ] || echo no-passwd; [ -e /bin/cat ] || echo no-cat; cat /c']);
      assert.equal(seen.stdout, 'e\nno-passwd\nno-cat\nc\n', seen.stderr);
      await c.remove();
      await rt.images.remove(committed, { force: true });
    } finally {
      await rt.close();
    }
    assert.deepEqual(readdirSync(join(root, 'tmp')).filter((n) => n.startsWith('run-layer-')), []);
    assert.deepEqual(ourMounts(base), mounts);
  });

  /**
   * Runtime.open() by default and with `storageDriver: 'fuse-overlayfs'`, in a child whose
   * mount namespace `setup` (shell) changed first: what a container without FUSE looks like.
   */
  function inNamespace(setup: string, name: string): { driver: string; reason: string; exit: number; asked: string } {
    const script = `
      import { Runtime } from ${JSON.stringify(join(process.cwd(), 'lib/index.ts'))};
      const rt = await Runtime.open({ root: ${JSON.stringify(join(base, 'm', name))} });
      const info = await rt.info();
      const r = await rt.run({ rootfs: ${JSON.stringify(busyboxRootfs())} }, ['true']);
      await rt.close();
      let asked = 'opened';
      await Runtime.open({ root: ${JSON.stringify(join(base, 'm', `${name}-asked`))}, storageDriver: 'fuse-overlayfs' }).catch((e) => { asked = e.name + ' ' + e.option + ' ' + e.message; });
      console.log(JSON.stringify({ driver: info.Driver, reason: info.Storage.reason, exit: r.exitCode, asked }));`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${setup} && exec node --import tsx --input-type=module -e "$0"`, script], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { driver: string; reason: string; exit: number; asked: string };
  }

  it('falls back to vfs when /dev/fuse mounts nothing, and refuses fuse-overlayfs with what it said', () => {
    // /dev/fuse is /dev/null: the device opens but mounts nothing.
    const out = inNamespace('mount --bind /dev/null /dev/fuse', 'nofuse');
    assert.equal(out.driver, 'vfs');
    assert.match(out.reason, /fuse-overlayfs does not mount/);
    assert.equal(out.exit, 0);
    assert.match(out.asked, /^UnsupportedError storageDriver .*"fuse-overlayfs" cannot work/);
  });

  it('without a /dev/fuse, falls back to vfs and names the device in the refusal', () => {
    // A /dev of the devices a container engine gives by default: no fuse.
    const devs = [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]].map(([n, a, b]) => `mknod -m 666 /dev/${n} c ${a} ${b}`).join(' && ');
    const out = inNamespace(`mount -t tmpfs -o mode=755 berth-test-dev /dev && ${devs}`, 'nodev');
    assert.equal(out.driver, 'vfs');
    assert.match(out.reason, /\/dev\/fuse cannot be opened \(ENOENT\)/);
    assert.equal(out.exit, 0);
    assert.match(out.asked, /^UnsupportedError storageDriver .*the FUSE device \/dev\/fuse cannot be opened.*fix: give the container the device/);
  });

  it('without the fuse-overlayfs program, falls back to vfs and names the package', () => {
    // The program replaced by a file nobody may execute.
    const out = inNamespace('mount --bind /dev/null "$(command -v fuse-overlayfs)"', 'noprogram');
    assert.equal(out.driver, 'vfs');
    assert.equal(out.exit, 0);
    assert.match(out.asked, /^UnsupportedError storageDriver .*fuse-overlayfs program was not found; fix: apt-get install fuse-overlayfs/);
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
