/**
 * Prewarmed pools (issue 18 §2): every sandbox's main process is started and waited for until
 * ready before acquire(); the caller gets it attached. A sandbox whose main dies before acquire
 * is dropped and replaced, never handed out; a main that never gets ready fails the pool.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError, Runtime, SystemError, ValidationError } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { ownCgroups, ownMounts } from '../helpers/pool-leftovers.js';
import { settledDiff, snapshot, type LeakSnapshot } from '../helpers/leaks.js';
import { listensOn } from '../../lib/pool/ready-port.js';

const skip = kernelSkipReason();

async function readAll(stream: Readable | null): Promise<string> {
  let out = '';
  for await (const chunk of stream ?? []) out += String(chunk);
  return out;
}

describe('pool: prewarmed main process', { skip, timeout: 120_000 }, () => {
  let root: string;
  let shared: string;
  let rt: Runtime;
  let clean: LeakSnapshot;

  before(async () => {
    clean = snapshot();
    root = mkdtempSync(join(tmpdir(), 'berth-pool-prewarm-'));
    shared = mkdtempSync(join(tmpdir(), 'berth-pool-shared-'));
    rt = await Runtime.open({ root });
  });

  after(async () => {
    await rt?.close();
    for (const d of [root, shared]) if (d) rmSync(d, { recursive: true, force: true });
  });

  test('acquire() hands out a main that is already running and ready, attached', async () => {
    const pool = await rt.pool({
      source: { rootfs: busyboxRootfs() },
      size: 2,
      main: ['sh', '-c', 'echo booting; echo ready now; echo after-ready; while read l; do echo "got $l"; done; exit 4'],
      ready: { log: /^ready/ },
    });
    const sb = await pool.acquire();
    try {
      sb.stdin!.end('hello\n');
      const [out, status] = await Promise.all([readAll(sb.stdout), sb.exited!, readAll(sb.stderr)]);
      assert.equal(out, 'after-ready\ngot hello\n', 'output before the ready line is consumed, after it is the caller\'s');
      assert.equal(status.exitCode, 4);
      await assert.rejects(sb.run(['true']), ConflictError);
    } finally {
      await sb.release();
      await pool.close();
    }
  });

  test('a prewarmed sandbox whose main dies before acquire() is replaced, never handed out', async () => {
    // The first sandbox's main dies shortly after it is ready; the ones after it stay up.
    const script = `if mkdir /shared/first 2>/dev/null; then echo ready; sleep 0.2; exit 3; fi; echo ready; read l; echo "alive $l"`;
    const pool = await rt.pool({
      source: { rootfs: busyboxRootfs() },
      size: 1,
      options: { mounts: [{ type: 'bind', source: shared, target: '/shared' }] },
      main: ['sh', '-c', script],
      ready: { log: 'ready' },
    });
    for (let i = 0; i < 200 && !(pool.stats().discarded === 1 && pool.stats().idle === 1); i++) await sleep(25);
    assert.equal(pool.stats().discarded, 1, 'the dead sandbox was dropped');
    const sb = await pool.acquire();
    try {
      sb.stdin!.end('yes\n');
      const [out] = await Promise.all([readAll(sb.stdout), readAll(sb.stderr)]);
      assert.equal(out, 'alive yes\n', 'the caller got the replacement, whose main runs');
      assert.equal((await sb.exited!).exitCode, 0);
    } finally {
      await sb.release();
      await pool.close();
    }
  });

  test('ready: { port } hands out a main that listens, and fails a pool whose main never does', async () => {
    const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['nc', '-l', '-p', '8080'], ready: { port: 8080 } });
    const sb = await pool.acquire();
    try {
      assert.ok(listensOn(sb.pid, 8080), 'the main listens on 8080 in its sandbox when it is handed out');
    } finally {
      await sb.release();
      await pool.close();
    }
    // It would listen only once told to: the condition is never met, and nothing is handed out.
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['sh', '-c', 'read go; exec nc -l -p 8080'], ready: { port: 8080, timeout: 300 } }),
      (e: unknown) => e instanceof SystemError && e.code === 'ETIMEDOUT' && /port 8080/.test(e.message),
    );
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['sh', '-c', 'exit 2'], ready: { port: 8080 } }),
      (e: unknown) => e instanceof SystemError && e.code === 'ECHILD',
    );
    for (const ready of [{ port: 0 }, { port: 8080, log: 'x' }, { port: 8080, bogus: 1 }, { log: 'x', interval: 5 }]) {
      await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['true'], ready: ready as never }), (e: unknown) => e instanceof ValidationError && /ready/.test(e.message), JSON.stringify(ready));
    }
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, options: { network: 'host' }, main: ['true'], ready: { port: 8080 } }),
      (e: unknown) => e instanceof ValidationError && /ready\.port/.test(e.message),
    );
  });

  test('a main that exits or never gets ready fails rt.pool() with a SystemError and leaves nothing', async () => {
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['sh', '-c', 'echo nope; exit 1'], ready: { log: 'ready' } }),
      (e: unknown) => e instanceof SystemError && e.code === 'ECHILD' && /nope/.test(e.message),
    );
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['sleep', '100'], ready: { log: 'ready', timeout: 300 } }),
      (e: unknown) => e instanceof SystemError && e.code === 'ETIMEDOUT',
    );
    await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, main: ['no-such-binary'] }), (e: unknown) => e instanceof SystemError && e.code === 'ENOENT');
    await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, ready: { log: 'x' } }), (e: unknown) => e instanceof ValidationError && /ready/.test(e.message));
    const d = await settledDiff(clean);
    assert.deepEqual(ownCgroups(d.cgroups), [], 'cgroup left');
    assert.deepEqual(ownMounts(d.mounts), [], 'mount left');
    assert.deepEqual(d.children, [], 'child process left');
    assert.deepEqual(d.zombies, [], 'zombie left');
  });
});
