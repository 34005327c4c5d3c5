/**
 * A sandbox's output is back-pressured end to end: a slow reader slows the container, a reader
 * that stops stops it, and Node's memory stays flat whatever the container writes. The
 * container's side is observed from the host: its PID 1 is `cat`, whose `/proc/<pid>/io`
 * `wchar` counts the bytes it has written and whose `wchan` says where it sleeps.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();
const MiB = 1024 * 1024;
/**
 * What may sit between the container and the reader: the kernel pipe (64 KiB), the socket's and
 * the sandbox stream's buffers (a high-water mark each) and one chunk in flight. 4 MiB is far
 * above that and far below what an unbounded reader would take in while the test pauses.
 */
const IN_FLIGHT_MAX = 4 * MiB;
/**
 * RSS also counts garbage not yet collected (the chunks already read); the bound of the
 * bounded-output suite. A reader that did not hold the container back takes in gigabytes here.
 */
const RSS_GROWTH_MAX = 96 * MiB;

function bytesWritten(pid: number): number {
  const m = /^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return Number(m![1]);
}

/** Kernels name the wait differently (`pipe_write`, `pipe_wait_writable`, `anon_pipe_write`). */
function sleepsInPipeWrite(pid: number): boolean {
  return /pipe_(wait_)?writ|pipe_write/.test(readFileSync(`/proc/${pid}/wchan`, 'utf8'));
}

/** Polls until `cond` holds; fails the test (instead of hanging) after `limitMs`. */
async function until(cond: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`never: ${what}`);
    await sleep(20);
  }
}

describe('spawn(): back-pressure', { skip, timeout: 120_000 }, () => {
  test('a stdout nobody reads stops the container on a full pipe, and Node holds almost nothing', async () => {
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const sb = spawn({ rootfs: busyboxRootfs() }, ['cat', '/dev/zero'], { stdin: 'ignore' });
    try {
      await sb.spawned;
      const pid = sb.pid!;
      await until(() => sleepsInPipeWrite(pid), 'the container blocked writing to its stdout pipe');
      // Give a reader that ignored back-pressure time to show itself: it would keep draining.
      await sleep(500);
      await until(() => sleepsInPipeWrite(pid), 'the container blocked again');
      const written = bytesWritten(pid);
      assert.ok(written < IN_FLIGHT_MAX, `the container got ${(written / MiB).toFixed(1)} MiB out with nobody reading`);
      assert.ok(sb.stdout.readableLength <= sb.stdout.readableHighWaterMark, `stdout buffers ${sb.stdout.readableLength} bytes`);
      const growth = process.memoryUsage().rss - rssBefore;
      assert.ok(growth < RSS_GROWTH_MAX, `Node's RSS grew by ${(growth / MiB).toFixed(0)} MiB`);
    } finally {
      await sb[Symbol.asyncDispose]();
    }
  });

  test('a slow reader slows the container: what it wrote never runs ahead of what was read, RSS stays flat', async () => {
    const sb = spawn({ rootfs: busyboxRootfs() }, ['cat', '/dev/zero'], { stdin: 'ignore' });
    try {
      await sb.spawned;
      const pid = sb.pid!;
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      let rssPeak = rssBefore;
      let read = 0;
      let worstAhead = 0;
      const target = 32 * MiB;
      // Paused reads: 128 KiB, then a rest. A container that did not wait for us would write
      // hundreds of megabytes meanwhile (cat /dev/zero runs at GB/s).
      while (read < target) {
        const chunk = sb.stdout.read(64 * 1024) as Buffer | null;
        if (chunk === null) {
          await new Promise((resolve) => sb.stdout.once('readable', resolve));
          continue;
        }
        read += chunk.length;
        if (read % (128 * 1024) < chunk.length) {
          worstAhead = Math.max(worstAhead, bytesWritten(pid) - read);
          rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
          await sleep(10);
        }
      }
      worstAhead = Math.max(worstAhead, bytesWritten(pid) - read);
      assert.ok(read >= target);
      assert.ok(worstAhead < IN_FLIGHT_MAX, `the container ran ${(worstAhead / MiB).toFixed(1)} MiB ahead of the reader`);
      const growth = rssPeak - rssBefore;
      assert.ok(growth < RSS_GROWTH_MAX, `Node's RSS grew by ${(growth / MiB).toFixed(0)} MiB while 32 MiB passed through`);
    } finally {
      await sb[Symbol.asyncDispose]();
    }
  });

  test('stdin back-pressure: a container that does not read makes write() return false, not Node buffer', async () => {
    const sb = spawn({ rootfs: busyboxRootfs() }, ['sh', '-c', 'echo ready; sleep 30']);
    try {
      await new Promise((resolve) => sb.stdout.once('data', resolve));
      const stdin = sb.stdin!;
      const block = Buffer.alloc(64 * 1024);
      let accepted = 0;
      while (stdin.write(block)) {
        accepted += block.length;
        assert.ok(accepted < IN_FLIGHT_MAX, 'stdin kept accepting with nobody reading');
        await sleep(0);
      }
      assert.ok(stdin.writableLength <= stdin.writableHighWaterMark + block.length, `stdin buffers ${stdin.writableLength} bytes`);
    } finally {
      await sb[Symbol.asyncDispose]();
    }
  });
});
