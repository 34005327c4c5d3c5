/**
 * Where berth nests its cgroups when it runs inside a container, from mountinfo and
 * /proc/self/cgroup as Docker 20.10 (runc 1.1) shows them on this cgroup v1 host, and as a
 * cgroup v2 host shows them. The fixtures are the kernel's own text, captured inside the
 * containers `test/kernel/inside-container.test.ts` starts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedError } from '../../lib/errors.js';
import { cgroupWithin, describeCgroups, detectCgroupLayout, probeCgroups, type CgroupV1Driver, type CgroupV2Driver } from '../../lib/cgroup/index.js';
import { FakeCgroup1Fs, FakeCgroup2Fs } from '../helpers/fake-cgroupfs.js';

const CID = '4ef8c72ea05319e4985e571da6f8b5779b74c146a8a80b725d7df7f2e9a93482';
const HIERARCHIES = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids'];

/** mountinfo of a v1 container: each hierarchy mounted with `root`, `ro` or `rw`. */
function v1Mountinfo(root: string, access: 'ro' | 'rw'): string {
  const lines = ['80 79 0:45 / / rw,relatime - overlay overlay rw', '81 80 0:46 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755'];
  HIERARCHIES.forEach((h, i) => lines.push(`${82 + i} 81 0:${28 + i} ${root} /sys/fs/cgroup/${h} ${access},nosuid,nodev,noexec,relatime - cgroup cgroup rw,${h}`));
  lines.push(`90 81 0:36 ${root} /sys/fs/cgroup/systemd ${access},nosuid,nodev,noexec,relatime - cgroup cgroup rw,name=systemd`);
  return `${lines.join('\n')}\n`;
}

/** /proc/<pid>/cgroup with every hierarchy at `path`. */
function procCgroup(path: string): string {
  return ['9:name=systemd', '8:pids', '7:blkio', '6:freezer', '5:devices', '4:memory', '3:cpuset', '2:cpuacct', '1:cpu', '0:'].map((p) => `${p}:${path}`).join('\n') + '\n';
}

const fakes: { cleanup(): void }[] = [];
after(() => {
  for (const f of fakes) f.cleanup();
});

