/**
 * The v1 driver against the real kernel (root, cgroup v1 or hybrid host). Every cgroup made
 * here has a `ktest-<pid>-` id and is killed and removed in `after()` whatever happened.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../lib/errors.js';
import { probeCgroups, type Cgroup, type CgroupV1, type CgroupV1Driver } from '../../lib/cgroup/index.js';

const MiB = 1024 * 1024;
const CG = '/sys/fs/cgroup';

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  try {
    if (probeCgroups().version !== 1) return 'host is not cgroup v1';
  } catch (err) {
    return `no cgroups: ${(err as Error).message}`;
  }
  return false;
}
const skip = skipReason();

const prefix = `ktest-${process.pid}-`;
let seq = 0;
const newId = (): string => `${prefix}${seq++}`;
const children: ChildProcess[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (skip) return;
  const driver = probeCgroups();
  const failures: unknown[] = [];
  for (const id of driver.list().filter((i) => i.startsWith(prefix))) {
    try {
      const cg = driver.open(id)!;
      cg.kill();
      cg.remove({ timeoutMs: 500 });
    } catch (err) {
      failures.push(err); // keep cleaning the others first
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, 'cgroup cleanup failed');
});

const read = (path: string): string => readFileSync(path, 'utf8').trim();
const state = (pid: number): string => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;

/** Start `argv` and move it into the cgroup, as the native launcher will. */
function startIn(cg: Cgroup, argv: string[]): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'ignore'] });
  children.push(child);
  for (const f of cg.procsFiles) writeFileSync(f, String(child.pid));
  return child;
}

/** Dirs named `id` under any hierarchy's berth/ on this host. */
function leftovers(id: string): string[] {
  return readdirSync(CG)
    .map((h) => join(CG, h, 'berth', id))
    .filter((p) => existsSync(p));
}

describe('cgroup v1 driver on the real kernel', { skip }, () => {
  test('limits land in the kernel files, the device whitelist is the only one', () => {
    const driver = probeCgroups() as CgroupV1Driver;
    const id = newId();
    const cg = driver.create(id, { memory: 64 * MiB, cpus: 0.5, cpuShares: 512, pids: 32 }, { accounting: true }) as CgroupV1;
    try {
      const mem = cg.dirOf('memory')!;
      assert.equal(read(join(mem, 'memory.limit_in_bytes')), String(64 * MiB));
      if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) {
        assert.equal(read(join(mem, 'memory.memsw.limit_in_bytes')), String(128 * MiB));
      }
      assert.equal(read(join(cg.dirOf('cpu')!, 'cpu.cfs_quota_us')), '50000');
      assert.equal(read(join(cg.dirOf('cpu')!, 'cpu.cfs_period_us')), '100000');
      assert.equal(read(join(cg.dirOf('cpu')!, 'cpu.shares')), '512');
      assert.equal(read(join(cg.dirOf('pids')!, 'pids.max')), '32');
      assert.deepEqual(
        read(join(cg.dirOf('devices')!, 'devices.list')).split('\n').sort(),
        ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm'].sort(),
      );
      for (const p of cg.paths) assert.ok(p.startsWith(`${CG}/`) && p.endsWith(`/berth/${id}`), p);
      assert.deepEqual(driver.list().filter((i) => i === id), [id]);
      assert.deepEqual([...(driver.open(id)?.paths ?? [])].sort(), [...cg.paths].sort());
    } finally {
      cg.remove();
    }
    assert.deepEqual(leftovers(id), []);
  });

  test('a real process: pids, stats, freeze/thaw, kill, remove', async () => {
    const driver = probeCgroups();
    const id = newId();
    const cg = driver.create(id, { memory: 64 * MiB, pids: 16 }, { accounting: true });
    const child = startIn(cg, ['sleep', '5']);
    const exited = once(child, 'exit');
    const pid = child.pid!;

    assert.deepEqual(cg.pids(), [pid]);
    const stats = cg.stats();
    assert.equal(stats.pids.current, 1);
    assert.equal(stats.pids.limit, 16);
    assert.equal(stats.memory.limit, 64 * MiB);
    assert.equal(typeof stats.cpu.usageNanos, 'number');
    assert.ok(stats.blkio);

    cg.freeze();
    // A v1-frozen task sleeps in the refrigerator, shown as uninterruptible.
    assert.equal(state(pid), 'D');
    cg.thaw();
    // Thawed: out of the refrigerator; sleeping again, or for an instant still runnable on its way back.
    assert.match(state(pid), /^[SR]$/);

    cg.kill();
    assert.deepEqual(cg.pids(), []);
    const [code, signal] = await exited;
    assert.equal(code, null);
    assert.equal(signal, 'SIGKILL');

    cg.remove();
    assert.deepEqual(leftovers(id), []);
    assert.equal(driver.open(id), undefined);
  });

  test('the OOM killer is counted', async () => {
    const driver = probeCgroups();
    const id = newId();
    const cg = driver.create(id, { memory: 16 * MiB, memorySwap: 16 * MiB, pids: 16 });
    // `tail` buffers an endless line of zeros; it waits for a line on stdin so that it only
    // allocates once it is inside the cgroup.
    const child = startIn(cg, ['sh', '-c', 'read go; exec tail /dev/zero']);
    const exited = once(child, 'exit');
    child.stdin!.end('go\n');
    const [, signal] = await exited;
    assert.equal(signal, 'SIGKILL');
    assert.equal(cg.oomKillCount(), 1);
    cg.remove();
    assert.deepEqual(leftovers(id), []);
  });

  test('cpuset: parent and child are filled so the cgroup accepts tasks', async () => {
    const driver = probeCgroups() as CgroupV1Driver;
    const id = newId();
    const cg = driver.create(id, { cpuset: '0', pids: 4 }) as CgroupV1;
    const dir = cg.dirOf('cpuset')!;
    assert.equal(read(join(dir, 'cpuset.cpus')), '0');
    assert.notEqual(read(join(dir, 'cpuset.mems')), '');
    assert.notEqual(read(join(dir, '..', 'cpuset.cpus')), '');
    const child = startIn(cg, ['sleep', '5']); // ENOSPC here if the cpuset were empty
    const exited = once(child, 'exit');
    assert.equal(/^Cpus_allowed_list:\s+(\S+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1], '0');
    cg.kill();
    await exited;
    cg.remove();
    assert.deepEqual(leftovers(id), []);
  });

  test('invalid limits are refused before anything is created', () => {
    const driver = probeCgroups();
    const id = newId();
    const n = availableParallelism();
    assert.throws(() => driver.create(id, { cpus: n + 1 }), (e: unknown) => e instanceof ValidationError && e.option === 'cpus');
    assert.throws(() => driver.create(id, { cpuset: String(n + 7) }), (e: unknown) => e instanceof ValidationError && e.option === 'cpuset');
    assert.throws(() => driver.create(id, { memory: -5 }), ValidationError);
    assert.deepEqual(leftovers(id), []);
  });

  test('create()+remove() cost (pids+memory), 200 iterations', (t) => {
    const driver = probeCgroups();
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const id = `${prefix}bench`;
      const t0 = process.hrtime.bigint();
      driver.create(id, { memory: 64 * MiB, pids: 100 }).remove();
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    const q = (f: number): number => Math.round(times[Math.floor(f * (times.length - 1))]!);
    t.diagnostic(`create+remove µs: median ${q(0.5)}, p90 ${q(0.9)}, min ${q(0)}, max ${q(1)}`);
    assert.deepEqual(leftovers(`${prefix}bench`), []);
  });
});
