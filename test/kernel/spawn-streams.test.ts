/**
 * `spawn()` as a code-execution service uses it: output line by line while the program runs,
 * stdin in its forms, a terminal, a reader that hangs up, the exit report and its events, and
 * errors that name what was wrong.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { spawn, NotFoundError, Sandbox, ValidationError, type SandboxExit, type SpawnOptions } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { readAll, spawnSh as sh } from '../helpers/spawn-sh.js';

const skip = kernelSkipReason();

describe('spawn(): output as it is produced', { skip, timeout: 60_000 }, () => {
  test('each line arrives while the container waits for our answer to it', async () => {
    // The container prints a line, then blocks until we answer it: if output arrived only at
    // the exit, neither side would move and the test would hang.
    const sb = sh('for i in 1 2 3; do echo "line $i"; read ack; [ "$ack" = "ok $i" ] || exit 9; done; echo done');
    try {
      const lines = createInterface({ input: sb.stdout });
      const seen: string[] = [];
      let i = 0;
      for await (const line of lines) {
        seen.push(line);
        if (line.startsWith('line ')) {
          i++;
          assert.equal(sb.exitCode, null, 'still running while its output is read');
          sb.stdin!.write(`ok ${i}\n`);
        }
      }
      assert.deepEqual(seen, ['line 1', 'line 2', 'line 3', 'done']);
      const info = await sb.exited;
      assert.equal(info.exitCode, 0);
    } finally {
      await sb[Symbol.asyncDispose]();
    }
  });

  test("{ host: true }: the host's own programs, in the sandbox", async () => {
    const sb = spawn({ host: true }, ['sh', '-c', 'echo "pid $$"; test -e /etc/shadow || echo no-shadow'], { stdin: 'ignore' });
    const [out, info] = await Promise.all([readAll(sb.stdout), sb.exited]);
    assert.equal(info.exitCode, 0);
    assert.equal(out, 'pid 1\nno-shadow\n');
  });

  test('stdout and stderr are separate streams', async () => {
    const sb = sh('echo out; echo err >&2; echo out2', { stdin: 'ignore' });
    const [out, err, info] = await Promise.all([readAll(sb.stdout), readAll(sb.stderr), sb.exited]);
    assert.equal(out, 'out\nout2\n');
    assert.equal(err, 'err\n');
    assert.equal(info.exitCode, 0);
  });
});

describe('spawn(): stdin', { skip, timeout: 60_000 }, () => {
  test("default 'pipe': the container reads what we write and sees EOF at end()", async () => {
    const sb = sh('cat; echo "<eof>"');
    assert.ok(sb.stdin, 'stdin is a Writable');
    sb.stdin.write('hello\n');
    sb.stdin.end('world\n');
    assert.equal(await readAll(sb.stdout), 'hello\nworld\n<eof>\n');
    assert.equal((await sb.exited).exitCode, 0);
  });

  test('writes made before the container exists are delivered', async () => {
    const sb = sh('cat');
    // Nothing is launched yet: the pipe is handed over later.
    assert.equal(sb.pid, undefined);
    sb.stdin!.end('early\n');
    assert.equal(await readAll(sb.stdout), 'early\n');
  });

  test('a Buffer is fed then EOF, and stdin is null', async () => {
    const data = Buffer.from([0, 1, 2, 255, 10]);
    const sb = sh('od -An -tx1', { stdin: data });
    assert.equal(sb.stdin, null);
    assert.equal((await readAll(sb.stdout)).trim(), '00 01 02 ff 0a');
  });

  test('a Readable is piped in', async () => {
    const sb = sh('wc -l', { stdin: Readable.from(['a\n', 'b\n', 'c\n']) });
    assert.equal((await readAll(sb.stdout)).trim(), '3');
  });

  test("'ignore': stdin is /dev/null", async () => {
    const sb = sh('readlink /proc/self/fd/0', { stdin: 'ignore' });
    assert.equal(sb.stdin, null);
    assert.equal(await readAll(sb.stdout), '/dev/null\n');
  });

  test('stdin closes quietly once the container exited: a late write fails through its callback only', async () => {
    const sb = sh('exit 0');
    await sb.exited;
    const stdin = sb.stdin!;
    let errorEvents = 0;
    stdin.on('error', () => errorEvents++);
    const failed = await new Promise<Error | null | undefined>((resolve) => stdin.write('late\n', resolve));
    assert.ok(failed instanceof Error, 'the write reports its failure');
    assert.equal(errorEvents, 0, 'no error event that would throw in a process not listening');
    assert.equal(stdin.destroyed, true);
  });
});

describe('spawn(): a reader that hangs up', { skip, timeout: 60_000 }, () => {
  test('destroying stdout makes the next write fail with EPIPE', async () => {
    // The shell ignores SIGPIPE, so the write itself reports the broken pipe.
    const sb = sh('trap "" PIPE; while echo x; do :; done; echo write-failed >&2; exit 3', { stdin: 'ignore' });
    const err = readAll(sb.stderr);
    await new Promise((resolve) => sb.stdout.once('data', resolve));
    sb.stdout.destroy();
    const info = await sb.exited;
    assert.equal(info.exitCode, 3);
    assert.match(await err, /write-failed/);
  });

  test('a writer without a handler dies of SIGPIPE; PID 1, shielded from it, sees EPIPE', async () => {
    const child = sh('cat /dev/zero; echo "cat:$?" >&2', { stdin: 'ignore' });
    const childErr = readAll(child.stderr);
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.stdout.destroy();
    await child.exited;
    assert.equal(await childErr, `cat:${128 + 13}\n`, 'cat was killed by SIGPIPE');

    // The kernel does not deliver a signal to a pid namespace's init unless it handles it.
    const init = spawn({ rootfs: busyboxRootfs() }, ['cat', '/dev/zero'], { stdin: 'ignore' });
    const initErr = readAll(init.stderr);
    await new Promise((resolve) => init.stdout.once('data', resolve));
    init.stdout.destroy();
    const info = await init.exited;
    assert.equal(info.exitCode, 1);
    assert.match(await initErr, /Broken pipe/);
  });
});

describe('spawn(): a terminal', { skip, timeout: 60_000 }, () => {
  test('tty: one stream, stderr null, and resize() reaches the terminal', async () => {
    const sb = sh('read go; stty size; test -t 1 && echo is-a-tty; echo on-stderr >&2', { tty: true });
    try {
      assert.equal(sb.stderr, null);
      assert.deepEqual(sb.stdio, [sb.stdin, sb.stdout, null]);
      const out = readAll(sb.stdout);
      await sb.spawned;
      sb.resize({ rows: 33, cols: 101 });
      sb.stdin!.write('go\n');
      const text = await out;
      assert.match(text, /^33 101\r?$/m);
      assert.match(text, /is-a-tty/);
      assert.match(text, /on-stderr/);
      assert.equal((await sb.exited).exitCode, 0);
    } finally {
      await sb[Symbol.asyncDispose]();
    }
  });

  test('resize() needs a terminal and sane sizes', async () => {
    const sb = sh('true');
    try {
      assert.throws(() => sb.resize({ rows: 0, cols: 80 }), (e: unknown) => e instanceof ValidationError && /rows/.test(e.message));
      assert.throws(() => sb.resize({ rows: 24, cols: 80 }), /no terminal/);
    } finally {
      await sb[Symbol.asyncDispose]();
    }
  });
});

describe('spawn(): the exit report and events', { skip, timeout: 60_000 }, () => {
  test("exited, 'spawn', 'exit', 'close', pid, exitCode, signalCode, stdio", async () => {
    const sb = sh('echo hi; exit 5', { stdin: 'ignore' });
    assert.ok(sb instanceof Sandbox);
    assert.equal(sb.exitCode, null);
    assert.equal(sb.signalCode, null);
    assert.deepEqual(sb.stdio, [null, sb.stdout, sb.stderr]);
    const events: string[] = [];
    let pidAtSpawn: number | undefined;
    let exitInfo: SandboxExit | undefined;
    sb.on('spawn', () => {
      events.push('spawn');
      pidAtSpawn = sb.pid;
    });
    sb.on('exit', (info) => {
      events.push('exit');
      exitInfo = info;
    });
    const closed = new Promise<SandboxExit>((resolve) => sb.once('close', resolve));
    const out = readAll(sb.stdout);
    sb.stderr!.resume();
    const info = await sb.exited;
    assert.deepEqual(Object.keys(info).sort(), ['durationMs', 'exitCode', 'oomKilled', 'signal', 'timedOut']);
    assert.equal(info.exitCode, 5);
    assert.equal(info.signal, null);
    assert.equal(info.oomKilled, false);
    assert.equal(info.timedOut, false);
    assert.ok(info.durationMs > 0 && Number.isFinite(info.durationMs));
    assert.equal(await closed, info, "'close' follows once the output streams closed");
    assert.deepEqual(events, ['spawn', 'exit']);
    assert.ok(Number.isInteger(pidAtSpawn) && pidAtSpawn! > 1, `pid ${pidAtSpawn}`);
    assert.equal(exitInfo, info, "the 'exit' event carries the same report");
    assert.equal(sb.exitCode, 5);
    assert.equal(sb.signalCode, null);
    assert.equal(await out, 'hi\n');
  });

  test('a command that is not found exits 127 with the message on stderr, and never spawns', async () => {
    const sb = spawn({ rootfs: busyboxRootfs() }, ['no-such-command'], { stdin: 'ignore' });
    let spawned = false;
    sb.on('spawn', () => (spawned = true));
    const [err, info] = await Promise.all([readAll(sb.stderr), sb.exited]);
    assert.equal(info.exitCode, 127);
    assert.match(err, /"no-such-command": executable file not found/);
    assert.equal(spawned, false);
    assert.equal(sb.pid, undefined);

    // With a terminal there is one stream: the message arrives on it.
    const tty = spawn({ rootfs: busyboxRootfs() }, ['no-such-command'], { tty: true });
    const [ttyOut, ttyInfo] = await Promise.all([readAll(tty.stdout), tty.exited]);
    assert.equal(ttyInfo.exitCode, 127);
    assert.match(ttyOut, /"no-such-command": executable file not found/);
  });

  test('the memory limit applies, and an OOM kill is reported', async () => {
    const sb = sh('echo $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max); x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived', { memory: '16m', stdin: 'ignore' });
    const [out, info] = await Promise.all([readAll(sb.stdout), sb.exited]);
    assert.match(out, /^16777216\n/);
    assert.equal(info.oomKilled, true);
    assert.doesNotMatch(out, /survived/);
  });
});

describe('spawn(): bad input', { skip, timeout: 60_000 }, () => {
  test('bad options, argv and sources throw synchronously, naming what was wrong', () => {
    const rootfs = busyboxRootfs();
    const rejects = (fn: () => unknown, option: string) =>
      assert.throws(fn, (e: unknown) => e instanceof ValidationError && e.option === option, `expected a ValidationError for ${option}`);
    rejects(() => spawn({ rootfs }, ['true'], { maxBuffer: 10 } as SpawnOptions), 'maxBuffer');
    rejects(() => spawn({ rootfs }, ['true'], { encoding: 'buffer' } as SpawnOptions), 'encoding');
    rejects(() => spawn({ rootfs }, ['true'], { stdin: 'some text' as 'pipe' }), 'stdin');
    rejects(() => spawn({ rootfs }, ['true'], { memory: 'lots' }), 'memory');
    rejects(() => spawn({ rootfs }, ['true'], { tiemout: 5 } as SpawnOptions), 'tiemout');
    rejects(() => spawn({ rootfs }, []), 'cmd');
    rejects(() => spawn({ rootfs: 'relative' }, ['true']), 'rootfs');
    assert.throws(() => spawn({ rootfs: '/no/such/dir' }, ['true']), NotFoundError);
  });

  test("a failure found during the launch rejects exited and spawned, is emitted as 'error', and ends the streams", async () => {
    const sb = sh('echo never', { user: 'no-such-user' });
    const errors: Error[] = [];
    sb.on('error', (e) => errors.push(e));
    const out = readAll(sb.stdout);
    await assert.rejects(sb.exited, (e: unknown) => e instanceof NotFoundError && /no-such-user/.test((e as Error).message));
    await assert.rejects(sb.spawned, NotFoundError);
    assert.equal(errors.length, 1);
    assert.equal(await out, '');
    assert.equal(sb.kill('SIGKILL'), false);
  });

  test('kill() with an unknown signal is a ValidationError', async () => {
    const sb = sh('true');
    try {
      assert.throws(() => sb.kill('SIGNOPE' as NodeJS.Signals), (e: unknown) => e instanceof ValidationError && /SIGNOPE/.test(e.message));
    } finally {
      await sb[Symbol.asyncDispose]();
    }
  });
});