describe('v1: where berth nests inside a container', () => {
  test("Docker's default (host cgroupns, the container's subtree mounted read-only): detected, no cgroup written", () => {
    const mountinfo = v1Mountinfo(`/docker/${CID}`, 'ro');
    const layout = detectCgroupLayout(mountinfo, procCgroup(`/docker/${CID}`), procCgroup(`/docker/${CID}`));
    for (const h of layout.v1) {
      assert.equal(h.base, h.mountPoint, 'the mount shows the container cgroup itself');
      assert.match(h.problem ?? '', /mounted read-only/);
    }
    const fake = new FakeCgroup1Fs({ mounts: HIERARCHIES });
    fakes.push(fake);
    const before = fake.snapshotOutsideBerth();
    const driver = probeCgroups({ mountinfo, procSelfCgroup: procCgroup(`/docker/${CID}`), pid1Cgroup: procCgroup(`/docker/${CID}`), root: fake.root, fs: fake });
    assert.throws(
      () => driver.create('c1', { pids: 16 }),
      (e: unknown) => e instanceof UnsupportedError && /read-only/.test(e.message) && /privileged|remount/.test(e.message) && e.path === join(fake.root, 'pids'),
    );
    assert.deepEqual(fake.writes, [], 'nothing is written on a read-only cgroupfs');
    assert.deepEqual(fake.snapshotOutsideBerth(), before);
    assert.equal(existsSync(join(fake.root, 'pids', 'berth')), false);

    const info = describeCgroups({ mountinfo, procSelfCgroup: procCgroup(`/docker/${CID}`), pid1Cgroup: procCgroup(`/docker/${CID}`), writable: () => true });
    assert.equal(info.controllers.memory.usable, false);
    assert.match(info.controllers.memory.detail, /read-only/);
    assert.deepEqual(info.parents, []);
  });

  test('private cgroupns remounted read-write: berth nests at the namespace root, the container cgroup', () => {
    const mountinfo = v1Mountinfo('/', 'rw');
    const layout = detectCgroupLayout(mountinfo, procCgroup('/'), procCgroup('/'));
    for (const h of layout.v1) {
      assert.equal(h.base, h.mountPoint);
      assert.equal(h.problem, undefined);
    }
    const info = describeCgroups({ mountinfo, procSelfCgroup: procCgroup('/'), pid1Cgroup: procCgroup('/'), writable: () => true });
    assert.ok(info.parents.includes('/sys/fs/cgroup/memory/berth'));
    assert.equal(info.controllers.pids.usable, true);
  });

  test("the host's whole tree in the host's cgroupns: berth nests in the container's cgroup, never at the host's top", () => {
    // `-v /sys/fs/cgroup:/sys/fs/cgroup` (Docker-in-Docker's classic recipe): the mount shows
    // the host's root and berth's own cgroup is /docker/<id>, where its PID 1 lives too.
    const mountinfo = v1Mountinfo('/', 'rw');
    const fake = new FakeCgroup1Fs({ mounts: HIERARCHIES });
    fakes.push(fake);
    for (const h of HIERARCHIES) {
      mkdirSync(join(fake.root, h, 'docker', CID), { recursive: true });
      for (const f of ['cgroup.procs', ...(h === 'cpuset' ? ['cpuset.cpus', 'cpuset.mems', 'cpuset.effective_cpus'] : [])]) {
        writeFileSync(join(fake.root, h, 'docker', CID, f), f === 'cgroup.procs' ? '1\n' : f === 'cpuset.mems' ? '0\n' : '0-3\n');
      }
    }
    const own = procCgroup(`/docker/${CID}`);
    const driver = probeCgroups({ mountinfo, procSelfCgroup: own, pid1Cgroup: own, root: fake.root, fs: fake, cpuCount: 4 }) as CgroupV1Driver;
    const cg = driver.create('c2', { pids: 16, memory: 64 * 1024 * 1024, cpuset: '1' });
    for (const p of cg.paths) assert.ok(p.includes(join('docker', CID, 'berth', 'c2')), `${p} is outside the container's cgroup`);
    for (const h of HIERARCHIES) assert.equal(existsSync(join(fake.root, h, 'berth')), false, `berth/ made at the host's top of ${h}`);
    // cpuset's parent inherits the container's CPUs, not the host root's.
    assert.equal(fake.read(join(fake.root, 'cpuset', 'docker', CID, 'berth', 'cpuset.cpus')).trim(), '0-3');
    cg.remove();
    assert.equal(driver.removeParentIfEmpty(), true);
    assert.equal(existsSync(join(fake.root, 'memory', 'docker', CID, 'berth')), false);
  });

  test('a bare host is unchanged: PID 1 at the root, berth at the top of each hierarchy', () => {
    const mountinfo = v1Mountinfo('/', 'rw');
    const layout = detectCgroupLayout(mountinfo, procCgroup('/process_api/ba14c1b9'), procCgroup('/'));
    for (const h of layout.v1) assert.equal(h.base, h.mountPoint);
  });

  test("the host's tree bound into a private cgroupns (root /../..): refused, it does not contain berth's own cgroup", () => {
    const mountinfo = v1Mountinfo('/../..', 'rw');
    const layout = detectCgroupLayout(mountinfo, procCgroup('/'), procCgroup('/'));
    for (const h of layout.v1) assert.match(h.problem ?? '', /does not contain this process's own cgroup/);
    const fake = new FakeCgroup1Fs({ mounts: HIERARCHIES });
    fakes.push(fake);
    const driver = probeCgroups({ mountinfo, procSelfCgroup: procCgroup('/'), pid1Cgroup: procCgroup('/'), root: fake.root, fs: fake });
    assert.throws(() => driver.create('c3', { pids: 16 }), (e: unknown) => e instanceof UnsupportedError && /\/\.\.\/\.\./.test(e.message));
    assert.deepEqual(fake.writes, []);
  });

  test("a process moved outside its namespace's root (/proc/self/cgroup shows /../x) is not inside the mount", () => {
    const layout = detectCgroupLayout(v1Mountinfo('/', 'rw'), procCgroup('/../other'));
    for (const h of layout.v1) assert.match(h.problem ?? '', /does not contain this process's own cgroup \(\/\.\.\/other\)/);
    assert.equal(cgroupWithin('/docker/x/berth', '/docker/x'), true);
    assert.equal(cgroupWithin('/docker/xy', '/docker/x'), false);
  });

  test('a read-only and a writable mount of one hierarchy: the writable one serves', () => {
    const ro = '95 81 0:35 / /mnt/pids-ro ro,relatime - cgroup cgroup rw,pids\n';
    const layout = detectCgroupLayout(ro + v1Mountinfo('/', 'rw'), procCgroup('/'));
    const pids = layout.v1.filter((h) => h.controllers.includes('pids'));
    assert.deepEqual(pids.map((h) => [h.mountPoint, h.problem]), [['/sys/fs/cgroup/pids', undefined]]);
  });
});

describe('v2: where berth nests inside a container', () => {
  const V2_PRIVATE = '81 80 0:46 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n';
  const V2_READONLY = '81 80 0:46 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n';

  test('a private cgroupns: the namespace root, even when PID 1 moved to /init (v2 needs a cgroup without processes)', () => {
    const layout = detectCgroupLayout(V2_PRIVATE, '0::/init\n', '0::/init\n');
    assert.equal(layout.unifiedPlacement?.base, '/sys/fs/cgroup');
    assert.equal(layout.unifiedPlacement?.problem, undefined);
  });

  test("read-only (Docker's and Kubernetes' default without privileges): UnsupportedError, nothing written", () => {
    const fake = new FakeCgroup2Fs();
    fakes.push(fake);
    const driver = probeCgroups({ mountinfo: V2_READONLY, procSelfCgroup: '0::/\n', root: fake.root, fs: fake }) as CgroupV2Driver;
    assert.throws(() => driver.create('c4', { pids: 16 }), (e: unknown) => e instanceof UnsupportedError && /read-only/.test(e.message) && e.path === fake.root);
    assert.deepEqual(fake.writes, []);
    const info = describeCgroups({ mountinfo: V2_READONLY, procSelfCgroup: '0::/\n', writable: () => true, read: () => 'memory pids' });
    assert.equal(info.controllers.pids.usable, false);
    assert.match(info.controllers.pids.detail, /read-only/);
  });

  test("the container's root holds processes and enables nothing: the error says to move them to a leaf first", () => {
    const fake = new FakeCgroup2Fs({ subtreeControl: '' });
    fakes.push(fake);
    fake.setFile(join(fake.root, 'cgroup.type'), 'domain\n'); // not the host's root cgroup
    fake.setFile(join(fake.root, 'cgroup.procs'), '1\n7\n');
    const driver = probeCgroups({ mountinfo: V2_PRIVATE, procSelfCgroup: '0::/\n', root: fake.root, fs: fake });
    assert.throws(() => driver.create('c5', { pids: 16 }), (e: unknown) => e instanceof UnsupportedError && /holds processes \(2\)/.test(e.message) && /init\/cgroup\.procs/.test(e.message));
    assert.deepEqual(fake.writes, []);
  });
});
