/**
 * `ready: { healthcheck }` of a prewarmed pool: a sandbox is handed out only after a probe,
 * run beside its main process in the sandbox, passed; a main that never passes fails the
 * preparation; no probe is left running in a sandbox that was handed out.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Runtime, SystemError, ValidationError } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { settledDiff, snapshot, type LeakSnapshot } from '../helpers/leaks.js';

const skip = kernelSkipReason();

async function readAll(stream: Readable | null): Promise<string> {
  let out = '';
  for await (const chunk of stream ?? []) out += String(chunk);
  return out;
}

/** Host pids of the processes in the pid namespace of `pid`. */
function inPidNamespaceOf(pid: number): number[] {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/pid`) === ns) out.push(Number(name));
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return out;
}

describe('pool: ready when a healthcheck passes', { skip, timeout: 120_000 }, () => {
  let root: string;
  let rt: Runtime;
  let clean: LeakSnapshot;

  before(async () => {
    clean = snapshot();
    root = mkdtempSync(join(tmpdir(), 'berth-pool-health-'));
    rt = await Runtime.open({ root });
  });

  after(async () => {
    await rt?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('acquire() hands out a sandbox only once its probe passed', async () => {
    // The main becomes healthy a second after it starts: a pool that did not wait for the
    // probe would hand the sandbox out before /tmp/ok exists. The shell makes the file itself
    // (a redirection, no child): a forked `touch` could still be exiting when the probe sees
    // the file, and would be counted below as a process left in the sandbox.
    const pool = await rt.pool({
      source: { rootfs: busyboxRootfs() },
      size: 1,
      main: ['sh', '-c', 'sleep 1; : > /tmp/ok; exec cat'],
      ready: { healthcheck: { test: ['CMD', 'test', '-f', '/tmp/ok'], startPeriod: '60s', startInterval: 50 }, timeout: 60_000 },
    });
    try {
      const sb = await pool.acquire();
      try {
        assert.ok(existsSync(`/proc/${sb.pid}/root/tmp/ok`), 'the main had not become healthy when the sandbox was handed out');
        assert.deepEqual(inPidNamespaceOf(sb.pid), [sb.pid], 'only the main runs in a handed-out sandbox: no probe is left');
        sb.stdin!.end('request\n');
        const [out, status] = await Promise.all([readAll(sb.stdout), sb.exited!]);
        assert.equal(out, 'request\n');
        assert.equal(status.exitCode, 0);
      } finally {
        // A held sandbox keeps pool.close() and rt.close() waiting: release it even on failure.
        await sb.release();
      }
    } finally {
      await pool.close();
    }
  });

  test('the probe runs as the sandbox does: its user and its filesystem', async () => {
    const pool = await rt.pool({
      source: { rootfs: busyboxRootfs() },
      size: 1,
      options: { user: '65534:65534' },
      main: ['sh', '-c', 'echo x > /tmp/mine; exec cat'],
      // Passes only for uid 65534 in the sandbox's own /tmp.
      ready: { healthcheck: { test: 'test "$(id -u)" = 65534 && test -f /tmp/mine', startPeriod: '60s', startInterval: 50 }, timeout: 60_000 },
    });
    const sb = await pool.acquire();
    sb.stdin!.end();
    await sb.exited;
    await sb.release();
    await pool.close();
  });

  test('a probe that leaves a process in the background does not hold the preparation', async () => {
    // The left process keeps the probe's output pipes open: a probe read to their end would
    // wait for it (300 s) instead of taking the probe's exit.
    const started = performance.now();
    const pool = await rt.pool({
      source: { rootfs: busyboxRootfs() },
      size: 1,
      main: ['sh', '-c', ': > /tmp/ok; exec cat'],
      ready: { healthcheck: { test: 'sleep 300 & test -f /tmp/ok', startPeriod: '60s', startInterval: 50 }, timeout: 60_000 },
    });
    try {
      assert.ok(performance.now() - started < 60_000, 'the preparation waited for the probe\'s background process');
    } finally {
      await pool.close();
    }
  });

  test('a main that never passes fails the pool (EIO after retries); bad options are named', async () => {
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['sleep', '1000'], ready: { healthcheck: { test: ['CMD', 'false'], interval: 20, retries: 2 } } }),
      (e: unknown) => e instanceof SystemError && e.code === 'EIO' && /2 healthcheck probes failed/.test(e.message),
    );
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['cat'], ready: { healthcheck: {} } }),
      (e: unknown) => e instanceof ValidationError && e.option === 'ready.healthcheck.test',
    );
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['cat'], ready: { healthcheck: { test: ['CMD', 'true'], interval: 'soon' } } }),
      (e: unknown) => e instanceof ValidationError && e.option === 'ready.healthcheck.interval',
    );
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['cat'], ready: { healthcheck: { test: ['CMD', 'true'] }, log: 'x' } as object as { log: string } }),
      (e: unknown) => e instanceof ValidationError && e.option === 'ready',
    );
  });

  test('nothing is left on the host', async () => {
    await rt.close();
    const d = await settledDiff(clean);
    assert.deepEqual(d.children, [], 'child process left');
    assert.deepEqual(d.zombies, [], 'zombie left');
    assert.deepEqual(d.cgroups.filter((c) => c.split('/').pop()!.startsWith(`run-${process.pid}-`)), [], 'cgroup left');
  });
});
