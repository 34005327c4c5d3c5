/**
 * A sandbox's life as a code-execution service drives it: signals, the timeout, an abort, a
 * dispose in the middle of a flood, many at once; and afterwards nothing left on the host (fds,
 * processes, zombies, cgroups, mounts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { AbortError, isBerthError, type SandboxExit } from '../../lib/index.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { readAll, spawnSh as sh } from '../helpers/spawn-sh.js';
import { settledDiff, snapshot, type LeakDiff } from '../helpers/leaks.js';

const skip = kernelSkipReason();

/** Resolves with the first line of `stream` (the container says it is ready). */
async function firstLine(stream: Readable): Promise<string> {
  for await (const line of createInterface({ input: stream })) return line;
  throw new Error('the stream ended without a line');
}

function assertClean(d: LeakDiff, what: string): void {
  assert.deepEqual(d.cgroups, [], `cgroup left after ${what}`);
  assert.deepEqual(d.mounts, [], `mount left after ${what}`);
  assert.deepEqual(d.children, [], `child process left after ${what}`);
  assert.deepEqual(d.zombies, [], `zombie left after ${what}`);
  assert.deepEqual(d.fds, [], `fd left after ${what}`);
}

describe('spawn(): signals', { skip, timeout: 60_000 }, () => {
  test("kill() sends SIGTERM by default; the container's handler runs", async () => {
    const sb = sh('trap "echo got-term; exit 7" TERM; echo ready; sleep 30 & wait', { stdin: 'ignore' });
    const out = readAll(sb.stdout);
    await sb.spawned;
    // Wait for the trap to be set: the shell prints only after it.
    await new Promise<void>((resolve) => sb.stdout.once('data', () => resolve()));
    assert.equal(sb.kill(), true);
    assert.equal(sb.killed, true);
    const info = await sb.exited;
    assert.equal(info.exitCode, 7);
    assert.match(await out, /got-term/);
  });

  test('kill("SIGKILL"): 137, signal SIGKILL; kill() after the exit returns false', async () => {
    const sb = sh('echo ready; sleep 30', { stdin: 'ignore' });
    assert.equal(await firstLine(sb.stdout), 'ready');
    sb.kill('SIGKILL');
    const info = await sb.exited;
    assert.equal(info.exitCode, 137);
    assert.equal(info.signal, 'SIGKILL');
    assert.equal(sb.signalCode, 'SIGKILL');
    assert.equal(sb.kill('SIGKILL'), false);
  });

  test('a signal sent before the container exists is delivered once it does', async () => {
    // The process may run briefly before the signal lands (it is sent once the launch
    // returns); it must not reach the end of its sleep.
    const sb = sh('sleep 30; echo finished', { stdin: 'ignore' });
    assert.equal(sb.pid, undefined);
    assert.equal(sb.kill(9), true);
    const [out, info] = await Promise.all([readAll(sb.stdout), sb.exited]);
    assert.equal(info.signal, 'SIGKILL');
    assert.equal(out, '');
  });

  test('with init, a signal the command does not handle ends it (PID 1 is berth-init)', async () => {
    const sb = sh('echo ready; sleep 30', { init: true, stdin: 'ignore' });
    assert.equal(await firstLine(sb.stdout), 'ready');
    sb.kill('SIGTERM');
    const info = await sb.exited;
    assert.equal(info.exitCode, 128 + 15);
  });
});

describe('spawn(): timeout and abort', { skip, timeout: 60_000 }, () => {
  test('timeout kills the container and marks timedOut; output before it is kept', async () => {
    const sb = sh('echo started; sleep 30; echo finished', { timeout: 300, stdin: 'ignore' });
    const [out, info] = await Promise.all([readAll(sb.stdout), sb.exited]);
    assert.equal(info.timedOut, true);
    assert.equal(info.exitCode, 137);
    assert.equal(info.signal, 'SIGKILL');
    assert.equal(out, 'started\n');
  });

  test("abort kills the container: exited rejects with AbortError after 'exit', nothing is left", async () => {
    const before = snapshot();
    const ac = new AbortController();
    const sb = sh('echo ready; sleep 30 & sleep 30', { signal: ac.signal, stdin: 'ignore' });
    let exit: SandboxExit | undefined;
    const errors: unknown[] = [];
    sb.on('exit', (info) => (exit = info));
    sb.on('error', (e) => errors.push(e));
    assert.equal(await firstLine(sb.stdout), 'ready');
    ac.abort(new Error('user cancelled'));
    await assert.rejects(sb.exited, (e: unknown) => {
      assert.ok(e instanceof AbortError, `expected AbortError, got ${String(e)}`);
      assert.ok(isBerthError(e));
      assert.equal((e.cause as Error).message, 'user cancelled');
      return true;
    });
    assert.equal(exit?.signal, 'SIGKILL');
    assert.equal(errors.length, 1);
    await sb[Symbol.asyncDispose]();
    assertClean(await settledDiff(before), 'an abort');
  });

  test('an already aborted signal: nothing starts, exited rejects with AbortError', async () => {
    const before = snapshot();
    const sb = sh('echo started', { signal: AbortSignal.abort() });
    let spawned = false;
    sb.on('spawn', () => (spawned = true));
    await assert.rejects(sb.exited, AbortError);
    assert.equal(spawned, false);
    assert.equal(await readAll(sb.stdout), '');
    await sb[Symbol.asyncDispose]();
    assertClean(await settledDiff(before), 'a pre-aborted spawn');
  });
});

describe('spawn(): Symbol.asyncDispose', { skip, timeout: 60_000 }, () => {
  test('disposing a flooding sandbox nobody reads kills it and leaves nothing behind', async () => {
    const before = snapshot();
    const sb = sh('echo ready; cat /dev/zero & cat /dev/zero >&2 & wait');
    assert.equal(await firstLine(sb.stdout), 'ready');
    const pid = sb.pid!;
    await sb[Symbol.asyncDispose]();
    assert.equal(sb.signalCode, 'SIGKILL');
    assert.equal(sb.stdout.destroyed, true);
    assert.equal(sb.stderr!.destroyed, true);
    assert.equal(sb.stdin!.destroyed, true);
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    assertClean(await settledDiff(before), 'a dispose');
  });

  test('disposing after a normal exit and twice is harmless', async () => {
    const before = snapshot();
    const sb = sh('echo ok', { stdin: 'ignore' });
    assert.equal(await readAll(sb.stdout), 'ok\n');
    await sb.exited;
    await sb[Symbol.asyncDispose]();
    await sb[Symbol.asyncDispose]();
    assert.equal(sb.exitCode, 0);
    assertClean(await settledDiff(before), 'an exit and two disposes');
  });
});

describe('spawn(): many at once', { skip, timeout: 120_000 }, () => {
  test('16 concurrent sandboxes each get their own stdin and output, and nothing leaks', async () => {
    const before = snapshot();
    const N = 16;
    const results = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const sb = sh('read n; echo "got $n"; echo "err $n" >&2; exit $((n % 7))', { timeout: 60_000 });
        try {
          sb.stdin!.end(`${i}\n`);
          const [out, err, info] = await Promise.all([readAll(sb.stdout), readAll(sb.stderr), sb.exited]);
          return { i, out, err, info };
        } finally {
          await sb[Symbol.asyncDispose]();
        }
      }),
    );
    for (const { i, out, err, info } of results) {
      assert.equal(out, `got ${i}\n`);
      assert.equal(err, `err ${i}\n`);
      assert.equal(info.exitCode, i % 7);
      assert.equal(info.timedOut, false);
    }
    assertClean(await settledDiff(before), `${N} concurrent sandboxes`);
  });
});
