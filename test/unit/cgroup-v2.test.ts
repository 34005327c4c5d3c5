import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SystemError, UnsupportedError, ValidationError } from '../../lib/errors.js';
import { toSystemError } from '../../lib/cgroup/types.js';
import { CgroupV2Driver, cpuSharesToWeight, nodeCgroupFs, detectCgroupLayout, probeCgroups, resolveLimits, type CgroupLimits } from '../../lib/cgroup/index.js';
import { FakeCgroup2Fs, type V2FixtureOptions } from '../helpers/fake-cgroupfs.js';

const MiB = 1024 * 1024;

/** A typical pure-v2 host (Fedora/Ubuntu 22.04+/Debian 11+). */
const V2_MOUNTINFO = `\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:3 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
26 22 0:24 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
`;
const V2_PROC_SELF_CGROUP = '0::/user.slice/user-1000.slice/session-2.scope\n';

const fixtures: FakeCgroup2Fs[] = [];
function setup(opts: V2FixtureOptions = {}): { fake: FakeCgroup2Fs; driver: CgroupV2Driver } {
  const fake = new FakeCgroup2Fs(opts);
  fixtures.push(fake);
  return { fake, driver: new CgroupV2Driver({ root: fake.root, fs: fake, cpuCount: 4 }) };
}
after(() => {
  for (const f of fixtures) f.cleanup();
});

const file = (fake: FakeCgroup2Fs, rel: string): string => readFileSync(join(fake.root, rel), 'utf8').trim();

describe('probe (v2)', () => {
  test('a cgroup2 mount at /sys/fs/cgroup is unified, v2 driver rooted at the mount', () => {
    const layout = detectCgroupLayout(V2_MOUNTINFO, V2_PROC_SELF_CGROUP);
    assert.deepEqual(layout, { version: 2, mode: 'unified', v1: [], unified: '/sys/fs/cgroup', unifiedPlacement: { base: '/sys/fs/cgroup', readOnly: false } });
    const driver = probeCgroups({ mountinfo: V2_MOUNTINFO, procSelfCgroup: V2_PROC_SELF_CGROUP });
    assert.equal(driver.version, 2);
    assert.equal((driver as CgroupV2Driver).root, '/sys/fs/cgroup');
  });

  test('root is configurable', () => {
    const driver = probeCgroups({ mountinfo: V2_MOUNTINFO, root: '/sys/fs/cgroup/berth.slice' });
    assert.equal((driver as CgroupV2Driver).root, '/sys/fs/cgroup/berth.slice');
  });
});

