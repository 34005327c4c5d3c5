import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthMonitor, resolveHealthcheck, probeArgv, type ProbeResult } from '../../lib/containers/healthcheck.js';

describe('healthcheck', () => {
  test('options override the image field by field; image durations are nanoseconds', () => {
    const image = { Test: ['CMD-SHELL', 'check'], Interval: 5e9, Timeout: 2e9, Retries: 7 };
    const cfg = resolveHealthcheck({ timeout: '1s' }, image)!;
    assert.deepEqual(cfg, { test: ['CMD-SHELL', 'check'], intervalMs: 5000, timeoutMs: 1000, startPeriodMs: 0, startIntervalMs: 5000, retries: 7 });
    assert.deepEqual(probeArgv(cfg), ['/bin/sh', '-c', 'check']);
    assert.deepEqual(probeArgv(resolveHealthcheck({ test: ['CMD', 'true', 'x'] })!), ['true', 'x']);
    assert.equal(resolveHealthcheck({ test: 'exit 0' })!.test[0], 'CMD-SHELL');
    assert.equal(resolveHealthcheck({ test: ['NONE'] }, image), null);
    assert.equal(resolveHealthcheck('none', image), null);
    assert.equal(resolveHealthcheck(undefined, undefined), null);
    assert.throws(() => resolveHealthcheck({ test: ['SHELL', 'x'] }), /must start with "CMD"/);
    assert.throws(() => resolveHealthcheck({ test: 'x', retries: 0 }), /retries/);
  });

  function fakeMonitor(results: Array<ProbeResult | 'hang'>, cfg: Partial<{ retries: number; startPeriodMs: number; timeoutMs: number }>, clock: { t: number }) {
    const seen: Array<{ status: string; changed: boolean }> = [];
    const config = { test: ['CMD', 'check'], intervalMs: 1e9, timeoutMs: cfg.timeoutMs ?? 1e9, startPeriodMs: cfg.startPeriodMs ?? 0, startIntervalMs: 1e9, retries: cfg.retries ?? 3 };
    let i = 0;
    const m = new HealthMonitor(config, {
      probe: async (_argv, signal) => {
        const r = results[i++]!;
        if (r === 'hang') return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
        return r;
      },
      onResult: (h, changed) => void seen.push({ status: h.status, changed }),
      now: () => clock.t,
    });
    return { m, seen };
  }

  test('starting -> healthy on the first success; unhealthy after `retries` failures in a row; success resets', async () => {
    const clock = { t: 0 };
    const ok = { exitCode: 0, output: 'ok' };
    const bad = { exitCode: 1, output: 'bad' };
    const { m, seen } = fakeMonitor([bad, ok, bad, bad, ok, bad, bad, bad], { retries: 3 }, clock);
    m.start();
    for (let k = 0; k < 8; k++) await m.probeOnce();
    m.stop();
    assert.deepEqual(seen.map((s) => s.status), ['starting', 'healthy', 'healthy', 'healthy', 'healthy', 'healthy', 'healthy', 'unhealthy']);
    assert.deepEqual(seen.map((s) => s.changed), [false, true, false, false, false, false, false, true]);
    assert.equal(m.state.failingStreak, 3);
    assert.equal(m.state.log.length, 5, 'only the last 5 results are kept');
  });

  test('failures in the start period do not count; a timeout is exit code -1', async () => {
    const clock = { t: 0 };
    const bad = { exitCode: 1, output: '' };
    const { m, seen } = fakeMonitor([bad, bad, bad, 'hang'], { retries: 1, startPeriodMs: 1000, timeoutMs: 20 }, clock);
    m.start();
    await m.probeOnce();
    await m.probeOnce();
    assert.equal(m.state.status, 'starting');
    assert.equal(m.state.failingStreak, 0);
    clock.t = 2000;
    await m.probeOnce();
    assert.equal(m.state.status, 'unhealthy');
    await m.probeOnce();
    m.stop();
    assert.equal(m.state.log.at(-1)!.exitCode, -1);
    assert.match(m.state.log.at(-1)!.output, /exceeded timeout/);
    assert.equal(seen.length, 4);
  });
});
