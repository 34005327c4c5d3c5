/**
 * A container that floods its stdout cannot grow the Node process (the hostile-code issue,
 * item 3): `run()` and `exec()` keep at most `maxBuffer` bytes per stream, read and drop the
 * rest, and say `truncated`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run, ValidationError } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason();
const MiB = 1024 * 1024;
const FLOOD = 'head -c 200000000 /dev/zero; echo done >&2';

/** Runs `work` while sampling Node's RSS and the event loop's worst delay. */
async function watched<T>(work: () => Promise<T>): Promise<{ value: T; rssGrowth: number; worstLagMs: number }> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  let worstLagMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worstLagMs = Math.max(worstLagMs, now - last - 10);
    last = now;
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, rssGrowth: peak - base, worstLagMs };
  } finally {
    clearInterval(timer);
  }
}

describe('bounded output', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.cleanup();
  });

  test('run(): 200 MB on stdout keeps 16 MiB by default, Node stays flat, the container is never blocked', async () => {
    const { value: r, rssGrowth, worstLagMs } = await watched(() => run({ rootfs: busyboxRootfs() }, ['sh', '-c', FLOOD], { encoding: 'buffer', timeout: 60_000 }));
    assert.equal(r.exitCode, 0);
    assert.equal(r.timedOut, false);
    assert.equal(r.truncated, true);
    assert.equal(r.stdout.length, 16 * MiB);
    assert.equal(r.stderr.toString(), 'done\n');
    assert.ok(rssGrowth < 96 * MiB, `Node's RSS grew by ${(rssGrowth / MiB).toFixed(0)} MiB`);
    assert.ok(worstLagMs < 1000, `the event loop stalled ${worstLagMs.toFixed(0)} ms`);
  });

  test('run(): maxBuffer is per stream and exact; small output is not truncated', async () => {
    const r = await run({ rootfs: busyboxRootfs() }, ['sh', '-c', 'head -c 5000 /dev/zero; echo err >&2'], { maxBuffer: 1000 });
    assert.equal(r.truncated, true);
    assert.equal(r.stdout.length, 1000);
    assert.equal(r.stderr, 'err\n');
    const small = await run({ rootfs: busyboxRootfs() }, ['echo', 'hi'], { maxBuffer: 3 });
    assert.equal(small.truncated, false);
    assert.equal(small.stdout, 'hi\n');
  });

  test('exec(): a flood is cut at maxBuffer and Node stays flat', async () => {
    const c = await f.sh('sleep 60');
    await c.start();
    const { value: r, rssGrowth } = await watched(() => c.exec(['sh', '-c', FLOOD], { encoding: 'buffer', maxBuffer: MiB }));
    assert.equal(r.exitCode, 0);
    assert.equal(r.truncated, true);
    assert.equal(r.stdout.length, MiB);
    assert.equal(r.stderr.toString(), 'done\n');
    assert.ok(rssGrowth < 96 * MiB, `Node's RSS grew by ${(rssGrowth / MiB).toFixed(0)} MiB`);
    const small = await c.exec(['echo', 'ok']);
    assert.equal(small.truncated, false);
    assert.equal(small.stdout, 'ok\n');
    await c.kill('SIGKILL');
  });

  test('a bad maxBuffer is a ValidationError naming the option', async () => {
    await assert.rejects(run({ rootfs: busyboxRootfs() }, ['true'], { maxBuffer: -1 }), (e: unknown) => e instanceof ValidationError && /maxBuffer/.test(e.message));
    await assert.rejects(run({ rootfs: busyboxRootfs() }, ['true'], { maxBuffer: 1.5 }), ValidationError);
  });
});
