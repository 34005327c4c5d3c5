/**
 * `rt.info()` on this machine, checked against what peer tools say about it (`stat -f`,
 * `uname -r`, `nft`, `command -v`, /etc/os-release), the probes leaving no mount, fd or
 * directory behind, the host facts probed once per runtime while counts follow the state, and
 * a state directory on a real overlay mount reported with its fix.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConflictError } from '../../lib/errors.js';
import { Runtime } from '../../lib/index.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { mountLines, newFdsSince, openFds } from '../helpers/leaks.js';
import { mountOverlay, type OverlayMount } from '../helpers/overlay-state.js';

const skip = kernelSkipReason();

function sh(cmd: string): { code: number | null; out: string } {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout.trim() };
}

/** `stat -f -c %T` names in Docker's `Backing Filesystem` words. */
function backingOf(path: string): string {
  const t = sh(`stat -f -c %T '${path}'`).out;
  return t === 'ext2/ext3' ? 'extfs' : t === 'overlayfs' ? 'overlayfs' : t;
}

describe('rt.info() on this host', { skip }, () => {
  let root: string;
  let rt: Runtime;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'berth-info-'));
    rt = await Runtime.open({ root });
  });
  after(async () => {
    await rt.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('reports the cgroup layout, storage, identity and kernel as the peer tools see them', async () => {
    const info = await rt.info();
    // cgroup: tmpfs at /sys/fs/cgroup is v1 (hybrid when a cgroup2 sits at unified/), cgroup2fs is v2.
    const cgroupFs = sh('stat -f -c %T /sys/fs/cgroup').out;
    const expectedVersion = cgroupFs === 'cgroup2fs' ? '2' : '1';
    assert.equal(info.CgroupVersion, expectedVersion);
    assert.equal(info.CgroupDriver, 'cgroupfs');
    if (expectedVersion === '1') {
      assert.equal(info.Cgroups.mode, sh('stat -f -c %T /sys/fs/cgroup/unified').out === 'cgroup2fs' ? 'hybrid' : 'legacy');
      for (const [name, dir] of [['memory', 'memory'], ['pids', 'pids'], ['devices', 'devices'], ['io', 'blkio']] as const) {
        assert.equal(info.Cgroups.controllers[name].usable, existsSync(`/sys/fs/cgroup/${dir}/cgroup.procs`), name);
      }
      assert.equal(info.KernelFeatures.clone3IntoCgroup.available, false, 'berth clones into a cgroup on v2 only');
    }

    assert.equal(info.Driver, 'overlay');
    assert.equal(info.Storage.backingFilesystem, backingOf(root));
    assert.deepEqual(info.DriverStatus[0], ['Backing Filesystem', backingOf(root)]);
    assert.equal(info.KernelFeatures.overlay.method, 'tried');
    assert.equal(info.KernelFeatures.overlay.available, true, info.KernelFeatures.overlay.detail);
    assert.equal(info.Storage.usable, true);

    assert.equal(info.Uid, 0);
    assert.equal(info.Rootless, false);
    assert.equal(info.IdMapping.mode, 'host');
    const newuidmap = sh('command -v newuidmap').out;
    assert.equal(info.IdMapping.newuidmap.path, newuidmap === '' ? null : newuidmap);
    if (newuidmap !== '') assert.equal(info.IdMapping.newuidmap.setuid, (statSync(newuidmap).mode & 0o4000) !== 0);

    for (const f of ['pidfd', 'openat2'] as const) {
      assert.equal(info.KernelFeatures[f].available, true, info.KernelFeatures[f].detail);
      assert.equal(info.KernelFeatures[f].method, 'tried');
    }
    assert.equal(info.KernelFeatures.seccomp.available, existsSync('/proc/sys/kernel/seccomp/actions_avail'));
    assert.equal(info.SecurityOptions.includes('name=seccomp,profile=builtin'), info.KernelFeatures.seccomp.available);

    assert.equal(info.KernelVersion, sh('uname -r').out);
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    assert.equal(info.OperatingSystem, pretty);
    assert.equal(info.RootDir, root);
    assert.equal(info.ServerVersion, (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version);

    const nftWorks = sh('nft list tables >/dev/null 2>&1').code === 0;
    if (nftWorks) assert.equal(info.Network.firewall, 'nftables');
    const pasta = sh('command -v pasta').out;
    assert.equal(info.Network.pasta, pasta === '' ? null : pasta);
    const slirp = sh('command -v slirp4netns').out;
    // Root may open the tun device whatever its mode, so the stack follows the installed tools alone.
    assert.equal(info.Network.userMode.stack, pasta !== '' ? 'pasta' : slirp !== '' ? 'slirp4netns' : null);
    assert.equal(info.Warnings.length, info.Fixes.length);
  });

  it('probes once per runtime, leaving no mount, fd or directory behind; counts follow the state', async () => {
    const mounts = mountLines();
    const fds = openFds();
    const fresh = await Runtime.open({ root });
    try {
      const first = await fresh.info();
      assert.deepEqual(mountLines(), mounts, 'the overlay probe is never attached');
      assert.deepEqual(newFdsSince(fds), []);
      assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('.probe-')), []);

      await fresh.volumes.create({ name: 'counted' });
      const second = await fresh.info();
      assert.equal(second.KernelFeatures, first.KernelFeatures, 'host facts are kept for the runtime');
      assert.equal(second.Volumes, first.Volumes + 1);
      assert.notEqual((await rt.info()).KernelFeatures, first.KernelFeatures, 'another runtime probes for itself');
    } finally {
      await (await fresh.volumes.get('counted')).remove().catch(() => {});
      await fresh.close();
    }
    await assert.rejects(fresh.info(), (e: Error) => e instanceof ConflictError && /closed/.test(e.message));
  });
});

describe('rt.info() with its state directory on overlayfs (berth inside a container)', { skip }, () => {
  let base: string;
  let overlay: OverlayMount | undefined;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'berth-info-ovl-'));
    overlay = mountOverlay(base);
  });
  after(() => {
    overlay?.unmount();
    rmSync(base, { recursive: true, force: true });
  });

  it('names the overlayfs backing filesystem and tells the user to move the state dir', async () => {
    const rt = await Runtime.open({ root: join(base, 'm', 'state') });
    try {
      const info = await rt.info();
      assert.equal(info.Storage.backingFilesystem, 'overlayfs');
      // Whether this kernel refuses it is the kernel's call: the report must agree with the try.
      if (!info.KernelFeatures.overlay.available) {
        // Containers still run: the probe fell back to fuse-overlayfs where it mounts, else to the
        // copying driver (docs/design/storage.md, The probe).
        const fuse = existsSync('/dev/fuse') && spawnSync('sh', ['-c', 'command -v fuse-overlayfs']).status === 0;
        assert.equal(info.Driver, fuse ? 'fuse-overlayfs' : 'vfs', info.Storage.reason);
        assert.equal(info.Storage.usable, true);
        assert.equal(info.Fixes[0]?.area, 'storage');
        assert.match(info.Fixes[0]!.problem, /is on overlayfs/);
        assert.match(info.Fixes[0]!.fix!, /Runtime\.open\(\{ root:/);
        assert.match(info.Warnings[0]!, /^WARNING: .*overlayfs.*Fix: Runtime\.open/);
      } else {
        assert.equal(info.Fixes.filter((f) => f.area === 'storage').length, 0);
      }
      assert.deepEqual(readdirSync(join(base, 'm', 'state')).filter((n) => n.startsWith('.probe-')), []);
    } finally {
      await rt.close();
    }
  });
});
