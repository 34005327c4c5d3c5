import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedError, ValidationError } from '../../lib/errors.js';
import {
  CgroupV1Driver,
  DEFAULT_DEVICE_RULES,
  deviceRuleString,
  detectCgroupLayout,
  parseMountinfo,
  probeCgroups,
  type CgroupV1,
} from '../../lib/cgroup/index.js';
import { FakeCgroup1Fs } from '../helpers/fake-cgroupfs.js';

const MiB = 1024 * 1024;

/** This machine's layout: every controller on its own mount, plus an empty cgroup2 at unified/. */
const HOST_MOUNTINFO = `\
23 1 253:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HOST_PROC_SELF_CGROUP = `\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/ba14c1b95148de0ea157f4c5db22b7ac
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

/** Ubuntu 18.04 / CentOS 7 style: systemd co-mounts cpu,cpuacct and net_cls,net_prio. */
const COMOUNT_MOUNTINFO = `\
25 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
26 25 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
27 26 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
31 26 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
32 26 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
33 26 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
34 26 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
35 26 0:32 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,devices
36 26 0:33 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,freezer
37 26 0:34 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,cpuset,clone_children
38 26 0:35 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:21 - cgroup cgroup rw,blkio
39 26 0:36 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:22 - cgroup cgroup rw,hugetlb
40 26 0:37 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:23 - cgroup cgroup rw,perf_event
`;

const fixtures: FakeCgroup1Fs[] = [];
function setup(mounts: string[], opts: { swap?: boolean } = {}): { fake: FakeCgroup1Fs; driver: CgroupV1Driver } {
  const fake = new FakeCgroup1Fs({ mounts, ...opts });
  fixtures.push(fake);
  // Aim the detected layout at the fixture: each hierarchy at <root>/<basename of its mount>.
  // Lines of hierarchies absent from the fixture are dropped, as if never mounted.
  const mountinfo = (mounts === COMOUNT_MOUNTS ? COMOUNT_MOUNTINFO : HOST_MOUNTINFO)
    .split('\n')
    .filter((l) => !/ - cgroup /.test(l) || mounts.some((m) => l.includes(` /sys/fs/cgroup/${m} `)) || l.includes('name=systemd'))
    .join('\n');
  const driver = probeCgroups({ mountinfo, root: fake.root, fs: fake, cpuCount: 4 }) as CgroupV1Driver;
  return { fake, driver };
}
after(() => {
  for (const f of fixtures) f.cleanup();
});

const HOST_MOUNTS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids'];
const COMOUNT_MOUNTS = ['cpu,cpuacct', 'net_cls,net_prio', 'memory', 'pids', 'devices', 'freezer', 'cpuset', 'blkio', 'hugetlb', 'perf_event'];

