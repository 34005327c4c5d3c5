import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initialState, type ContainerState } from '../../lib/containers/container-record.js';
import { mergeRun, type MonitorRun } from '../../lib/containers/monitor-run.js';
import { foldExit, orphanedExit } from '../../lib/containers/reconcile.js';
import { StateStore } from '../../lib/containers/state-store.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorArgs } from '../../lib/launch/detached.js';
import { isLive } from '../../lib/network/network-records.js';
import type { EndpointRecord } from '../../lib/network/network-store.js';
import { selfIdentity } from '../../lib/state/process-identity.js';

const monitor = { pid: 4242, startTime: '777' };
const started: ContainerState = { ...initialState(), status: 'running', pid: 100, pidStartTime: '5', monitor, startedAt: '2026-12-02T11:00:00.000Z', restartCount: 2 };
const run = (over: Partial<MonitorRun>): MonitorRun => ({ monitorPid: 4242, status: 'running', pid: 100, pidStartTime: '5', startedAt: '2026-12-02T11:00:00.000000001Z', restartCount: 0, retries: 0, manuallyStopped: false, error: '', ...over });

describe('monitor run record', () => {
  test('a restarted run shows its new pid, start, the last exit and the total restart count', () => {
    const m = mergeRun(started, run({ pid: 200, pidStartTime: '9', startedAt: '2026-12-02T11:00:05Z', restartCount: 1, retries: 1, finishedAt: '2026-12-02T11:00:04Z', exitCode: 3, signal: null, oomKilled: false }));
    assert.equal(m.status, 'running');
    assert.equal(m.pid, 200);
    assert.equal(m.pidStartTime, '9');
    assert.equal(m.startedAt, '2026-12-02T11:00:05Z');
    assert.equal(m.exitCode, 3);
    assert.equal(m.restartCount, 3, 'Docker\'s RestartCount is the container\'s total');
    assert.equal(m.retries, 1);
  });

  test('between runs the container is restarting without a pid; a pause recorded by Node wins over running', () => {
    const r = mergeRun(started, run({ status: 'restarting', pid: 0, restartCount: 0, finishedAt: '2026-12-02T11:00:01Z', exitCode: 1 }));
    assert.equal(r.status, 'restarting');
    assert.equal(r.pid, 0);
    assert.equal(r.pidStartTime, undefined);
    assert.equal(mergeRun({ ...started, status: 'paused' }, run({})).status, 'paused');
  });

  test('health comes from the monitor; a record of another monitor (a previous start) is ignored', () => {
    const health = { status: 'healthy' as const, failingStreak: 0, log: [{ start: 'a', end: 'b', exitCode: 0, output: 'ok' }] };
    assert.deepEqual(mergeRun(started, run({ health })).health, health);
    assert.equal(mergeRun(started, run({ monitorPid: 1, status: 'restarting' })), started);
    assert.equal(mergeRun(started, undefined), started);
  });

  test('the final record folds into state.json: exited, counts added, manual stop kept, monitor and pid gone; autoRemove leaves a removal to finish', () => {
    const final = run({ status: 'exited', pid: 0, restartCount: 3, retries: 3, finishedAt: '2026-12-02T11:01:00Z', exitCode: 1, signal: null, oomKilled: false, manuallyStopped: true });
    const s = foldExit(started, { exitCode: 1, signal: null, oomKilled: false, finishedAt: '2026-12-02T11:01:00Z', error: '', run: final });
    assert.equal(s.status, 'exited');
    assert.equal(s.restartCount, 5);
    assert.equal(s.retries, 3);
    assert.equal(s.manuallyStopped, true);
    assert.equal(s.monitor, undefined);
    assert.equal(s.pid, 0);
    const removed = foldExit(started, { exitCode: 0, signal: null, oomKilled: false, finishedAt: 'x', error: '', run: { ...final, removed: true } });
    assert.equal(removed.status, 'removing');
    assert.equal(removed.removeVolumes, true, 'autoRemove takes the anonymous volumes, as docker run --rm');
  });

  test('a monitor that finished before its start was recorded: its final record is the exit, not "status unknown"', async () => {
    // A one-shot container under load: the monitor exits (and is reaped) before Node reads its
    // identity, so state.json holds its pid with a start time no process has.
    const root = mkdtempSync(join(tmpdir(), 'berth-run-'));
    try {
      const store = new StateStore(root);
      const id = 'a'.repeat(64);
      mkdirSync(store.dir(id), { recursive: true });
      writeFileSync(join(store.dir(id), 'run.json'), JSON.stringify(run({ monitorPid: 999_999_999, status: 'exited', pid: 0, finishedAt: '2026-12-02T11:00:01Z', exitCode: 0, signal: null, oomKilled: false })));
      const state: ContainerState = { ...started, pid: 999_999_998, monitor: { pid: 999_999_999, startTime: 'exited-before-recorded' } };
      const exit = await orphanedExit(store, id, 'detached', state);
      assert.equal(exit?.exitCode, 0);
      assert.equal(exit?.lost, undefined);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('the monitor is told the policy, the healthcheck, autoRemove and the journal by arguments', () => {
    const args = monitorArgs({
      stateDir: '/s/c',
      cgroupPaths: ['/sys/fs/cgroup/memory/berth/x'],
      restart: { name: 'on-failure', maximumRetryCount: 3, retries: 1 },
      health: { intervalMs: 1500.4, timeoutMs: 0.2, startPeriodMs: 0, startIntervalMs: 5000, retries: 2, probe: {} as never },
      autoRemove: true,
      journal: { path: '/s/events.jsonl', id: 'abc', name: 'web', attributes: { name: 'web', 'label.a': 'x"\n{' } },
    });
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    assert.equal(at('--restart'), 'on-failure');
    assert.equal(at('--max-retries'), '3');
    assert.equal(at('--retries'), '1');
    assert.equal(at('--health-interval'), '1500');
    assert.equal(at('--health-timeout'), '1', 'a sub-millisecond timeout is still a timeout');
    assert.equal(at('--health-retries'), '2');
    assert.ok(args.includes('--auto-remove'));
    assert.deepEqual(JSON.parse(at('--event-attributes')!), { name: 'web', 'label.a': 'x"\n{' });
    assert.ok(!at('--event-attributes')!.includes('\n'), 'attributes travel as one JSON line');
    assert.ok(!monitorArgs({ stateDir: '/s', cgroupPaths: [], restart: { name: 'no', maximumRetryCount: 0, retries: 0 } }).includes('--restart'));
  });

  test('a detached container\'s lease lives while its monitor does, between two PID 1s too', () => {
    const dead = { pid: 1, startTime: 'not-the-start-time-of-pid-1' };
    const lease = { owner: dead, pid: dead } as EndpointRecord;
    assert.equal(isLive(lease), false, 'an old PID 1 alone: stale');
    assert.equal(isLive({ ...lease, monitor: selfIdentity() }), true, 'the monitor restarting it keeps it');
    assert.equal(isLive({ ...lease, monitor: dead }), false, 'a dead monitor keeps nothing');
  });
});
