/**
 * Pooled sandboxes have lifetime 'process': when their owner is SIGKILLed (no `finally`, no
 * `close()`), every process of every sandbox (idle and held) dies with it, no mount is left on
 * the host, and the next berth process removes the cgroups the owner left.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { berthCgroupDirs, mountLines } from '../helpers/leaks.js';

const skip = kernelSkipReason();
const child = new URL('./pool-owner-child.ts', import.meta.url).pathname;

function cgroupsOf(pid: number): string[] {
  return berthCgroupDirs().filter((d) => d.split('/').pop()!.startsWith(`run-${pid}-`));
}

/**
 * The process exists and is not a zombie. Orphans are reparented to the host's PID 1, which on
 * this VM (a firecracker init) reaps them late: a zombie has exited and holds nothing but its pid.
 */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe('pool: a SIGKILLed owner', { skip, timeout: 120_000 }, () => {
  test('its sandboxes die with it, no mount stays, and the next process removes their cgroups', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-pool-crash-'));
    const mountsBefore = new Set(mountLines());
    try {
      const owner = spawn(process.execPath, ['--import', 'tsx', child, root], { stdio: ['ignore', 'pipe', 'inherit'] });
      let line = '';
      for await (const l of createInterface({ input: owner.stdout! })) {
        line = l;
        break;
      }
      assert.match(line, /^ready( \d+){4,}$/, `the owner did not get ready: ${line}`);
      const pids = line.split(' ').slice(1).map(Number);
      for (const pid of pids) assert.ok(existsSync(`/proc/${pid}`), `sandbox process ${pid} runs before the kill`);
      const left = cgroupsOf(owner.pid!);
      assert.ok(left.length >= 4, `one cgroup per sandbox (held + 3 idle), got ${left.length}`);

      owner.kill('SIGKILL');
      await new Promise((r) => owner.once('exit', r));
      // Bounded wait for the parent-death signal's effect.
      for (let i = 0; i < 100 && pids.some(running); i++) await sleep(20);
      for (const pid of pids) assert.equal(running(pid), false, `sandbox process ${pid} outlived its owner`);
      // Only mounts a pool could leave on the host (staging dir, this test's state dir): the
      // machine is shared and other processes' network tests mount namespace files meanwhile.
      const ours = (l: string) => l.includes('/run/berth/') || l.includes('berth-pool-');
      assert.deepEqual(mountLines().filter((l) => !mountsBefore.has(l) && ours(l)), [], 'a mount stayed on the host');

      // The next berth process sweeps the orphaned cgroups on its first launch.
      const rt = await Runtime.open({ root });
      try {
        const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1 });
        await pool.close();
      } finally {
        await rt.close();
      }
      assert.deepEqual(cgroupsOf(owner.pid!), [], 'the orphaned cgroups were removed');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('nothing of a closed pool keeps the owner alive: it exits by itself after rt.close()', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-pool-exit-'));
    try {
      const owner = spawn(process.execPath, ['--import', 'tsx', child, root, 'close'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      owner.stdout!.on('data', (c) => (out += String(c)));
      // Bounded by the suite's timeout: a handle left open would keep it running until then.
      const code = await new Promise((r) => owner.once('exit', r));
      assert.equal(out, 'closed\n');
      assert.equal(code, 0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
