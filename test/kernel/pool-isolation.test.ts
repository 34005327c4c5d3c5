/**
 * A pool's sandboxes are strangers to each other: what one caller's command leaves (files in
 * the rootfs and /tmp, a background process, its environment) is never seen by the next
 * caller, and a sandbox serves exactly one command.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConflictError, Runtime, ValidationError, type Pool } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { ownCgroups, ownMounts } from '../helpers/pool-leftovers.js';
import { settledDiff, snapshot, type LeakSnapshot } from '../helpers/leaks.js';

const skip = kernelSkipReason();

describe('pool: isolation between callers', { skip, timeout: 120_000 }, () => {
  let root: string;
  let rt: Runtime;
  let pool: Pool;
  let before0: LeakSnapshot;

  before(async () => {
    before0 = snapshot();
    root = mkdtempSync(join(tmpdir(), 'berth-pool-iso-'));
    rt = await Runtime.open({ root });
    pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 2, options: { memory: '64m', pids: 32, env: { FROM_POOL: 'yes' } } });
  });

  after(async () => {
    await rt?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('files, background processes and env of one sandbox are not visible to the next', async () => {
    const first = await pool.acquire();
    const firstPid = first.pid;
    const r1 = await first.run(['sh', '-c', 'echo secret > /root-file; echo secret > /tmp/tmp-file; export LEAK=1; (sleep 1000 &) ; echo $FROM_POOL $CALLER'], {
      env: { CALLER: 'one' },
    });
    assert.equal(r1.exitCode, 0, r1.stderr);
    assert.equal(r1.stdout, 'yes one\n', 'the pool env and the run env both reach the command');
    await first.release();

    const second = await pool.acquire();
    assert.notEqual(second.pid, firstPid, 'a released sandbox is never handed out again');
    const r2 = await second.run(['sh', '-c', 'ls /root-file /tmp/tmp-file 2>&1; ps -o args | grep -cx "sleep 1000" ; echo "caller=[$CALLER] leak=[$LEAK] pool=[$FROM_POOL]"']);
    await second.release();
    assert.match(r2.stdout, /\/root-file: No such file or directory/);
    assert.match(r2.stdout, /\/tmp\/tmp-file: No such file or directory/);
    // Whole-line match: the first caller's `sleep 1000` is not in this sandbox.
    assert.match(r2.stdout, /^0$/m, `a process of the previous sandbox is visible:\n${r2.stdout}`);
    assert.match(r2.stdout, /caller=\[\] leak=\[\] pool=\[yes\]/);
  });

  test('the command ends its sandbox: what it left in the background dies with it', async () => {
    const sb = await pool.acquire();
    // The background sleep keeps stdout open: the result comes only because it was killed.
    const r = await sb.run(['sh', '-c', '(sleep 1000 &); echo started']);
    assert.equal(r.stdout, 'started\n');
    const pid1 = sb.pid;
    await sb.release();
    assert.throws(() => process.kill(pid1, 0), /ESRCH/, 'PID 1 of a released sandbox is gone');
  });

  test('one command per sandbox: a second run() and a run() after release() are ConflictErrors', async () => {
    const sb = await pool.acquire();
    assert.equal((await sb.run(['true'])).exitCode, 0);
    await assert.rejects(sb.run(['true']), ConflictError);
    await sb.release();
    await assert.rejects(sb.run(['true']), ConflictError);
    const unused = await pool.acquire();
    await unused.release();
    await assert.rejects(unused.run(['true']), ConflictError);
  });

  test('run() has run()\'s result shape: exit codes, 127, stdin, timeout, maxBuffer', async () => {
    const cases: Array<[string[], object, (r: Awaited<ReturnType<import('../../lib/index.js').PooledSandbox['run']>>) => void]> = [
      [['sh', '-c', 'exit 3'], {}, (r) => assert.equal(r.exitCode, 3)],
      [['no-such-command'], {}, (r) => (assert.equal(r.exitCode, 127), assert.match(r.stderr, /not found/))],
      [['cat'], { stdin: 'hello' }, (r) => assert.equal(r.stdout, 'hello')],
      [['sleep', '100'], { timeout: 100 }, (r) => (assert.equal(r.timedOut, true), assert.equal(r.signal, 'SIGKILL'))],
      [['sh', '-c', 'head -c 100000 /dev/zero'], { maxBuffer: 10, encoding: 'buffer' }, (r) => (assert.equal(r.truncated, true), assert.equal((r.stdout as unknown as Buffer).length, 10))],
    ];
    for (const [argv, options, check] of cases) {
      const sb = await pool.acquire();
      try {
        check(await sb.run(argv, options));
      } finally {
        await sb.release();
      }
    }
  });

  test('bad options are typed errors naming the option', async () => {
    await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 0 }), (e: unknown) => e instanceof ValidationError && /size/.test(e.message));
    await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, options: { timeout: 5 } as object }), (e: unknown) => e instanceof ValidationError && /options\.timeout/.test(e.message));
    await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 2, maxPending: 3 }), (e: unknown) => e instanceof ValidationError && /maxPending/.test(e.message));
    // Pooled sandboxes die with their owner: lifetime 'process' is the only one (and may be said).
    await assert.rejects(rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, options: { lifetime: 'detached' } as object }), (e: unknown) => e instanceof ValidationError && /options\.lifetime/.test(e.message));
    const explicit = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 1, options: { lifetime: 'process', network: 'none' } });
    await explicit.close();
    const sb = await pool.acquire();
    await assert.rejects(sb.run(['true'], { memory: '1m' } as object), (e: unknown) => e instanceof ValidationError && /memory/.test(e.message));
    await assert.rejects(sb.run([] as string[]), ValidationError);
    await sb.release();
  });

  test('after close(), nothing is left on the host', async () => {
    await pool.close();
    const d = await settledDiff(before0);
    assert.deepEqual(ownCgroups(d.cgroups), [], 'cgroup left');
    assert.deepEqual(ownMounts(d.mounts), [], 'mount left');
    assert.deepEqual(d.children, [], 'child process left');
    assert.deepEqual(d.zombies, [], 'zombie left');
  });
});
