/**
 * `prewarm` of a pool (issue 18 §1, the optional zygote): a warm-up command every sandbox runs
 * to completion while it is prepared. Each sandbox runs its own (nothing shared between
 * sandboxes), as the sandbox's user; what it writes is there for the caller's command; nothing
 * of it runs on; a warm-up that fails, hangs or leaves a process behind fails the preparation
 * with a typed error and leaves nothing on the host.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, SystemError, ValidationError } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { ownCgroups, ownMounts } from '../helpers/pool-leftovers.js';
import { settledDiff, snapshot, type LeakSnapshot } from '../helpers/leaks.js';

const skip = kernelSkipReason();

/** Host processes whose command line is exactly `argv` (a marker no other process uses). */
function processesRunning(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1') === want) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('pool: prewarm (a warm-up command per sandbox)', { skip, timeout: 120_000 }, () => {
  let root: string;
  let rt: Runtime;
  let clean: LeakSnapshot;

  before(async () => {
    clean = snapshot();
    root = mkdtempSync(join(tmpdir(), 'berth-pool-warmup-'));
    rt = await Runtime.open({ root });
  });

  after(async () => {
    await rt?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test("what the warm-up wrote is there for the caller's command, and none of its processes is", async () => {
    const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, prewarm: ['sh', '-c', 'mkdir /tmp/cache && echo warm > /tmp/cache/x'] });
    const sb = await pool.acquire();
    try {
      // `echo` and the glob are the shell's own: the only process left to list is the command (PID 1).
      const r = await sb.run(['sh', '-c', 'cat /tmp/cache/x; echo /proc/[0-9]*']);
      assert.equal(r.exitCode, 0, r.stderr as string);
      assert.equal(r.stdout, 'warm\n/proc/1\n');
    } finally {
      await sb.release();
      await pool.close();
    }
  });

  test("each sandbox runs its own warm-up, as the sandbox's user: nothing is shared between sandboxes", async () => {
    const pool = await rt.pool({
      source: { rootfs: busyboxRootfs() },
      size: 2,
      options: { user: '1234:1234' },
      prewarm: ['sh', '-c', 'cat /proc/sys/kernel/random/uuid > /tmp/token; id -u > /tmp/uid'],
    });
    const a = await pool.acquire();
    const b = await pool.acquire();
    try {
      const [ra, rb] = await Promise.all([a.run(['cat', '/tmp/token', '/tmp/uid']), b.run(['cat', '/tmp/token', '/tmp/uid'])]);
      const [tokenA, uidA] = (ra.stdout as string).trim().split('\n');
      const [tokenB, uidB] = (rb.stdout as string).trim().split('\n');
      assert.match(tokenA!, /^[0-9a-f-]{36}$/);
      assert.notEqual(tokenA, tokenB, 'two sandboxes, two warm-ups');
      assert.deepEqual([uidA, uidB], ['1234', '1234'], "the warm-up ran as the sandbox's user");
    } finally {
      await a.release();
      await b.release();
      await pool.close();
    }
  });

  test("the warm-up cannot reach the parked PID 1: not its descriptors (the control socket), not its life", async () => {
    // Root in the sandbox (the default user), run while PID 1 still waits with Node's control
    // socket open: PID 1 is not dumpable, so what its /proc/1/fd entries point to, its
    // environment and its memory need CAP_SYS_PTRACE, which the sandbox has not; and a pid
    // namespace's init ignores signals from inside it. (Listing /proc/1/fd is allowed to
    // root: the directory's owner check, not ptrace's.)
    const reach = 'readlink /proc/1/fd/* || cat /proc/1/environ || head -c 1 /proc/1/mem';
    const probe = `if { ${reach}; } >/dev/null 2>&1; then echo open; else echo denied; fi > /tmp/fd; kill -9 1 2>/dev/null; kill -STOP 1 2>/dev/null; true`;
    const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, prewarm: ['sh', '-c', probe] });
    const sb = await pool.acquire();
    try {
      const r = await sb.run(['cat', '/tmp/fd']);
      assert.equal(r.exitCode, 0, 'PID 1 survived the warm-up and became the command');
      assert.equal(r.stdout, 'denied\n', "the warm-up listed PID 1's descriptors");
    } finally {
      await sb.release();
      await pool.close();
    }
  });

  test('a warm-up that fails, hangs, leaves a process running or cannot start fails rt.pool() with a typed error and leaves nothing', async () => {
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, prewarm: ['sh', '-c', 'echo broken cache >&2; exit 3'] }),
      (e: unknown) => e instanceof SystemError && e.code === 'EIO' && /code 3/.test(e.message) && /broken cache/.test(e.message),
    );
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, prewarm: ['sleep', '30'], prewarmTimeout: 300 }),
      (e: unknown) => e instanceof SystemError && e.code === 'ETIMEDOUT' && /prewarmTimeout/.test(e.message),
    );
    // A background process would run on beside the caller's command: the sandbox is refused.
    const daemon = ['sleep', '1777'];
    await assert.rejects(
      rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, prewarm: ['sh', '-c', `${daemon.join(' ')} & exit 0`] }),
      (e: unknown) => e instanceof SystemError && e.code === 'EBUSY' && /1 process/.test(e.message),
    );
    assert.deepEqual(processesRunning(daemon), [], 'the background process died with its sandbox');
    await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, prewarm: ['no-such-binary'] }), (e: unknown) => e instanceof SystemError && e.code === 'ENOENT');
    const d = await settledDiff(clean);
    assert.deepEqual(ownCgroups(d.cgroups), [], 'cgroup left');
    assert.deepEqual(ownMounts(d.mounts), [], 'mount left');
    assert.deepEqual(d.children, [], 'child process left');
    assert.deepEqual(d.zombies, [], 'zombie left');
  });

  test('bad prewarm options are ValidationErrors naming the option', async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ prewarm: [] }, /prewarm/],
      [{ prewarm: 'python3 -c "import json"' }, /prewarm/],
      [{ prewarm: ['true', 3] }, /prewarm/],
      [{ prewarm: ['true'], prewarmTimeout: 0 }, /prewarmTimeout/],
      [{ prewarmTimeout: 1000 }, /prewarmTimeout/],
    ];
    for (const [extra, option] of bad) {
      await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, ...extra } as never), (e: unknown) => e instanceof ValidationError && option.test(e.message), JSON.stringify(extra));
    }
  });
});