describe('create (v2)', () => {
  test('removeParentIfEmpty: keeps berth/ while a container cgroup is in it, removes it after', () => {
    const { fake, driver } = setup();
    const cg = driver.create('p1', { pids: 10 });
    assert.equal(driver.removeParentIfEmpty(), false);
    cg.remove();
    assert.equal(driver.removeParentIfEmpty(), true);
    assert.equal(existsSync(join(fake.root, 'berth')), false);
  });

  test('attaches the device allow-list program to the new cgroup before anything joins it', () => {
    const { fake, driver } = setup();
    driver.create('dev1', {});
    assert.deepEqual(fake.deviceFilters.map((d) => relative(fake.root, d)), ['berth/dev1']);
    // A failed attach fails the create and leaves no directory behind.
    fake.attachDeviceFilter = () => {
      throw new Error('bpf refused');
    };
    assert.throws(() => driver.create('dev2', {}), /bpf refused/);
    assert.equal(existsSync(join(fake.root, 'berth/dev2')), false);
  });

  test('writes exactly the files for memory/swap/cpus/shares/cpuset/pids', () => {
    const { fake, driver } = setup();
    const before = fake.snapshotOutsideBerth();
    const cg = driver.create('c1', { memory: 64 * MiB, cpus: 0.5, cpuShares: 512, cpuset: '0-1', pids: 100 });

    assert.deepEqual(fake.relWrites(), [
      ['berth/cgroup.subtree_control', '+pids +memory +cpu +cpuset'],
      ['berth/c1/memory.max', String(64 * MiB)],
      // Docker's default memorySwap is 2x memory; v2's swap.max holds the swap part only.
      ['berth/c1/memory.swap.max', String(64 * MiB)],
      ['berth/c1/cpu.max', '50000 100000'],
      ['berth/c1/cpu.weight', '20'],
      ['berth/c1/cpuset.cpus', '0-1'],
      ['berth/c1/pids.max', '100'],
    ]);
    assert.equal(file(fake, 'berth/cgroup.subtree_control'), 'pids memory cpu cpuset');
    assert.equal(file(fake, 'berth/c1/memory.max'), String(64 * MiB));
    assert.equal(file(fake, 'berth/c1/cpu.max'), '50000 100000');
    assert.equal(file(fake, 'berth/c1/pids.max'), '100');

    assert.equal(cg.version, 2);
    assert.equal(cg.id, 'c1');
    assert.deepEqual(cg.paths, [join(fake.root, 'berth/c1')]);
    assert.deepEqual(cg.procsFiles, [join(fake.root, 'berth/c1/cgroup.procs')]);
    // The hard rule: nothing outside berth/ changed.
    assert.deepEqual(fake.snapshotOutsideBerth(), before);
  });

  test('memorySwap follows Docker: -1 unlimited, == memory no swap, total otherwise', () => {
    const cases: [CgroupLimits, string][] = [
      [{ memory: 64 * MiB, memorySwap: -1 }, 'max'],
      [{ memory: 64 * MiB, memorySwap: 64 * MiB }, '0'],
      [{ memory: 64 * MiB, memorySwap: 192 * MiB }, String(128 * MiB)],
      [{ memory: 64 * MiB, memorySwap: 0 }, String(64 * MiB)],
    ];
    const { fake, driver } = setup();
    cases.forEach(([limits, swap], i) => {
      driver.create(`s${i}`, limits);
      assert.equal(file(fake, `berth/s${i}/memory.swap.max`), swap, JSON.stringify(limits));
    });
  });

  test('without swap accounting the implicit swap limit is skipped and an explicit one refused', () => {
    const { fake, driver } = setup({ swap: false });
    driver.create('a', { memory: 64 * MiB });
    assert.deepEqual(
      fake.relWrites().filter(([p]) => p.startsWith('berth/a/')),
      [['berth/a/memory.max', String(64 * MiB)]],
    );
    assert.throws(() => driver.create('b', { memory: 64 * MiB, memorySwap: 128 * MiB }), UnsupportedError);
    assert.equal(existsSync(join(fake.root, 'berth/b')), false);
  });

  test('pids -1 and 0 mean unlimited', () => {
    const { fake, driver } = setup();
    driver.create('p1', { pids: -1 });
    driver.create('p2', { pids: 0 });
    assert.equal(file(fake, 'berth/p1/pids.max'), 'max');
    assert.equal(file(fake, 'berth/p2/pids.max'), 'max');
  });

  test('cpu shares convert to cpu.weight with the standard formula', () => {
    assert.equal(cpuSharesToWeight(2), 1);
    assert.equal(cpuSharesToWeight(1024), 39);
    assert.equal(cpuSharesToWeight(262144), 10000);
    const { fake, driver } = setup();
    driver.create('w', { cpuShares: 1024 });
    assert.equal(file(fake, 'berth/w/cpu.weight'), '39');
  });

  test('enables only the missing controllers in berth/ on later creates', () => {
    const { fake, driver } = setup();
    driver.create('a', { pids: 10 });
    driver.create('b', { pids: 10, memory: 8 * MiB });
    driver.create('c', { pids: 10, memory: 8 * MiB });
    const subtreeWrites = fake.relWrites().filter(([p]) => p === 'berth/cgroup.subtree_control');
    assert.deepEqual(subtreeWrites, [
      ['berth/cgroup.subtree_control', '+pids'],
      ['berth/cgroup.subtree_control', '+memory'],
    ]);
  });

  test('accounting enables memory, cpu, io and pids without writing limits', () => {
    const { fake, driver } = setup();
    driver.create('acct', {}, { accounting: true });
    assert.deepEqual(fake.relWrites(), [['berth/cgroup.subtree_control', '+pids +memory +cpu +io']]);
    assert.equal(existsSync(join(fake.root, 'berth/acct/io.stat')), true);
    assert.equal(existsSync(join(fake.root, 'berth/acct/memory.events')), true);
  });

  test('accounting skips controllers the root does not delegate, limits do not', () => {
    const { fake, driver } = setup({ subtreeControl: 'memory pids' });
    driver.create('acct', {}, { accounting: true });
    assert.equal(file(fake, 'berth/cgroup.subtree_control'), 'pids memory');
    assert.throws(() => driver.create('cpu', { cpus: 1 }), UnsupportedError);
  });

  test('a controller missing from the root subtree_control is an UnsupportedError with the fix; the root is not touched', () => {
    const { fake, driver } = setup({ subtreeControl: 'cpu pids' });
    const before = fake.snapshotOutsideBerth();
    assert.throws(() => driver.create('m', { memory: 64 * MiB, pids: 10 }), (e: unknown) => {
      assert.ok(e instanceof UnsupportedError);
      assert.equal(e.code, 'ERR_UNSUPPORTED');
      assert.match(e.message, /"memory" is not enabled for child cgroups/);
      assert.match(e.message, new RegExp(`echo \\+memory > ${join(fake.root, 'cgroup.subtree_control')}`));
      assert.match(e.message, /does not change cgroups it did not create/);
      return true;
    });
    assert.deepEqual(fake.writes, []);
    assert.equal(existsSync(join(fake.root, 'berth')), false);
    assert.deepEqual(fake.snapshotOutsideBerth(), before);
  });

  test('a controller the kernel does not offer at all gets a different explanation', () => {
    const { driver } = setup({ controllers: 'cpu memory pids', subtreeControl: 'cpu memory pids' });
    assert.throws(() => driver.create('cs', { cpuset: '0' }), /"cpuset" is not available/);
  });

  test('validation errors name the limit and create nothing', () => {
    const { fake, driver } = setup();
    const bad: [CgroupLimits, string][] = [
      [{ memory: -1 }, 'memory'],
      [{ memory: 1.5 }, 'memory'],
      [{ cpus: 5 }, 'cpus'],
      [{ cpus: -0.5 }, 'cpus'],
      [{ cpuset: '0-' }, 'cpuset'],
      [{ cpuset: '3-1' }, 'cpuset'],
      [{ cpuset: '0, 1' }, 'cpuset'],
      [{ cpuset: '7' }, 'cpuset'], // not in the parent's cpuset.cpus.effective (0-3)
      [{ memory: 64 * MiB, memorySwap: 32 * MiB }, 'memorySwap'],
      [{ memorySwap: 64 * MiB }, 'memorySwap'],
      [{ cpuShares: 1 }, 'cpuShares'],
      [{ pids: -2 }, 'pids'],
      [{ cpu: 1 } as CgroupLimits, 'cpu'],
    ];
    for (const [limits, option] of bad) {
      assert.throws(
        () => driver.create('v', limits),
        (e: unknown) => e instanceof ValidationError && e.option === option,
        JSON.stringify(limits),
      );
    }
    assert.equal(existsSync(join(fake.root, 'berth/v')), false);
    assert.throws(() => driver.create('../etc', {}), (e: unknown) => e instanceof ValidationError && e.option === 'id');
    assert.throws(() => driver.create('a/b', {}), ValidationError);
  });

  test('resolveLimits applies Docker defaults', () => {
    assert.deepEqual(resolveLimits({ memory: 10, cpus: 1.5, pids: 5 }, 2), {
      memorySwapExplicit: false,
      memory: 10,
      memorySwap: 20,
      cpuQuota: 150000,
      pids: 5,
    });
    assert.deepEqual(resolveLimits({ memory: 0, cpus: 0, cpuShares: 0 }, 2), { memorySwapExplicit: false });
  });

  test('an existing id is EEXIST from mkdir', () => {
    const { driver } = setup();
    driver.create('dup', { pids: 1 });
    assert.throws(
      () => driver.create('dup', { pids: 1 }),
      (e: unknown) => e instanceof SystemError && e.code === 'EEXIST' && e.syscall === 'mkdir' && /berth\/dup/.test(e.path ?? ''),
    );
  });

  test('a refused write is a SystemError naming the file and value; the half-made cgroup is removed', () => {
    const { fake, driver } = setup();
    fake.writeHook = (path, data) => {
      if (path.endsWith('cpu.max')) throw toSystemError(Object.assign(new Error('EINVAL'), { code: 'EINVAL', errno: -22 }), 'write', path, data);
    };
    assert.throws(
      () => driver.create('bad', { cpus: 1, pids: 4 }),
      (e: unknown) => {
        assert.ok(e instanceof SystemError);
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.errno, 22);
        assert.equal(e.syscall, 'write');
        assert.equal(e.path, join(fake.root, 'berth/bad/cpu.max'));
        assert.match(e.message, /writing "100000 100000" to .*berth\/bad\/cpu\.max failed: EINVAL/);
        return true;
      },
    );
    assert.equal(existsSync(join(fake.root, 'berth/bad')), false);
  });

  test('the real fs seam turns errno into SystemError (write to a file the kernel did not create)', () => {
    const { fake, driver } = setup();
    const cg = driver.create('nofile', { pids: 1 });
    const path = join(cg.paths[0]!, 'memory.max'); // memory is not enabled for this cgroup
    assert.throws(
      () => nodeCgroupFs.write(path, '1'),
      (e: unknown) => e instanceof SystemError && e.code === 'ENOENT' && e.syscall === 'write' && e.path === path && e.errno === 2,
    );
    assert.equal(existsSync(path), false, 'no O_CREAT: a missing controller file is never created');
    assert.throws(
      () => nodeCgroupFs.mkdir(cg.paths[0]!),
      (e: unknown) => e instanceof SystemError && e.code === 'EEXIST' && e.syscall === 'mkdir',
    );
    assert.throws(
      () => nodeCgroupFs.rmdir(join(fake.root, 'nope')),
      (e: unknown) => e instanceof SystemError && e.code === 'ENOENT' && e.syscall === 'rmdir',
    );
  });
});