describe('probe (v1)', () => {
  test("this host's layout: separate mounts, hybrid, v1 driver", () => {
    const layout = detectCgroupLayout(HOST_MOUNTINFO, HOST_PROC_SELF_CGROUP);
    assert.equal(layout.version, 1);
    assert.equal(layout.mode, 'hybrid');
    assert.equal(layout.unified, '/sys/fs/cgroup/unified');
    assert.deepEqual(
      layout.v1.map((h) => [h.controllers.join(','), h.mountPoint]),
      HOST_MOUNTS.map((c) => [c, `/sys/fs/cgroup/${c}`]),
    );
    const driver = probeCgroups({ mountinfo: HOST_MOUNTINFO, procSelfCgroup: HOST_PROC_SELF_CGROUP });
    assert.equal(driver.version, 1);
    assert.equal((driver as CgroupV1Driver).mountPointOf('memory'), '/sys/fs/cgroup/memory');
    assert.equal((driver as CgroupV1Driver).mountPointOf('cpuacct'), '/sys/fs/cgroup/cpuacct');
  });

  test('co-mounted cpu,cpuacct is one hierarchy serving both controllers', () => {
    const layout = detectCgroupLayout(COMOUNT_MOUNTINFO);
    assert.equal(layout.mode, 'hybrid');
    const cpu = layout.v1.find((h) => h.controllers.includes('cpu'));
    assert.deepEqual(cpu, { controllers: ['cpu', 'cpuacct'], mountPoint: '/sys/fs/cgroup/cpu,cpuacct', base: '/sys/fs/cgroup/cpu,cpuacct' });
    // The "clone_children" flag is not a controller.
    assert.deepEqual(layout.v1.find((h) => h.controllers.includes('cpuset'))?.controllers, ['cpuset']);
    const driver = probeCgroups({ mountinfo: COMOUNT_MOUNTINFO }) as CgroupV1Driver;
    assert.equal(driver.mountPointOf('cpu'), '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(driver.mountPointOf('cpuacct'), '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(driver.mountPointOf('name=systemd'), undefined);
  });

  test('legacy (no cgroup2 mount) and pure v2 despite stale v1 mounts', () => {
    const legacy = HOST_MOUNTINFO.split('\n').filter((l) => !l.includes('cgroup2')).join('\n');
    assert.equal(detectCgroupLayout(legacy).mode, 'legacy');
    // A kernel that lists only the unified hierarchy for us is v2, whatever mountinfo carries.
    const layout = detectCgroupLayout(HOST_MOUNTINFO, '0::/\n');
    assert.equal(layout.version, 2);
    assert.equal(layout.unified, '/sys/fs/cgroup/unified');
  });

  test('no cgroup filesystem at all is an UnsupportedError', () => {
    assert.throws(() => detectCgroupLayout('23 1 253:0 / / rw,relatime - ext4 /dev/vda rw\n'), UnsupportedError);
  });

  test('mountinfo octal escapes and optional fields', () => {
    const [m] = parseMountinfo('40 31 0:37 / /mnt/my\\040cgroups rw,relatime shared:5 master:1 - cgroup cgroup rw,memory\n');
    assert.deepEqual(m, { root: '/', mountPoint: '/mnt/my cgroups', mountOptions: ['rw', 'relatime'], fsType: 'cgroup', superOptions: ['rw', 'memory'] });
  });
});

describe('create (v1 fixture)', () => {
  test('removeParentIfEmpty: keeps berth/ while a container cgroup is in it, removes it after, and create makes it again', () => {
    const { fake, driver } = setup(HOST_MOUNTS);
    const cg = driver.create('p1', { pids: 10 });
    assert.equal(driver.removeParentIfEmpty(), false);
    for (const m of ['pids', 'devices']) assert.ok(existsSync(join(fake.root, m, 'berth', 'p1')), m);
    cg.remove();
    assert.equal(driver.removeParentIfEmpty(), true);
    for (const m of HOST_MOUNTS) assert.equal(existsSync(join(fake.root, m, 'berth')), false, m);
    assert.equal(driver.removeParentIfEmpty(), true, 'idempotent');
    driver.create('p2', { pids: 10, cpuset: '0' }).remove();
    assert.ok(existsSync(join(fake.root, 'cpuset', 'berth')), 'made again on the next create');
  });

  test('writes limits in kernel-safe order, the device whitelist, and cpuset values', () => {
    const { fake, driver } = setup(HOST_MOUNTS);
    const before = fake.snapshotOutsideBerth();
    const cg = driver.create('c1', { memory: 64 * MiB, cpus: 1.5, cpuShares: 512, cpuset: '1-2', pids: 100 });

    assert.deepEqual(fake.relWrites(), [
      // The berth parent of a cpuset hierarchy starts empty and would refuse children's tasks.
      ['cpuset/berth/cpuset.cpus', '0-3'],
      ['cpuset/berth/cpuset.mems', '0'],
      ['cpuset/berth/c1/cpuset.cpus', '1-2'],
      ['cpuset/berth/c1/cpuset.mems', '0'],
      ['memory/berth/c1/memory.limit_in_bytes', String(64 * MiB)],
      ['memory/berth/c1/memory.memsw.limit_in_bytes', String(128 * MiB)],
      ['cpu/berth/c1/cpu.shares', '512'],
      ['cpu/berth/c1/cpu.cfs_period_us', '100000'],
      ['cpu/berth/c1/cpu.cfs_quota_us', '150000'],
      ['pids/berth/c1/pids.max', '100'],
      ['devices/berth/c1/devices.deny', 'a'],
      ...DEFAULT_DEVICE_RULES.map((r): [string, string] => ['devices/berth/c1/devices.allow', deviceRuleString(r)]),
    ]);
    assert.deepEqual(
      DEFAULT_DEVICE_RULES.map(deviceRuleString),
      ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm'],
    );
    // Only the hierarchies this cgroup needs: no cpuacct, freezer or blkio without accounting.
    assert.deepEqual(
      cg.paths.map((p) => fake.rel(p)).sort(),
      ['cpu/berth/c1', 'cpuset/berth/c1', 'devices/berth/c1', 'memory/berth/c1', 'pids/berth/c1'],
    );
    assert.deepEqual(cg.procsFiles, cg.paths.map((p) => join(p, 'cgroup.procs')));
    assert.deepEqual(fake.snapshotOutsideBerth(), before);

    // A second cgroup finds the parent filled and only writes its own files.
    fake.writes.length = 0;
    driver.create('c2', { cpuset: '0', pids: 10 });
    assert.deepEqual(fake.relWrites().slice(0, 2), [
      ['cpuset/berth/c2/cpuset.cpus', '0'],
      ['cpuset/berth/c2/cpuset.mems', '0'],
    ]);
  });

  test('a typical cgroup joins only pids, memory and devices', () => {
    const { fake, driver } = setup(HOST_MOUNTS);
    const cg = driver.create('t', { memory: 64 * MiB, pids: 100 });
    assert.deepEqual(cg.paths.map((p) => fake.rel(p)), ['pids/berth/t', 'devices/berth/t', 'memory/berth/t']);
  });

  test('memorySwap -1 writes -1 (unlimited); == memory gives no swap', () => {
    const { fake, driver } = setup(HOST_MOUNTS);
    driver.create('u', { memory: 64 * MiB, memorySwap: -1 });
    driver.create('n', { memory: 64 * MiB, memorySwap: 64 * MiB });
    assert.equal(readFileSync(join(fake.root, 'memory/berth/u/memory.memsw.limit_in_bytes'), 'utf8').trim(), '9223372036854771712');
    assert.deepEqual(fake.relWrites().filter(([p]) => p.endsWith('memsw.limit_in_bytes')), [
      ['memory/berth/u/memory.memsw.limit_in_bytes', '-1'],
      ['memory/berth/n/memory.memsw.limit_in_bytes', String(64 * MiB)],
    ]);
  });

  test('no swap accounting: implicit default skipped, explicit memorySwap refused before any mkdir', () => {
    const { fake, driver } = setup(HOST_MOUNTS, { swap: false });
    driver.create('a', { memory: 64 * MiB });
    assert.equal(fake.relWrites().some(([p]) => p.includes('memsw')), false);
    assert.throws(() => driver.create('b', { memory: 64 * MiB, memorySwap: 128 * MiB }), /swapaccount=1/);
    assert.equal(existsSync(join(fake.root, 'pids/berth/b')), false);
  });

  test('co-mounted cpu,cpuacct: one directory, one procs file for both', () => {
    const { fake, driver } = setup(COMOUNT_MOUNTS);
    const cg = driver.create('acct', { cpus: 1 }, { accounting: true }) as CgroupV1;
    assert.deepEqual(
      cg.paths.map((p) => fake.rel(p)),
      ['pids/berth/acct', 'devices/berth/acct', 'cpu,cpuacct/berth/acct', 'memory/berth/acct', 'freezer/berth/acct', 'blkio/berth/acct'],
    );
    assert.equal(cg.procsFiles.length, cg.paths.length);
    assert.equal(cg.dirOf('cpu'), cg.dirOf('cpuacct'));
    assert.equal(readFileSync(join(fake.root, 'cpu,cpuacct/berth/acct/cpu.cfs_quota_us'), 'utf8').trim(), '100000');
    // net_cls,net_prio, hugetlb and perf_event are never joined.
    assert.equal(existsSync(join(fake.root, 'net_cls,net_prio/berth')), false);

    fake.setFile(join(fake.root, 'cpu,cpuacct/berth/acct/cpuacct.usage'), '123456\n');
    fake.setFile(join(fake.root, 'memory/berth/acct/memory.usage_in_bytes'), '4096\n');
    fake.setFile(join(fake.root, 'blkio/berth/acct/blkio.throttle.io_service_bytes_recursive'), '8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Async 0\n8:0 Total 30\n8:16 Read 1\nTotal 31\n');
    assert.deepEqual(cg.stats(), {
      memory: { usage: 4096, limit: Infinity },
      pids: { current: 0, limit: Infinity },
      cpu: { usageNanos: 123456 },
      blkio: { readBytes: 11, writeBytes: 20 },
    });
  });

  test('devices is mandatory: a host without the devices hierarchy is refused', () => {
    const { driver } = setup(HOST_MOUNTS.filter((m) => m !== 'devices'));
    assert.throws(() => driver.create('x', { pids: 1 }), /controller "devices" is not mounted/);
  });

  test('oom_kill from memory.oom_control; freezer state; SIGKILL loop; remove', () => {
    const { fake, driver } = setup(HOST_MOUNTS);
    const before = fake.snapshotOutsideBerth();
    const cg = driver.create('life', { memory: 8 * MiB, pids: 5 }, { accounting: true });
    fake.setFile(join(fake.root, 'memory/berth/life/memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 4\n');
    assert.equal(cg.oomKillCount(), 4);

    cg.freeze();
    assert.equal(readFileSync(join(fake.root, 'freezer/berth/life/freezer.state'), 'utf8').trim(), 'FROZEN');
    cg.thaw();
    assert.equal(readFileSync(join(fake.root, 'freezer/berth/life/freezer.state'), 'utf8').trim(), 'THAWED');

    for (const p of cg.paths) fake.addPids(p, 7, 8);
    assert.deepEqual(cg.pids(), [7, 8]);
    cg.kill();
    assert.deepEqual(cg.pids(), []);
    assert.deepEqual(fake.killed.map((k) => k.pid), [7, 8]);
    // Frozen while signalled, thawed afterwards so the kills land.
    assert.deepEqual(fake.relWrites().filter(([p]) => p.endsWith('freezer.state')).slice(-2), [
      ['freezer/berth/life/freezer.state', 'FROZEN'],
      ['freezer/berth/life/freezer.state', 'THAWED'],
    ]);

    cg.remove();
    for (const p of cg.paths) assert.equal(existsSync(p), false);
    assert.deepEqual(driver.list(), []);
    assert.deepEqual(fake.snapshotOutsideBerth(), before);
  });

  test('freeze without a freezer cgroup says how to get one', () => {
    const { driver } = setup(HOST_MOUNTS);
    const cg = driver.create('nf', { pids: 5 });
    assert.throws(() => cg.freeze(), /accounting: true/);
  });

  test('open() rebuilds the controller map from what exists; list() unions hierarchies', () => {
    const { fake, driver } = setup(COMOUNT_MOUNTS);
    driver.create('o1', { memory: 8 * MiB });
    driver.create('o2', { pids: 3 });
    assert.deepEqual(driver.list(), ['o1', 'o2']);
    const cg = driver.open('o1') as CgroupV1;
    assert.deepEqual(cg.paths.map((p) => fake.rel(p)).sort(), ['devices/berth/o1', 'memory/berth/o1', 'pids/berth/o1']);
    assert.equal(cg.dirOf('memory'), join(fake.root, 'memory/berth/o1'));
    assert.equal(driver.open('missing'), undefined);
  });

  test('a failure midway removes what was created and keeps the original error', () => {
    const { fake, driver } = setup(HOST_MOUNTS);
    assert.throws(() => driver.create('mid', { memory: 64 * MiB, cpuset: '9' }), ValidationError);
    fake.writeHook = (path) => {
      if (path.endsWith('pids.max')) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    };
    assert.throws(() => driver.create('mid', { memory: 64 * MiB, pids: 5 }), /EINVAL/);
    for (const m of HOST_MOUNTS) assert.equal(existsSync(join(fake.root, m, 'berth/mid')), false, m);
  });
});
