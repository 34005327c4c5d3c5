/**
 * cgroup limits observed from inside the container (its cgroup namespace root is its own
 * cgroup): memory + OOM, pids + fork bomb, cpu quota and shares, cpuset.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { run, ValidationError, isBerthError, type RunOptions } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { berthCgroupDirs, ownedOrEmpty } from '../helpers/leaks.js';

const skip = kernelSkipReason();
const sh = <O extends RunOptions = RunOptions>(script: string, options?: O) => run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);
const MiB = 1024 * 1024;

describe('memory', { skip }, () => {
  test("memory '32m' is the cgroup's limit", async () => {
    const r = await sh('cat /sys/fs/cgroup/memory/memory.limit_in_bytes', { memory: '32m' });
    assert.equal(r.stdout.trim(), String(32 * MiB), r.stderr);
  });

  test('memorySwap equal to memory means no swap: memsw limit is the same', async () => {
    const r = await sh('cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo no-swap-accounting', { memory: '32m', memorySwap: '32m' });
    assert.ok([String(32 * MiB), 'no-swap-accounting'].includes(r.stdout.trim()), r.stdout + r.stderr);
  });

  test('allocating beyond the limit: oomKilled true, exit 137', async () => {
    // busybox tail keeps the whole newline-free input in memory.
    const r = await sh('head -c 200m /dev/zero | tail', { memory: '32m', memorySwap: '32m' });
    assert.equal(r.oomKilled, true, `stderr: ${r.stderr}`);
    assert.equal(r.exitCode, 137);
    assert.equal(r.timedOut, false);
  });

  test('OOM of PID 1 itself: oomKilled true, 137 and signal SIGKILL', async () => {
    const r = await run({ rootfs: busyboxRootfs() }, ['sh', '-c', 'exec tail /dev/zero'], { memory: '32m', memorySwap: '32m' });
    assert.equal(r.oomKilled, true);
    assert.equal(r.exitCode, 137);
    assert.equal(r.signal, 'SIGKILL');
  });

  test('staying under the limit: oomKilled false', async () => {
    const r = await sh('head -c 4m /dev/zero | tail | wc -c', { memory: '32m', memorySwap: '32m' });
    assert.equal(r.oomKilled, false);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), String(4 * MiB));
  });
});

describe('pids', { skip }, () => {
  test('pids: 32 is the cgroup limit; default is 4096', async () => {
    assert.equal((await sh('cat /sys/fs/cgroup/pids/pids.max', { pids: 32 })).stdout.trim(), '32');
    assert.equal((await sh('cat /sys/fs/cgroup/pids/pids.max')).stdout.trim(), '4096');
  });

  test('a bounded fork bomb under pids: 32 hits the limit and the container still ends', async () => {
    // busybox sh gives up at the first failed fork; PID 1 exiting then ends the whole container.
    const r = await sh('for i in $(seq 100); do sleep 2 & done; wait; echo all-forked', { pids: 32 });
    assert.match(r.stderr, /fork|Resource temporarily unavailable/i, 'no fork failed: the limit did not apply');
    assert.doesNotMatch(r.stdout, /all-forked/);
    assert.notEqual(r.exitCode, 0);
  });

  test('pids: -1 is no limit', async () => {
    assert.equal((await sh('cat /sys/fs/cgroup/pids/pids.max', { pids: -1 })).stdout.trim(), 'max');
  });
});

describe('cpu', { skip }, () => {
  test('cpus 0.5 is a CFS quota of 50000 per 100000 µs', async () => {
    const r = await sh('cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us', { cpus: 0.5 });
    assert.equal(r.stdout, '50000\n100000\n', r.stderr);
  });

  test("cpus as a string ('1.5')", { skip: availableParallelism() < 2 ? 'needs 2 CPUs' : false }, async () => {
    const r = await sh('cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us', { cpus: '1.5' });
    assert.equal(r.stdout.trim(), '150000', r.stderr);
  });

  test('cpuShares 512', async () => {
    const r = await sh('cat /sys/fs/cgroup/cpu/cpu.shares', { cpuShares: 512 });
    assert.equal(r.stdout.trim(), '512', r.stderr);
  });

  test("cpuset '0' pins the container to CPU 0", async () => {
    const r = await sh('cat /sys/fs/cgroup/cpuset/cpuset.cpus; grep Cpus_allowed_list /proc/self/status', { cpuset: '0' });
    assert.equal(r.stdout, '0\nCpus_allowed_list:\t0\n', r.stderr);
  });

  test('cpuset of the last CPU', { skip: availableParallelism() < 2 ? 'needs 2 CPUs' : false }, async () => {
    const last = String(availableParallelism() - 1);
    const r = await sh('grep Cpus_allowed_list /proc/self/status', { cpuset: last });
    assert.equal(r.stdout, `Cpus_allowed_list:\t${last}\n`, r.stderr);
  });

  test('a cpuset naming a CPU the host lacks is refused with a berth error, and no cgroup is left', async () => {
    const before = berthCgroupDirs();
    await assert.rejects(sh('true', { cpuset: '4095' }), (err: unknown) => {
      assert.ok(isBerthError(err), `not a berth error: ${String(err)}`);
      return true;
    });
    assert.deepEqual(berthCgroupDirs().filter((d) => !before.includes(d) && ownedOrEmpty(d)), []);
  });
});

describe('cgroup ownership', { skip }, () => {
  test('a cgroup under berth/ that berth did not create survives runs', { skip: existsSync('/sys/fs/cgroup/pids/berth') ? false : 'no v1 pids hierarchy with a berth parent' }, async () => {
    const foreign = `/sys/fs/cgroup/pids/berth/foreign-${process.pid}`;
    mkdirSync(foreign);
    try {
      await sh('true');
      await sh('sleep 30', { timeout: 100 });
      assert.ok(existsSync(foreign), 'berth removed a cgroup it did not create');
    } finally {
      if (existsSync(foreign)) rmdirSync(foreign);
    }
  });

  test("the container's cgroups are gone once run() resolves", async () => {
    const before = berthCgroupDirs();
    const r = await sh('cat /proc/self/cgroup', { memory: '32m', cpus: 0.5, cpuset: '0', pids: 64 });
    assert.equal(r.exitCode, 0);
    assert.deepEqual(berthCgroupDirs().filter((d) => !before.includes(d) && ownedOrEmpty(d)), []);
  });
});

describe('limits validation', { skip }, () => {
  test("memory 'abc' is a ValidationError naming memory", async () => {
    await assert.rejects(sh('true', { memory: 'abc' }), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.option, 'memory');
      return true;
    });
  });

  test('cpus 0 and negative pids are ValidationErrors', async () => {
    await assert.rejects(sh('true', { cpus: 0 }), ValidationError);
    await assert.rejects(sh('true', { pids: -5 }), ValidationError);
  });
});