describe('cgroup (v2)', () => {
  test('oomKillCount reads memory.events', () => {
    const { fake, driver } = setup();
    const cg = driver.create('oom', { memory: 8 * MiB });
    assert.equal(cg.oomKillCount(), 0);
    fake.setFile(join(cg.paths[0]!, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n');
    assert.equal(cg.oomKillCount(), 2);
    // No memory controller: nothing to count.
    assert.equal(driver.create('nomem', { pids: 5 }).oomKillCount(), 0);
  });

  test('freeze writes cgroup.freeze 1 and waits for frozen 1; thaw writes 0', () => {
    const { fake, driver } = setup();
    const cg = driver.create('fz', { pids: 5 });
    cg.freeze();
    assert.equal(file(fake, 'berth/fz/cgroup.freeze'), '1');
    cg.thaw();
    assert.equal(file(fake, 'berth/fz/cgroup.freeze'), '0');
    assert.deepEqual(fake.relWrites().slice(-2), [
      ['berth/fz/cgroup.freeze', '1'],
      ['berth/fz/cgroup.freeze', '0'],
    ]);
  });

  test('freeze that never completes is thawed again and reported', () => {
    const { fake, driver } = setup();
    const cg = driver.create('stuck', { pids: 5 });
    // The kernel accepts the request but a task never stops: events keep saying frozen 0.
    const write = fake.write.bind(fake);
    fake.write = (path: string, data: string): void => {
      write(path, data);
      if (path.endsWith('cgroup.freeze')) fake.setFile(join(cg.paths[0]!, 'cgroup.events'), 'populated 1\nfrozen 0\n');
    };
    assert.throws(() => cg.freeze({ timeoutMs: 5 }), (e: unknown) => e instanceof SystemError && e.code === 'EBUSY');
    assert.equal(file(fake, 'berth/stuck/cgroup.freeze'), '0');
  });

  test('pids() lists cgroup.procs, including sub-cgroups the container made', () => {
    const { fake, driver } = setup();
    const cg = driver.create('ps', { pids: 5 });
    fake.addPids(cg.paths[0]!, 30, 10);
    fake.mkdir(join(cg.paths[0]!, 'inner'));
    fake.addPids(join(cg.paths[0]!, 'inner'), 20);
    assert.deepEqual(cg.pids(), [10, 20, 30]);
  });

  test('kill() uses cgroup.kill when the kernel has it', () => {
    const { fake, driver } = setup();
    const cg = driver.create('k', { pids: 5 });
    fake.addPids(cg.paths[0]!, 11, 12);
    cg.kill();
    assert.deepEqual(fake.relWrites().at(-1), ['berth/k/cgroup.kill', '1']);
    assert.deepEqual(fake.killed, []);
    assert.deepEqual(cg.pids(), []);
  });

  test('kill() falls back to SIGKILL for every pid without cgroup.kill', () => {
    const { fake, driver } = setup({ cgroupKill: false });
    const cg = driver.create('k', { pids: 5 });
    fake.addPids(cg.paths[0]!, 11, 12);
    cg.kill();
    assert.deepEqual(fake.killed, [
      { pid: 11, signal: 'SIGKILL' },
      { pid: 12, signal: 'SIGKILL' },
    ]);
    assert.deepEqual(cg.pids(), []);
  });

  test('kill() reports processes that will not die', () => {
    const { fake, driver } = setup({ cgroupKill: false });
    const cg = driver.create('k', { pids: 5 });
    fake.addPids(cg.paths[0]!, 11);
    fake.kill = (pid, signal) => void fake.killed.push({ pid, signal });
    assert.throws(() => cg.kill({ timeoutMs: 5 }), (e: unknown) => e instanceof SystemError && e.code === 'EBUSY' && /11/.test(e.message));
  });

  test('stats() reads memory, pids, cpu and io', () => {
    const { fake, driver } = setup();
    const cg = driver.create('st', { memory: 64 * MiB, pids: 50 }, { accounting: true });
    const dir = cg.paths[0]!;
    fake.setFile(join(dir, 'memory.current'), '1048576\n');
    fake.setFile(join(dir, 'pids.current'), '3\n');
    fake.setFile(join(dir, 'cpu.stat'), 'usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n');
    fake.setFile(join(dir, 'io.stat'), '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n');
    assert.deepEqual(cg.stats(), {
      memory: { usage: 1048576, limit: 64 * MiB },
      pids: { current: 3, limit: 50 },
      cpu: { usageNanos: 2_500_000 },
      blkio: { readBytes: 4097, writeBytes: 8194 },
    });
    // Fresh fixture: on a berth/ that already delegates io, any new cgroup would show io.stat.
    const bare = setup().driver.create('bare', {});
    assert.deepEqual(bare.stats(), { memory: { usage: 0, limit: Infinity }, pids: { current: 0, limit: Infinity }, cpu: { usageNanos: 0 } });
  });

  test('remove() deletes the dir, is idempotent, and never touches berth/ or the root', () => {
    const { fake, driver } = setup();
    const before = fake.snapshotOutsideBerth();
    const cg = driver.create('rm', { pids: 5 });
    cg.remove();
    assert.equal(existsSync(cg.paths[0]!), false);
    assert.equal(existsSync(join(fake.root, 'berth')), true);
    cg.remove(); // ENOENT is fine
    assert.deepEqual(fake.snapshotOutsideBerth(), before);
  });

  test('remove() retries a transient EBUSY', () => {
    const { fake, driver } = setup();
    const cg = driver.create('busy', { pids: 5 });
    let refusals = 2;
    fake.rmdirHook = (path) => {
      if (refusals-- > 0) throw new SystemError('EBUSY', 'busy', { syscall: 'rmdir', path });
    };
    cg.remove();
    assert.equal(existsSync(cg.paths[0]!), false);
  });

  test('remove() gives up on a lasting EBUSY with a SystemError, and names foreign sub-cgroups', () => {
    const { fake, driver } = setup();
    const cg = driver.create('busy', { pids: 5 });
    fake.addPids(cg.paths[0]!, 99);
    assert.throws(
      () => cg.remove({ timeoutMs: 3 }),
      (e: unknown) => e instanceof SystemError && e.code === 'EBUSY' && e.syscall === 'rmdir' && e.path === cg.paths[0],
    );
    fake.addPids(cg.paths[0]!);
    fake.mkdir(join(cg.paths[0]!, 'nested'));
    assert.throws(() => cg.remove({ timeoutMs: 3 }), /sub-cgroups berth did not create: nested/);
    assert.equal(existsSync(join(cg.paths[0]!, 'nested')), true);
  });

  test('open() and list() find existing berth cgroups', () => {
    const { driver } = setup();
    assert.deepEqual(driver.list(), []);
    driver.create('b', { pids: 1 });
    driver.create('a', { pids: 1 });
    assert.deepEqual(driver.list(), ['a', 'b']);
    const cg = driver.open('a');
    assert.ok(cg);
    assert.equal(cg.version, 2);
    assert.equal(driver.open('zzz'), undefined);
  });
});
