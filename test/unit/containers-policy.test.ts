/**
 * Pure container rules: restart policies and backoff, the state machine's refusals, names,
 * durations, healthcheck configuration and the health monitor (with a fake probe), create
 * option validation, Dockerfile changes for commit, stats arithmetic.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, ValidationError } from '../../lib/errors.js';
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, nextBackoff, parseRestartPolicy, shouldRestart } from '../../lib/containers/restart-policy.js';
import { assertAllowed, refusal, type ContainerOperation } from '../../lib/containers/state-machine.js';
import type { ContainerStatus } from '../../lib/containers/container-record.js';
import { generateName, normalizeName } from '../../lib/containers/names.js';
import { parseDuration, parseTimePoint } from '../../lib/containers/duration.js';
import { parseGoDuration } from '../../lib/units.js';
import { HealthMonitor, resolveHealthcheck, probeArgv, type ProbeResult } from '../../lib/containers/healthcheck.js';
import { normalizeCreateOptions, signalName } from '../../lib/containers/container-options.js';
import { computeStats } from '../../lib/containers/stats.js';

describe('restart policy', () => {
  test('parses Docker\'s strings and objects', () => {
    assert.deepEqual(parseRestartPolicy(undefined), { name: 'no', maximumRetryCount: 0 });
    assert.deepEqual(parseRestartPolicy('always'), { name: 'always', maximumRetryCount: 0 });
    assert.deepEqual(parseRestartPolicy('unless-stopped'), { name: 'unless-stopped', maximumRetryCount: 0 });
    assert.deepEqual(parseRestartPolicy('on-failure'), { name: 'on-failure', maximumRetryCount: 0 });
    assert.deepEqual(parseRestartPolicy('on-failure:2'), { name: 'on-failure', maximumRetryCount: 2 });
    assert.deepEqual(parseRestartPolicy({ name: 'on-failure', maximumRetryCount: 5 }), { name: 'on-failure', maximumRetryCount: 5 });
    for (const bad of ['sometimes', 'always:3', 'on-failure:-1', 'on-failure:x', 3]) {
      assert.throws(() => parseRestartPolicy(bad), ValidationError, String(bad));
    }
    assert.throws(() => parseRestartPolicy({ name: 'always', maximumRetryCount: 2 }), /only valid with "on-failure"/);
  });

  test('on-failure:2 allows exactly two restarts of a failing container, none after success', () => {
    const p = parseRestartPolicy('on-failure:2');
    assert.equal(shouldRestart(p, { exitCode: 1, manuallyStopped: false, retries: 0 }), true);
    assert.equal(shouldRestart(p, { exitCode: 1, manuallyStopped: false, retries: 1 }), true);
    assert.equal(shouldRestart(p, { exitCode: 1, manuallyStopped: false, retries: 2 }), false);
    assert.equal(shouldRestart(p, { exitCode: 0, manuallyStopped: false, retries: 0 }), false);
    assert.equal(shouldRestart(parseRestartPolicy('on-failure'), { exitCode: 1, manuallyStopped: false, retries: 1000 }), true);
  });

  test('always and unless-stopped restart after any exit but never after a manual stop; no never', () => {
    for (const name of ['always', 'unless-stopped'] as const) {
      const p = parseRestartPolicy(name);
      assert.equal(shouldRestart(p, { exitCode: 0, manuallyStopped: false, retries: 99 }), true);
      assert.equal(shouldRestart(p, { exitCode: 137, manuallyStopped: true, retries: 0 }), false);
    }
    assert.equal(shouldRestart(parseRestartPolicy('no'), { exitCode: 1, manuallyStopped: false, retries: 0 }), false);
  });

  test('backoff doubles from 100 ms, caps at one minute, resets after a 10 s run', () => {
    let b = 0;
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      b = nextBackoff(b, 50);
      seen.push(b);
    }
    assert.deepEqual(seen.slice(0, 4), [100, 200, 400, 800]);
    assert.equal(seen[seen.length - 1], BACKOFF_MAX_MS);
    assert.equal(nextBackoff(6400, 10_000), BACKOFF_INITIAL_MS);
  });
});

describe('state machine', () => {
  const all: ContainerStatus[] = ['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead'];
  const allowed: Record<ContainerOperation, ContainerStatus[]> = {
    start: ['created', 'exited'],
    stop: ['created', 'running', 'paused', 'restarting', 'exited'],
    rename: ['created', 'running', 'paused', 'restarting', 'exited'],
    kill: ['running', 'paused', 'restarting'],
    pause: ['running'],
    unpause: ['paused'],
    exec: ['running'],
    attach: ['running', 'paused'],
    resize: ['running', 'paused'],
    stats: ['running', 'paused'],
    top: ['running', 'paused'],
    remove: ['created', 'exited', 'dead'],
  };
  for (const [op, ok] of Object.entries(allowed) as Array<[ContainerOperation, ContainerStatus[]]>) {
    test(`${op} is allowed exactly in ${ok.join(', ')}`, () => {
      for (const s of all) {
        const why = refusal(op, s, 'c1');
        if (ok.includes(s)) assert.equal(why, undefined, `${op} in ${s}`);
        else assert.equal(typeof why, 'string', `${op} in ${s} should be refused`);
      }
    });
  }

  test('remove with force is allowed while running; the refusals use Docker\'s words', () => {
    assert.equal(refusal('remove', 'running', 'c1', { force: true }), undefined);
    assert.match(refusal('remove', 'running', 'c1')!, /stop the container before removing or use remove\(\{ force: true \}\)/);
    assert.match(refusal('start', 'running', 'web')!, /container web is already running/);
    assert.match(refusal('exec', 'paused', 'web')!, /is paused, unpause the container before exec/);
    assert.throws(() => assertAllowed('pause', 'exited', 'web'), ConflictError);
  });
});

describe('names', () => {
  test('Docker\'s name rule; a leading slash is dropped', () => {
    assert.equal(normalizeName('/web-1'), 'web-1');
    assert.equal(normalizeName('a.b_c-d'), 'a.b_c-d');
    for (const bad of ['', 'a', '-x', 'has space', 'x/y', 'ü1', 42]) assert.throws(() => normalizeName(bad), ValidationError, String(bad));
  });

  test('generated names are valid names', () => {
    for (let i = 0; i < 50; i++) {
      const n = generateName();
      assert.equal(normalizeName(n), n);
    }
  });
});

describe('durations and time points', () => {
  test('Go durations and numbers of milliseconds', () => {
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('500ms'), 500);
    assert.equal(parseGoDuration('1h'), 3_600_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('5'), undefined);
    assert.equal(parseDuration(250, 'x'), 250);
    assert.equal(parseDuration('2s', 'x'), 2000);
    assert.throws(() => parseDuration(-1, 'x'), /x: must be milliseconds/);
    assert.throws(() => parseDuration('soon', 'x'), ValidationError);
  });

  test('since/until: Date, RFC 3339, Unix seconds, duration before now', () => {
    const now = Date.parse('2026-01-01T00:10:00Z');
    assert.equal(parseTimePoint(new Date(now), 'since', now), now);
    assert.equal(parseTimePoint('2026-01-01T00:00:00Z', 'since', now), Date.parse('2026-01-01T00:00:00Z'));
    assert.equal(parseTimePoint(1_700_000_000, 'since', now), 1_700_000_000_000);
    assert.equal(parseTimePoint('1700000000.5', 'since', now), 1_700_000_000_500);
    assert.equal(parseTimePoint('10m', 'since', now), now - 600_000);
    assert.throws(() => parseTimePoint('yesterday', 'since', now), /since: must be/);
  });
});

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

describe('create options', () => {
  test('run options keep their validation; container options are checked and defaulted', () => {
    const n = normalizeCreateOptions({ image: { rootfs: '/srv/x' }, cmd: ['sh'], memory: '64m', restart: 'on-failure:3', labels: { a: 'b' } });
    assert.equal(n.run.memory, 64 * 1024 * 1024);
    assert.deepEqual(n.restart, { name: 'on-failure', maximumRetryCount: 3 });
    assert.equal(n.lifetime, 'process');
    assert.equal(n.stopTimeoutMs, 10_000);
    assert.deepEqual(n.log, { maxSize: 20 * 1024 * 1024, maxFiles: 5 });
    assert.equal(n.name, undefined);
  });

  test('volumes, volumesFrom and networking are accepted; mounts are kept apart from the stored run options', () => {
    const n = normalizeCreateOptions({
      image: 'x',
      mounts: [{ type: 'volume', source: 'data', target: '/data' }, { type: 'volume', target: '/cache' }],
      volumesFrom: ['db', 'conf:ro'],
      network: 'app',
      ports: ['127.0.0.1::8080'],
      dns: ['10.0.0.53'],
      extraHosts: ['gw:host-gateway'],
      exposedPorts: [9090],
    });
    assert.equal(n.mounts.length, 2);
    assert.equal(n.run.mounts, undefined, 'config.json stores the resolved mounts instead');
    assert.deepEqual(n.volumesFrom, [{ container: 'db' }, { container: 'conf', mode: 'ro' }]);
    assert.equal(n.run.network, 'app');
    assert.deepEqual(n.run.ports, [{ container: 8080, host: 0, hostIp: '127.0.0.1', protocol: 'tcp' }]);
    assert.deepEqual(n.run.exposedPorts, [{ port: 9090, protocol: 'tcp' }]);
  });

  test('errors name the option', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ cmd: ['x'] }, /^image: is required/],
      [{ image: '' }, /^image: must not be empty/],
      [{ image: { rootfs: 'rel' } }, /^image.rootfs: must be an absolute path/],
      [{ image: 'x', name: 'a b' }, /^name: invalid container name/],
      [{ image: 'x', labels: { a: 1 } }, /^labels.a: must be a string/],
      [{ image: 'x', lifetime: 'forever' }, /^lifetime: must be/],
      [{ image: 'x', memmory: '1m' }, /^memmory: unknown option/],
      [{ image: 'x', stdin: 'data' }, /^stdin: is a run\(\) option.*openStdin/],
      [{ image: 'x', timeout: 5 }, /^timeout: is a run\(\) option/],
      [{ image: 'x', autoRemove: true, restart: 'always' }, /^autoRemove: conflicts with restart "always"/],
      [{ image: 'x', stopSignal: 'SIGNOPE' }, /^stopSignal: unknown signal/],
      [{ image: 'x', log: { maxFiles: 0 } }, /^log.maxFiles/],
      [{ image: 'x', cmd: 'ls' }, /^cmd: must be an array/],
      [{ image: 'x', mounts: [{ type: 'volume', source: '/srv/data', target: '/data' }] }, /^mounts\[0\]\.source: invalid volume name.*bind/],
      [{ image: 'x', volumesFrom: 'db' }, /^volumesFrom: must be an array/],
      [{ image: 'x', volumesFrom: ['db:rx'] }, /^volumesFrom\[0\]: invalid volumesFrom/],
      [{ image: 'x', ports: [8080] }, /^ports: publishing ports needs a bridge network/],
      [{ image: 'x', network: 'container:db', hostname: 'h' }, /^hostname: conflicts with network/],
    ];
    for (const [opts, re] of bad) assert.throws(() => normalizeCreateOptions(opts as never), (e: Error) => e instanceof ValidationError && re.test(e.message), JSON.stringify(opts));
  });

  test('signal names in every spelling', () => {
    assert.equal(signalName('SIGTERM', 's'), 'SIGTERM');
    assert.equal(signalName('term', 's'), 'SIGTERM');
    assert.equal(signalName('9', 's'), 'SIGKILL');
    assert.equal(signalName(2, 's'), 'SIGINT');
  });
});

describe('stats arithmetic', () => {
  test('cpu percent is cgroup CPU time over wall time; unlimited memory reads as host memory', () => {
    const sample = (cpuNs: number, at: bigint, limit = Infinity) => ({ at, stats: { memory: { usage: 50, limit }, pids: { current: 3, limit: 100 }, cpu: { usageNanos: cpuNs }, blkio: { readBytes: 1, writeBytes: 2 } } });
    const s = computeStats(sample(0, 0n), sample(1.5e9, 1_000_000_000n), 1000, 4);
    assert.equal(Math.round(s.cpu.percent), 150);
    assert.equal(s.cpu.onlineCpus, 4);
    assert.equal(s.memory.limit, 1000);
    assert.equal(s.memory.percent, 5);
    assert.deepEqual(s.pids, { current: 3, limit: 100 });
    assert.deepEqual(s.blockIo, { readBytes: 1, writeBytes: 2 });
    assert.equal(computeStats(sample(0, 0n, 200), sample(0, 10n, 200), 1000).memory.limit, 200);
  });
});
