/**
 * Leak check: after a diverse batch of runs (successes, failures, timeouts, aborts, setup
 * failures, OOM, init, tty, host mode), nothing new is left on the host: no mount, no berth
 * cgroup, no fd, no zombie, no child process. The detectors are proven first on leaks made on
 * purpose, so a clean result means something.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, isBerthError, type RunOptions } from '../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from './helpers/busybox-rootfs.js';
import { cgroupsForHost } from '../lib/launch/cgroup-setup.js';
import {
  CGROUP_ROOT,
  berthCgroupDirs,
  childProcesses,
  diff,
  isClean,
  mountLines,
  berthParentDirs,
  openFds,
  ownedOrEmpty,
  processesWithEnv,
  settledDiff,
  snapshot,
  zombieChildren,
  type LeakDiff,
} from './helpers/leaks.js';

const skip = kernelSkipReason();

function describeDiff(d: LeakDiff): string {
  return JSON.stringify(d, null, 2);
}

describe('leak detectors see leaks made on purpose', { skip }, () => {
  test('cgroup detector: a berth-named dir in a fixture tree (v1 hierarchy, hybrid unified, pure v2)', () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-leak-fixture-'));
    try {
      assert.deepEqual(berthCgroupDirs(root), []);
      const v1 = join(root, 'memory', 'berth', '0123456789abcdef0123456789abcdef');
      const hybrid = join(root, 'unified', 'berth', 'fedcba9876543210fedcba9876543210');
      const v2 = join(root, 'berth', 'aaaabbbbccccddddeeeeffff00001111');
      for (const d of [v1, hybrid, v2]) mkdirSync(d, { recursive: true });
      mkdirSync(join(root, 'memory', 'not-berth', 'x'), { recursive: true });
      assert.deepEqual(berthCgroupDirs(root), [v1, hybrid, v2].sort());
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('cgroup detector: a real cgroup made under berth/ in the pids hierarchy', { skip: existsSync(join(CGROUP_ROOT, 'pids')) ? false : 'no v1 pids hierarchy' }, () => {
    const parent = join(CGROUP_ROOT, 'pids', 'berth');
    const createdParent = !existsSync(parent);
    const dir = join(parent, `leakcheck-selftest-${process.pid}`);
    const before = snapshot();
    mkdirSync(dir, { recursive: true });
    try {
      const d = diff(before, snapshot());
      assert.ok(d.cgroups.includes(dir), `not seen: ${JSON.stringify(d.cgroups)}`);
      assert.equal(isClean(d), false);
    } finally {
      rmdirSync(dir);
      if (createdParent) rmdirSync(parent);
    }
    assert.ok(!diff(before, snapshot()).cgroups.includes(dir));
  });

  test('mount detector: a tmpfs mounted on the host is seen, and gone once unmounted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-leak-mnt-'));
    const before = snapshot();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'berth-leak-selftest', dir]);
    try {
      const d = diff(before, snapshot());
      assert.equal(d.mounts.length, 1);
      assert.match(d.mounts[0]!, /berth-leak-selftest/);
    } finally {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(diff(before, snapshot()).mounts, []);
  });

  test('fd detector: an fd opened and not closed is seen', () => {
    const before = snapshot();
    const fd = openSync('/etc/hostname', 'r');
    try {
      const d = diff(before, snapshot());
      assert.deepEqual(d.fds.map((f) => f.fd), [fd]);
      assert.equal(d.fds[0]!.target, '/etc/hostname');
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(diff(before, snapshot()).fds, []);
  });

  test('child detector: a child left running is seen', async () => {
    const before = snapshot();
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      const d = diff(before, snapshot());
      assert.deepEqual(d.children.map((p) => p.pid), [child.pid]);
    } finally {
      process.kill(child.pid!, 'SIGKILL');
      await once(child, 'exit');
    }
    assert.deepEqual(diff(before, snapshot()).children, []);
  });

  test('survivor detector: a process carrying a marker variable is found by it', async () => {
    const value = `selftest-${process.pid}`;
    const child = spawn('sleep', ['30'], { stdio: 'ignore', env: { ...process.env, BERTH_LEAK_MARK: value } });
    try {
      await once(child, 'spawn');
      assert.deepEqual(processesWithEnv('BERTH_LEAK_MARK', value).map((p) => p.pid), [child.pid]);
      assert.deepEqual(processesWithEnv('BERTH_LEAK_MARK', `${value}-other`), []);
    } finally {
      process.kill(child.pid!, 'SIGKILL');
      await once(child, 'exit');
    }
  });

  test('zombie detector: an unreaped child of a process is seen as state Z', async () => {
    // The shell forks `true`, then execs sleep, which never waits: `true` stays a zombie.
    const child = spawn('sh', ['-c', 'true & exec sleep 30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      let zombies = zombieChildren(child.pid!);
      for (let i = 0; i < 100 && zombies.length === 0; i++) {
        await sleep(20);
        zombies = zombieChildren(child.pid!);
      }
      assert.equal(zombies.length, 1);
      assert.equal(zombies[0]!.state, 'Z');
      assert.ok(childProcesses(child.pid!).some((p) => p.pid === zombies[0]!.pid));
    } finally {
      process.kill(child.pid!, 'SIGKILL');
      await once(child, 'exit');
    }
  });
});

describe('nothing survives a batch of runs', { skip }, () => {
  // Every container of the batch carries this variable, so survivors can be found anywhere.
  const MARK = 'BERTH_LEAK_MARK';
  const token = `leak-${process.pid}`;
  const sh = (script: string, options: RunOptions = {}) =>
    run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], { ...options, env: { ...options.env, [MARK]: token } });

  /** Every kind of run once; failures are expected and swallowed, outcomes are counted. */
  async function batch(): Promise<Record<string, string>> {
    const dir = mkdtempSync(join(tmpdir(), 'berth-leak-bind-'));
    const outcomes: Record<string, string> = {};
    const record = async (name: string, p: () => Promise<{ exitCode: number }>) => {
      try {
        outcomes[name] = `exit ${(await p()).exitCode}`;
      } catch (err) {
        outcomes[name] = isBerthError(err) ? `${(err as Error).name}` : `NON-BERTH ${String(err)}`;
      }
    };
    try {
      await record('success', () => sh('echo ok'));
      await record('exit-failure', () => sh('exit 3'));
      await record('not-found', () => run({ rootfs: busyboxRootfs() }, ['no-such-command'], { env: { [MARK]: token } }));
      await record('not-executable', () => run({ rootfs: busyboxRootfs() }, ['/bin/notexec'], { env: { [MARK]: token } }));
      await record('timeout', () => sh('sleep 30', { timeout: 100 }));
      await record('timeout-init', () => sh('sleep 30 & sleep 30', { timeout: 100, init: true }));
      await record('abort', () => {
        const ac = new AbortController();
        setTimeout(() => ac.abort(), 100);
        return sh('sleep 30', { signal: ac.signal });
      });
      await record('abort-before', () => sh('true', { signal: AbortSignal.abort() }));
      await record('bad-bind-target', () => sh('true', { mounts: [{ type: 'bind', source: dir, target: '/proc/berth-x' }] }));
      await record('missing-bind-source', () => sh('true', { mounts: [{ type: 'bind', source: join(dir, 'nope'), target: '/x' }] }));
      await record('bad-workdir', () => sh('true', { workdir: '/etc/passwd' }));
      await record('validation', () => sh('true', { memory: 'abc' }));
      await record('oom', () => sh('head -c 200m /dev/zero | tail', { memory: '32m', memorySwap: '32m' }));
      await record('init-orphans', () => sh('(sleep 0.1 &); sleep 0.3', { init: true }));
      await record('tty', () => sh('echo hi', { tty: true }));
      await record('tty-timeout', () => sh('sleep 30', { tty: true, timeout: 100 }));
      await record('stdin-readable', () => sh('cat', { stdin: Readable.from(['a', 'b']) }));
      await record('bind', () => sh('echo x > /d/f', { mounts: [{ type: 'bind', source: dir, target: '/d' }] }));
      await record('fork-bomb', () => sh('for i in $(seq 50); do sleep 1 & done; wait', { pids: 16 }));
      await record('background-survivor', () => sh('sleep 30 & echo bye'));
      await record('host', () => run({ host: true }, ['/bin/sh', '-c', 'sleep 30 & ls /usr/bin > /dev/null'], { env: { [MARK]: token } }));
      await record('parallel', async () => {
        const rs = await Promise.all([sh('echo 1'), sh('exit 2'), sh('sleep 30', { timeout: 100 })]);
        return { exitCode: rs.reduce((n, r) => n + r.exitCode, 0) };
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return outcomes;
  }

  test('no new mounts, berth cgroups, fds, zombies or child processes', async () => {
    // Warm up once: lazily opened, process-lifetime fds (the addon, the sealed init helper,
    // libuv's signal pipe) are not per-run leaks.
    await batch();
    const before = snapshot();
    const outcomes = await batch();
    // The batch really exercised the failure paths it claims to.
    assert.equal(outcomes.success, 'exit 0');
    assert.equal(outcomes['exit-failure'], 'exit 3');
    assert.equal(outcomes['not-found'], 'exit 127');
    assert.equal(outcomes.timeout, 'exit 137');
    assert.equal(outcomes.abort, 'AbortError');
    assert.equal(outcomes.validation, 'ValidationError');
    assert.equal(outcomes['missing-bind-source'], 'NotFoundError');
    assert.equal(outcomes['abort-before'], 'AbortError');
    assert.equal(outcomes['bad-bind-target'], 'SystemError');
    assert.equal(outcomes.oom, 'exit 137');
    assert.equal(outcomes['init-orphans'], 'exit 0');
    assert.equal(outcomes['tty-timeout'], 'exit 137');
    for (const [name, outcome] of Object.entries(outcomes)) assert.doesNotMatch(outcome, /NON-BERTH/, `${name}: ${outcome}`);

    // Bounded settle window (about 3 s) for asynchronous cleanup.
    const d = await settledDiff(before, 60, 50);
    assert.ok(isClean(d), `leaks after the batch (outcomes ${JSON.stringify(outcomes)}):\n${describeDiff(d)}`);
    let survivors = processesWithEnv(MARK, token);
    for (let i = 0; i < 40 && survivors.length > 0; i++) {
      await sleep(50);
      survivors = processesWithEnv(MARK, token);
    }
    assert.deepEqual(survivors, [], 'container processes outlived their run');
    const fdsNow = openFds().length;
    assert.ok(fdsNow <= before.fds.length, `fd count grew from ${before.fds.length} to ${fdsNow}`);
    assert.deepEqual(zombieChildren(), []);
    assert.deepEqual(mountLines().length, before.mounts.length);
  });
});

describe('the whole suite leaves no berth cgroup behind', { skip }, () => {
  // `npm test` runs this file alone, after all the others (scripts/run-tests.sh): every other
  // file's containers are gone by now. berth keeps its
  // `berth` parent cgroups between containers (as Docker keeps /docker); the suite removes them
  // at its end, and a container cgroup left in one (empty, or ours) is a leak of some test.
  test('no container cgroup is left; the berth parents are removed', async () => {
    const leftovers = () => berthCgroupDirs().filter(ownedOrEmpty);
    for (let i = 0; i < 100 && leftovers().length > 0; i++) await sleep(50);
    assert.deepEqual(leftovers(), [], 'container cgroups outlived the suite');
    // Populated parents (other processes' containers on this machine) are left as they are.
    cgroupsForHost().driver.removeParentIfEmpty();
    const mine = berthParentDirs().filter((d) => berthCgroupDirs().every((c) => !c.startsWith(`${d}/`)));
    assert.deepEqual(mine, [], 'empty berth parent cgroups were left');
  });
});
