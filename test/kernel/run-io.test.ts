/**
 * Streams and lifetime: stdin in its three forms, large outputs, tty, timeout, AbortSignal, and
 * the `init` process (reaping, signal forwarding).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { run, AbortError, isBerthError, type RunOptions } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { settledDiff, snapshot } from '../helpers/leaks.js';

const skip = kernelSkipReason();
const sh = <O extends RunOptions = RunOptions>(script: string, options?: O) => run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);
const MiB = 1024 * 1024;

describe('stdin', { skip }, () => {
  test('a string is delivered, then EOF', async () => {
    const r = await sh('cat; echo "<eof>"', { stdin: 'hello\nworld\n' });
    assert.equal(r.stdout, 'hello\nworld\n<eof>\n');
  });

  test('a Buffer with arbitrary bytes is delivered intact', async () => {
    const data = Buffer.from([0, 1, 2, 255, 10, 13, 0]);
    const r = await sh('cat', { stdin: data, encoding: 'buffer' });
    assert.ok(r.stdout.equals(data), `got ${r.stdout.toString('hex')}`);
  });

  test('a Readable is piped in and closed', async () => {
    const r = await sh('wc -l', { stdin: Readable.from(['one\n', 'two\n', 'three\n']) });
    assert.equal(r.stdout.trim(), '3');
  });

  test('no stdin option: stdin is /dev/null and reads EOF at once', async () => {
    const r = await sh('cat; readlink /proc/self/fd/0');
    assert.equal(r.stdout, '/dev/null\n');
  });

  test('8 MiB of stdin comes out unchanged (both pipes busy at once)', async () => {
    const data = Buffer.alloc(8 * MiB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    const r = await sh('cat', { stdin: data, encoding: 'buffer' });
    assert.equal(r.stdout.length, data.length);
    assert.equal(createHash('sha256').update(r.stdout).digest('hex'), createHash('sha256').update(data).digest('hex'));
  });
});

describe('event loop', { skip }, () => {
  test('the event loop keeps running while a container runs (a timer ends its stdin)', async () => {
    const stdin = new PassThrough();
    let ticks = 0;
    const interval = setInterval(() => ticks++, 5);
    const timer = setTimeout(() => stdin.end('from-timer\n'), 100);
    try {
      // If waiting for the container blocked the loop, the timer could never end stdin.
      const r = await sh('read line; echo "$line"', { stdin, timeout: 20_000 });
      assert.equal(r.timedOut, false);
      assert.equal(r.stdout, 'from-timer\n');
      assert.ok(ticks > 0);
    } finally {
      clearInterval(interval);
      clearTimeout(timer);
    }
  });
});

describe('large outputs', { skip }, () => {
  test('100 MiB on stdout arrives whole, without deadlock', async () => {
    // Past the default maxBuffer (16 MiB): asked for explicitly, the whole output is kept.
    const r = await sh('head -c 104857600 /dev/zero', { encoding: 'buffer', maxBuffer: Infinity });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.length, 104857600);
  });

  test('stdout and stderr both large and interleaved', async () => {
    const r = await sh('head -c 20971520 /dev/zero & head -c 10485760 /dev/zero >&2; wait', { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    assert.equal(r.stdout.length, 20 * MiB);
    assert.equal(r.stderr.length, 10 * MiB);
  });
});

describe('tty', { skip }, () => {
  test('tty: true gives /dev/pts/0 on stdin and stdout, stderr merged', async () => {
    const r = await sh('tty; test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; echo on-stderr >&2', { tty: true });
    assert.match(r.stdout, /^\/dev\/pts\/0\r?$/m);
    assert.match(r.stdout, /^stdin-tty\r?$/m);
    assert.match(r.stdout, /^stdout-tty\r?$/m);
    assert.match(r.stdout, /on-stderr/);
    assert.equal(r.stderr, '');
    assert.equal(r.exitCode, 0);
  });

  test('without tty, stdio is not a terminal', async () => {
    const r = await sh('test -t 0 || echo no-tty-in; test -t 1 || echo no-tty-out');
    assert.equal(r.stdout, 'no-tty-in\nno-tty-out\n');
  });

  test('tty: the exit code still comes through', async () => {
    const r = await sh('exit 4', { tty: true });
    assert.equal(r.exitCode, 4);
  });
});

describe('timeout', { skip }, () => {
  test('timeout kills the container: timedOut, 137, SIGKILL', async () => {
    const r = await sh('echo started; sleep 30; echo finished', { timeout: 300 });
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, 137);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.stdout, 'started\n');
  });

  test('timeout with init: every process goes, timedOut is reported', async () => {
    const r = await sh('sleep 30 & sleep 30; echo finished', { timeout: 300, init: true });
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, 137);
    assert.doesNotMatch(r.stdout, /finished/);
  });

  test('a run that finishes before its timeout is not timedOut', async () => {
    const r = await sh('exit 0', { timeout: 60_000 });
    assert.equal(r.timedOut, false);
    assert.equal(r.exitCode, 0);
  });

  test('a background process holding stdout open past PID 1 exit does not keep run() waiting', async () => {
    // PID 1 exits; the kernel kills the rest of the pid namespace, closing the pipe.
    const r = await sh('sleep 30 & echo bye', { timeout: 20_000 });
    assert.equal(r.stdout, 'bye\n');
    assert.equal(r.timedOut, false);
  });
});

describe('AbortSignal', { skip }, () => {
  test('aborting a running container rejects with AbortError and leaks nothing', async () => {
    const before = snapshot();
    const ac = new AbortController();
    const running = sh('sleep 30 & sleep 30', { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user cancelled')), 200);
    await assert.rejects(running, (err: unknown) => {
      assert.ok(err instanceof AbortError, `expected AbortError, got ${String(err)}`);
      assert.ok(isBerthError(err));
      assert.equal(err.code, 'ABORT_ERR');
      return true;
    });
    const d = await settledDiff(before);
    assert.deepEqual(d.cgroups, [], 'cgroup left after abort');
    assert.deepEqual(d.mounts, [], 'mount left after abort');
    assert.deepEqual(d.children, [], 'child process left after abort');
    assert.deepEqual(d.zombies, [], 'zombie left after abort');
    assert.deepEqual(d.fds, [], 'fd left after abort');
  });

  test('an already aborted signal rejects before anything starts', async () => {
    const before = snapshot();
    await assert.rejects(sh('echo started', { signal: AbortSignal.abort() }), AbortError);
    const d = await settledDiff(before);
    assert.deepEqual(d.cgroups, []);
    assert.deepEqual(d.children, []);
  });

  test('aborting after the run finished changes nothing', async () => {
    const ac = new AbortController();
    const r = await sh('echo ok', { signal: ac.signal });
    ac.abort();
    assert.equal(r.stdout, 'ok\n');
  });
});

describe('init', { skip }, () => {
  test('init: PID 1 is berth-init and the command is its child', async () => {
    const r = await sh('tr "\\0" " " < /proc/1/cmdline; echo; echo $$; cat /proc/$$/stat', { init: true });
    const [cmdline, self, stat] = r.stdout.split('\n');
    assert.match(cmdline!, /^berth-init\b/);
    assert.equal(self, '2');
    assert.equal(stat!.slice(stat!.lastIndexOf(')') + 2).split(' ')[1], '1', 'the shell is not a child of PID 1');
  });

  test('init reaps an orphaned grandchild: no zombie in ps', async () => {
    const r = await sh('(sleep 0.2 &); sleep 1; ps -o stat,comm', { init: true });
    const zombies = r.stdout.split('\n').filter((l) => /^\s*Z/.test(l));
    assert.deepEqual(zombies, [], r.stdout);
    assert.match(r.stdout, /ps/, 'ps produced no listing');
  });

  test('init forwards a signal to the command', async () => {
    // The shell traps TERM; the TERM goes to PID 1 (init), which must pass it on.
    const r = await sh('trap "echo got-term; exit 7" TERM; kill -TERM 1; sleep 5 & wait', { init: true, timeout: 20_000 });
    assert.equal(r.timedOut, false);
    assert.match(r.stdout, /got-term/);
    assert.equal(r.exitCode, 7);
  });

  test("init passes the command's exit status through", async () => {
    assert.equal((await sh('exit 5', { init: true })).exitCode, 5);
  });
});
