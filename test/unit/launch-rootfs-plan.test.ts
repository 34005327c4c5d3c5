import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRootfs, MS_NODEV, MS_RDONLY, MS_REC, MS_PRIVATE, type RootfsPlanInput } from '../../lib/launch/rootfs-plan.js';
import { MountOpKind, CreateKind } from '../../lib/native.js';
import { MASKED_PATHS, READONLY_PATHS } from '../../lib/security/paths.js';
import { overlayDriver } from '../../lib/storage/overlay-driver.js';

function input(over: Partial<RootfsPlanInput> = {}): RootfsPlanInput {
  return {
    source: { kind: 'layers', lowerDirs: ['/layers/b', '/layers/a'], driver: overlayDriver },
    stagingDir: '/run/berth/rootfs',
    userns: false,
    netns: true,
    privileged: false,
    readonlyRootfs: false,
    files: [{ path: '/etc/hostname', content: 'h\n', mode: 0o644 }],
    readonlyBinds: [],
    symlinks: [],
    cgroupMounts: [{ fstype: 'cgroup2', target: '/sys/fs/cgroup' }],
    workdir: '/',
    mounts: [],
    dirs: [],
    tmpfs: [],
    ...over,
  };
}

describe('planRootfs', () => {
  it('starts by making every mount private, before anything is mounted', () => {
    const ops = planRootfs(input());
    assert.equal(ops[0]!.kind, MountOpKind.Mount);
    assert.equal(ops[0]!.target, '/');
    assert.equal(ops[0]!.flags, MS_REC | MS_PRIVATE);
  });

  it('puts the overlay upper dir in a tmpfs on the staging dir and enters the overlay', () => {
    const ops = planRootfs(input());
    const overlay = ops.find((o) => o.kind === MountOpKind.Overlay)!;
    assert.deepEqual(overlay.lowerDirs, ['/layers/b', '/layers/a']);
    assert.equal(overlay.source, '/run/berth/rootfs/upper');
    assert.equal(overlay.data, '/run/berth/rootfs/work');
    assert.equal(overlay.flags! & MS_NODEV, MS_NODEV, 'rootfs must be nodev: containers keep CAP_MKNOD');
    const tmpfsAt = ops.findIndex((o) => o.kind === MountOpKind.Mount && o.target === '/run/berth/rootfs');
    const enterAt = ops.findIndex((o) => o.kind === MountOpKind.EnterRoot);
    assert.ok(tmpfsAt > 0 && tmpfsAt < ops.indexOf(overlay) && ops.indexOf(overlay) < enterAt);
    assert.equal(ops[enterAt]!.target, '/run/berth/rootfs/root');
  });

  it('uses a persistent upper dir when given, without staging upper/work', () => {
    const ops = planRootfs(input({ upper: { upperDir: '/state/c1/upper', workDir: '/state/c1/work' } }));
    const overlay = ops.find((o) => o.kind === MountOpKind.Overlay)!;
    assert.equal(overlay.source, '/state/c1/upper');
    assert.equal(overlay.data, '/state/c1/work');
    assert.ok(!ops.some((o) => o.kind === MountOpKind.MkdirHost && o.target.endsWith('/upper')));
  });

  it('adds userxattr to the overlay inside a user namespace', () => {
    const overlay = planRootfs(input({ userns: true })).find((o) => o.kind === MountOpKind.Overlay)!;
    assert.equal(overlay.fstype, 'userxattr');
    assert.equal(planRootfs(input()).find((o) => o.kind === MountOpKind.Overlay)!.fstype, undefined);
  });

  it('masks and write-protects after user mounts, so a mount cannot uncover them', () => {
    const ops = planRootfs(input({ mounts: [{ type: 'bind', source: '/srv', target: '/proc/x' }] }));
    const userAt = ops.findIndex((o) => o.source === '/srv');
    const firstMask = ops.findIndex((o) => o.kind === MountOpKind.MaskInRoot);
    assert.ok(userAt > 0 && firstMask > userAt);
    assert.deepEqual(ops.filter((o) => o.kind === MountOpKind.MaskInRoot).map((o) => o.target), [...MASKED_PATHS]);
    assert.deepEqual(ops.filter((o) => o.kind === MountOpKind.ReadonlyInRoot && o.target.startsWith('/proc')).map((o) => o.target), [...READONLY_PATHS]);
  });

  it('makes the root read-only last when asked', () => {
    const ops = planRootfs(input({ readonlyRootfs: true }));
    assert.equal(ops.at(-1)!.kind, MountOpKind.ReadonlyRoot);
    assert.ok(!planRootfs(input()).some((o) => o.kind === MountOpKind.ReadonlyRoot));
  });

  it('binds devices (works in user namespaces) and keeps writable mounts nodev', () => {
    const ops = planRootfs(input());
    const devs = ops.filter((o) => o.kind === MountOpKind.BindInRoot && o.target.startsWith('/dev/'));
    assert.deepEqual(devs.map((o) => o.target), ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
    assert.ok(devs.every((o) => o.create === CreateKind.File));
    for (const target of ['/dev', '/dev/shm']) {
      const m = ops.find((o) => o.kind === MountOpKind.MountInRoot && o.target === target)!;
      assert.equal(m.flags! & MS_NODEV, MS_NODEV, `${target} must be nodev`);
    }
  });

  it('mounts sysfs read-only in a new netns, binds the host /sys without one', () => {
    const fresh = planRootfs(input()).find((o) => o.target === '/sys')!;
    assert.equal(fresh.fstype, 'sysfs');
    assert.equal(fresh.flags! & MS_RDONLY, MS_RDONLY);
    const bound = planRootfs(input({ netns: false })).find((o) => o.target === '/sys')!;
    assert.equal(bound.kind, MountOpKind.BindInRoot);
    assert.equal(bound.readonly, true);
  });

  it('privileged: no masks, host /dev, writable /sys', () => {
    const ops = planRootfs(input({ privileged: true }));
    assert.ok(!ops.some((o) => o.kind === MountOpKind.MaskInRoot));
    assert.equal(ops.find((o) => o.target === '/dev')!.kind, MountOpKind.BindInRoot);
    assert.equal(ops.find((o) => o.target === '/sys')!.flags! & MS_RDONLY, 0);
  });

  it('host mode binds /usr read-only and recreates merged-usr symlinks', () => {
    const ops = planRootfs(
      input({ source: { kind: 'host', rootBinds: ['/usr'], rootSymlinks: [{ path: '/bin', target: 'usr/bin' }] }, tmpfs: [{ path: '/tmp', mode: 0o1777 }] }),
    );
    assert.ok(!ops.some((o) => o.kind === MountOpKind.Overlay));
    const usr = ops.find((o) => o.target === '/usr')!;
    assert.equal(usr.kind, MountOpKind.BindInRoot);
    assert.equal(usr.readonly, true);
    assert.deepEqual(ops.find((o) => o.target === '/bin'), { kind: MountOpKind.SymlinkInRoot, source: 'usr/bin', target: '/bin' });
    assert.equal(ops.find((o) => o.target === '/tmp')!.data, 'mode=1777');
  });

  it('mounts v1 cgroup hierarchies on a tmpfs that ends read-only', () => {
    const ops = planRootfs(input({ cgroupMounts: [{ fstype: 'cgroup', data: 'memory', target: '/sys/fs/cgroup/memory' }] }));
    const at = (t: string, k: MountOpKind) => ops.findIndex((o) => o.target === t && o.kind === k);
    assert.ok(at('/sys/fs/cgroup', MountOpKind.MountInRoot) < at('/sys/fs/cgroup/memory', MountOpKind.MountInRoot));
    assert.ok(at('/sys/fs/cgroup/memory', MountOpKind.MountInRoot) < at('/sys/fs/cgroup', MountOpKind.RemountReadonlyInRoot));
  });

  it('tmpfs mounts carry size and mode, creating their mount point', () => {
    const m = planRootfs(input({ mounts: [{ type: 'tmpfs', target: '/scratch', size: '1m', mode: 0o700 }] })).find((o) => o.target === '/scratch')!;
    assert.equal(m.data, 'mode=700,size=1048576');
    assert.equal(m.create, CreateKind.Dir);
  });
});
