/**
 * A pool under load and at its edges: many callers on a small pool (each sandbox to exactly one
 * caller, the refill keeping up), an abort while waiting, `onEmpty: 'create'`, and `close()`
 * while callers hold sandboxes; afterwards nothing is left on the host.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError, ConflictError, Runtime } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { ownCgroups, ownMounts } from '../helpers/pool-leftovers.js';
import { settledDiff, snapshot, type LeakDiff, type LeakSnapshot } from '../helpers/leaks.js';

const skip = kernelSkipReason();

function assertClean(d: LeakDiff, what: string): void {
  assert.deepEqual(ownCgroups(d.cgroups), [], `cgroup left after ${what}`);
  assert.deepEqual(ownMounts(d.mounts), [], `mount left after ${what}`);
  assert.deepEqual(d.children, [], `child process left after ${what}`);
  assert.deepEqual(d.zombies, [], `zombie left after ${what}`);
}

describe('pool: refill, abort, close', { skip, timeout: 300_000 }, () => {
  let root: string;
  let rt: Runtime;
  let clean: LeakSnapshot;

  before(async () => {
    clean = snapshot();
    root = mkdtempSync(join(tmpdir(), 'berth-pool-refill-'));
    rt = await Runtime.open({ root });
  });

  after(async () => {
    await rt?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('100 acquires from 10 callers on a pool of 4: every sandbox serves exactly one caller', async () => {
    const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 4, options: { pids: 16 } });
    const seenPids = new Set<number>();
    const seenHostnames = new Set<string>();
    let maxPending = 0;
    const caller = async (n: number): Promise<void> => {
      for (let i = 0; i < 10; i++) {
        const sb = await pool.acquire();
        try {
          assert.ok(!seenPids.has(sb.pid), `sandbox ${sb.pid} handed out twice`);
          seenPids.add(sb.pid);
          const r = await sb.run(['sh', '-c', 'hostname; echo $CALLER'], { env: { CALLER: String(n) } });
          assert.equal(r.exitCode, 0, r.stderr);
          const [host, who] = r.stdout.trim().split('\n');
          assert.equal(who, String(n));
          assert.ok(!seenHostnames.has(host!), `hostname ${host} seen twice: a sandbox was reused`);
          seenHostnames.add(host!);
        } finally {
          await sb.release();
        }
        const s = pool.stats();
        maxPending = Math.max(maxPending, s.pending);
        assert.ok(s.idle + s.pending <= 4, `refill exceeded size: ${JSON.stringify(s)}`);
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, n) => caller(n)));
    assert.equal(seenPids.size, 100);
    assert.ok(maxPending <= 2, `more than maxPending (default 2) preparations at once: ${maxPending}`);
    await pool.close();
    const s = pool.stats();
    assert.deepEqual({ idle: s.idle, pending: s.pending, inUse: s.inUse, waiting: s.waiting }, { idle: 0, pending: 0, inUse: 0, waiting: 0 });
    assertClean(await settledDiff(clean), '100 pooled runs');
  });

  test('abort while waiting rejects with AbortError and takes nothing', async () => {
    const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire({ signal: controller.signal });
    // Bounded: the waiter is registered synchronously by acquire() when nothing is idle.
    assert.equal(pool.stats().waiting, 1);
    controller.abort();
    await assert.rejects(waiting, AbortError);
    assert.equal(pool.stats().waiting, 0);
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(pool.acquire({ signal: aborted.signal }), AbortError);
    await held.release();
    // The refill goes on: a later caller is served.
    const next = await pool.acquire();
    assert.equal((await next.run(['true'])).exitCode, 0);
    await next.release();
    await pool.close();
    assertClean(await settledDiff(clean), 'an aborted acquire');
  });

  test("onEmpty: 'create' prepares one for the caller instead of waiting", async () => {
    const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, onEmpty: 'create' });
    const a = await pool.acquire();
    const b = await pool.acquire();
    assert.notEqual(a.pid, b.pid);
    assert.equal(pool.stats().inUse, 2);
    await Promise.all([a.release(), b.release()]);
    await pool.close();
    assertClean(await settledDiff(clean), "onEmpty: 'create'");
  });

  test('close() while callers hold sandboxes: they finish, waiters are told, then all is cleaned', async () => {
    const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 2 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const waiter = pool.acquire();
    const closed = pool.close();
    let closedYet = false;
    void closed.then(() => (closedYet = true));
    await assert.rejects(waiter, ConflictError);
    await assert.rejects(pool.acquire(), ConflictError);
    // The holders still run their command after close() began.
    const r = await a.run(['sh', '-c', 'echo still-mine']);
    assert.equal(r.stdout, 'still-mine\n');
    await a.release();
    assert.equal(closedYet, false, 'close() resolved while a caller still held a sandbox');
    await b.release();
    await closed;
    assertClean(await settledDiff(clean), 'close() with holders');
  });

  test('rt.close() closes its pools', async () => {
    const rt2 = await Runtime.open({ root });
    const pool = await rt2.pool({ source: { rootfs: busyboxRootfs() }, size: 2 });
    await rt2.close();
    assert.equal(pool.stats().idle, 0);
    await assert.rejects(pool.acquire(), ConflictError);
    assertClean(await settledDiff(clean), 'rt.close()');
  });
});
