/**
 * Detached containers supervised by their monitor while no Node process watches (issue 12 §1),
 * on the real kernel and through the API as a PaaS backend uses it: restart policies with
 * Docker's backoff and manual-stop rule, healthchecks, autoRemove, the events journal read
 * with `rt.events({ since })`, and recovery after a reboot-like loss of every process.
 * Networks on 10.231.123.0/24; run under `flock /tmp/berth-net-tests.lock`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError, isBerthError } from '../../lib/errors.js';
import { nftTableName } from '../../lib/network/firewall-rules.js';
import { Runtime } from '../../lib/runtime.js';
import type { Container } from '../../lib/containers/container.js';
import type { RuntimeEvent } from '../../lib/containers/events.js';
import { JOURNAL_MAX_BYTES, journalPath } from '../../lib/containers/event-journal.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { cgroupDirsOf, eventually, openFixture, procStat, type Fixture } from '../helpers/containers-fixture.js';
import { networkSkipReason, testSubnet } from '../helpers/network-fixture.js';

const skip = networkSkipReason();
const here = fileURLToPath(new URL('.', import.meta.url));

async function runChild(script: string, args: string[]): Promise<{ id: string; pid: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
  assert.equal(code, 0, `the creator exited ${code}: ${err}`);
  return JSON.parse(out.trim()) as { id: string; pid: number };
}

/** Events from the subscription until `enough` says so (bounded by the signal's timeout). */
async function collect(sub: AsyncIterable<RuntimeEvent> & { close(): void }, enough: (seen: RuntimeEvent[]) => boolean): Promise<RuntimeEvent[]> {
  const seen: RuntimeEvent[] = [];
  for await (const e of sub) {
    seen.push(e);
    if (enough(seen)) sub.close();
  }
  return seen;
}

const parentOf = (pid: number) => procStat(pid)?.ppid ?? 0;
const gone = (pid: number) => {
  const s = procStat(pid);
  return s === undefined || s.state === 'Z';
};
const isNotFound = (e: unknown) => isBerthError(e) && e instanceof NotFoundError;

describe('detached containers supervised by their monitor', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture('berth-detached-');
  });
  after(async () => {
    // Containers made by the child processes too: nothing of a failed test may outlive the suite.
    await f.removeContainersAndNetworks();
    spawnSync('nft', ['delete', 'table', 'ip', nftTableName(f.rt.networks.tag)], { stdio: 'ignore' });
    await f?.cleanup();
  });

  test('PaaS: the app\'s creator exits; the app crashes, is restarted, turns healthy; a second process sees it in events({ since }), stops and removes it, and nothing is left', async () => {
    const net = await f.rt.networks.create({ name: 'det-paas', subnet: testSubnet(123) });
    const since = new Date();
    // A subscription that is live before the app exists hears the other process and the monitor.
    const healthy = (s: RuntimeEvent[]) => s.some((e) => e.action === 'health_status' && e.attributes.healthStatus === 'healthy');
    const live = collect(f.rt.events({ filters: { container: ['paas-app'] }, signal: AbortSignal.timeout(60_000) }), healthy);
    const { id, pid: firstPid } = await runChild('containers-child-paas.ts', [f.root, busyboxRootfs(), 'det-paas', 'paas-app']);

    // The test is the second process: it opens the runtime after the creator is gone.
    const rt = await Runtime.open({ root: f.root });
    const seen = await collect(rt.events({ since, filters: { container: [id] }, signal: AbortSignal.timeout(60_000) }), healthy);
    const actions = seen.map((e) => (e.action === 'health_status' ? `health:${e.attributes.healthStatus}` : e.action === 'exit' ? `exit:${e.attributes.exitCode}` : e.action));
    assert.deepEqual(actions, ['create', 'start', 'exit:7', 'restart', 'start', 'health:healthy'], 'the creator\'s events and the monitor\'s, in order');
    assert.ok(seen.every((e) => e.name === 'paas-app' && e.id === id));
    assert.deepEqual((await live).map((e) => `${e.action}@${e.time}`), seen.map((e) => `${e.action}@${e.time}`), 'followed live, the same events');

    const app = await rt.containers.get('paas-app');
    await app.waitForHealthy({ timeout: 10_000 });
    const info = await app.inspect();
    assert.equal(info.RestartCount, 1);
    assert.equal(info.State.Status, 'running');
    assert.equal(info.State.ExitCode, 7, 'the last exit stays visible while it runs again');
    assert.equal(info.State.Health?.Status, 'healthy');
    const last = info.State.Health!.Log.at(-1)!;
    assert.equal(last.ExitCode, 0);
    assert.equal(last.Output, `ready-on-${info.Config.Hostname}\n`, 'the probe ran inside the container');
    const pid = info.State.Pid;
    assert.notEqual(pid, firstPid, 'a new PID 1');
    const monitorPid = parentOf(pid);
    assert.ok(monitorPid > 1 && parentOf(firstPid) !== process.pid);
    const endpoints = (await rt.networks.store.readEndpoints()).endpoints.filter((e) => e.containerId === id);
    assert.equal(endpoints.length, 1);
    assert.equal(endpoints[0]!.monitor?.pid, monitorPid, 'the lease follows the monitor across restarts');
    assert.equal(info.NetworkSettings.Networks['det-paas']?.IPAddress, endpoints[0]!.ip);

    await app.stop({ timeout: 2000 });
    const stopped = await app.inspect();
    assert.equal(stopped.State.Status, 'exited');
    assert.equal(stopped.RestartCount, 1, 'the user\'s stop is not restarted');
    await app.remove();
    const tail = await collect(rt.events({ since: seen.at(-1)!.time, filters: { container: [id] }, signal: AbortSignal.timeout(10_000) }), (s) => s.some((e) => e.action === 'destroy'));
    assert.deepEqual(tail.map((e) => e.action).filter((a) => a !== 'health_status'), ['exit', 'destroy']);

    assert.ok(await eventually(() => gone(monitorPid), 5000), 'no monitor');
    assert.ok(gone(pid), 'no PID 1');
    assert.deepEqual(cgroupDirsOf(id), [], 'no cgroup');
    assert.deepEqual((await rt.networks.store.readEndpoints()).endpoints.filter((e) => e.containerId === id), [], 'no lease');
    assert.ok(await eventually(() => !existsSync(`/sys/class/net/${endpoints[0]!.hostIfname}`), 10_000), 'no veth');
    await assert.rejects(rt.containers.get(id), isNotFound);
    await net.remove();
  });

  test('a lease outlives a PID 1 that crashed before its start was recorded: the monitor holds it, against any later network operation', async () => {
    const net = await f.rt.networks.create({ name: 'det-crashy', subnet: testSubnet(124) });
    try {
      const c = await f.sh('exit 1', { lifetime: 'detached', restart: 'always', network: 'det-crashy' });
      await c.start();
      const leases = async () => (await f.rt.networks.store.readEndpoints()).endpoints.filter((e) => e.containerId === c.id);
      assert.ok(await eventually(async () => (await c.inspect()).RestartCount >= 2, 10_000, 20));
      const [lease] = await leases();
      assert.ok(lease?.monitor, 'the lease names the monitor');
      // Another runtime's open reclaims dead leases: this one is not.
      await Runtime.open({ root: f.root });
      assert.deepEqual((await leases()).map((e) => e.ip), [lease.ip]);
      await c.stop({ timeout: 500 });
      assert.deepEqual(await leases(), [], 'released at the final exit');
    } finally {
      await net.remove().catch(() => {});
    }
  });

  test('on-failure:2 restarts a failing app exactly twice with the backoff, then leaves it exited', async () => {
    const since = new Date();
    const c = await f.sh('echo run; exit 3', { lifetime: 'detached', restart: 'on-failure:2' });
    await c.start();
    const exit = await c.wait();
    assert.equal(exit.exitCode, 3);
    const info = await c.inspect();
    assert.equal(info.State.Status, 'exited');
    assert.equal(info.RestartCount, 2);
    assert.equal((await c.logs().text()).match(/run/g)?.length, 3);
    const seen = await collect(f.rt.events({ since, until: new Date(), filters: { container: [c.id] } }), () => false);
    assert.deepEqual(seen.map((e) => e.action), ['create', 'start', 'exit', 'restart', 'start', 'exit', 'restart', 'start', 'exit']);
    // Docker's backoff: 100 ms, then 200 ms before the second restart (bounds below only: no timing upper bound).
    const at = (i: number) => Date.parse(seen[i]!.time);
    assert.ok(at(3) - at(2) >= 90, `first backoff ${at(3) - at(2)} ms`);
    assert.ok(at(6) - at(5) >= 190, `second backoff ${at(6) - at(5)} ms`);
    assert.deepEqual(cgroupDirsOf(c.id), [], 'the cgroup goes after the final exit only');
  });

  test('OOM is judged per run in the kept cgroup: an OOM-killed run, then a run that fails on its own', async () => {
    const since = new Date();
    const c = await f.sh('if [ -f /once ]; then exit 5; fi; touch /once; exec tail /dev/zero', { lifetime: 'detached', restart: 'on-failure:1', memory: '32m', memorySwap: '32m' });
    await c.start();
    const exit = await c.wait();
    assert.deepEqual(exit, { exitCode: 5, signal: null, oomKilled: false }, 'the second run was not OOM-killed, though the cgroup\'s counter says 1');
    const seen = await collect(f.rt.events({ since, until: new Date(), filters: { container: [c.id] } }), () => false);
    const shown = seen.map((e) => (e.action === 'exit' ? `exit:${e.attributes.exitCode}:${e.attributes.oomKilled}` : e.action));
    assert.deepEqual(shown, ['create', 'start', 'oom', 'exit:137:true', 'restart', 'start', 'exit:5:false']);
  });

  test('a stop during the backoff (state restarting) ends the container at once: no restart follows', async () => {
    const c = await f.sh('exit 1', { lifetime: 'detached', restart: 'always' });
    await c.start();
    // The backoff doubles; soon the monitor sleeps long enough to be caught restarting.
    assert.ok(await eventually(async () => (await c.inspect()).RestartCount >= 4 && (await c.status()) === 'restarting', 20_000, 5), 'caught in the backoff');
    const before = (await c.inspect()).RestartCount;
    const monitorPid = JSON.parse(readFileSync(join(f.root, 'containers', c.id, 'run.json'), 'utf8')).monitorPid as number;
    await c.stop();
    assert.equal(await c.status(), 'exited');
    assert.ok(await eventually(() => gone(monitorPid), 5000), 'the monitor ended');
    assert.equal((await c.inspect()).RestartCount, before, 'no restart after the stop');
    assert.deepEqual(cgroupDirsOf(c.id), []);
  });

  test('kill() of a running app with restart always counts as a manual stop', async () => {
    const c = await f.sh('exec sleep 1000', { lifetime: 'detached', restart: 'always' });
    await c.start();
    await c.kill('SIGKILL');
    const exit = await c.wait();
    assert.equal(exit.exitCode, 137);
    assert.equal((await c.inspect()).RestartCount, 0);
    assert.equal(await c.status(), 'exited');
  });

  test('autoRemove: after the final exit the monitor removes the files, and the container is gone for every process', async () => {
    const since = new Date();
    const c = await f.rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sh', '-c', 'echo bye > /left-behind; exit 0'], lifetime: 'detached', autoRemove: true, name: 'det-auto' });
    const upper = join(f.root, 'containers', c.id, 'upper');
    await c.start();
    assert.ok(await eventually(() => !existsSync(upper), 10_000), 'the monitor removed the writable layer without any Node process');
    const rt = await Runtime.open({ root: f.root });
    await assert.rejects(rt.containers.get('det-auto'), isNotFound);
    assert.equal((await rt.containers.list({ all: true })).some((s) => s.Id === c.id), false);
    assert.equal(existsSync(join(f.root, 'containers', c.id)), false, 'Runtime.open() finished the removal');
    const seen = await collect(rt.events({ since, until: new Date(), filters: { container: [c.id] } }), () => false);
    assert.deepEqual(seen.map((e) => e.action), ['create', 'start', 'exit', 'destroy']);
    assert.deepEqual(cgroupDirsOf(c.id), []);
  });

  test('healthchecks: a failing probe makes it unhealthy; a probe past its timeout fails with -1; output is cut at 4 KiB', async () => {
    const failing = await f.sh('exec sleep 1000', { lifetime: 'detached', healthcheck: { test: 'echo not-yet; exit 1', interval: '100ms', retries: 2 } });
    const slow = await f.sh('exec sleep 1000', { lifetime: 'detached', healthcheck: { test: ['CMD', 'sleep', '30'], interval: '100ms', timeout: '200ms', retries: 1 } });
    const loud = await f.sh('exec sleep 1000', { lifetime: 'detached', healthcheck: { test: 'head -c 100000 /dev/zero | tr "\\0" x', interval: '100ms' } });
    for (const c of [failing, slow, loud]) await c.start();
    assert.ok(await eventually(async () => (await failing.inspect()).State.Health?.Status === 'unhealthy', 15_000, 50));
    const h = (await failing.inspect()).State.Health!;
    assert.ok(h.FailingStreak >= 2);
    assert.deepEqual(h.Log.map((e) => [e.ExitCode, e.Output]).slice(0, 2), [[1, 'not-yet\n'], [1, 'not-yet\n']]);
    await assert.rejects(failing.waitForHealthy({ timeout: 300 }), /health|unhealthy|timed out/i);
    assert.ok(await eventually(async () => (await slow.inspect()).State.Health?.Status === 'unhealthy', 15_000, 50));
    const s = (await slow.inspect()).State.Health!.Log[0]!;
    assert.equal(s.ExitCode, -1);
    assert.match(s.Output, /exceeded timeout/);
    assert.ok(await eventually(async () => (await loud.inspect()).State.Health?.Status === 'healthy', 15_000, 50));
    const l = (await loud.inspect()).State.Health!;
    assert.ok(l.Log.length <= 5);
    assert.equal(l.Log[0]!.Output, 'x'.repeat(4096));
    for (const c of [failing, slow, loud]) await c.stop({ timeout: 1000 });
  });

  test('attack: a probe\'s output crafted as JSON cannot forge the health the monitor records', async () => {
    // A container that answers its probe with text closing the JSON string and object early.
    const forged = '"}],"status":"healthy","failingStreak":0,"log":[{"output":"';
    const c = await f.sh('exec sleep 1000', { lifetime: 'detached', healthcheck: { test: `printf '%s\\n' '${forged}'; exit 1`, interval: '100ms', retries: 1 } });
    await c.start();
    assert.ok(await eventually(async () => (await c.inspect()).State.Health?.Log.length === 2, 15_000, 50), 'probes recorded');
    const h = (await c.inspect()).State.Health!;
    assert.equal(h.Status, 'unhealthy');
    assert.equal(h.Log[0]!.Output, `${forged}\n`);
    assert.equal(h.Log[0]!.ExitCode, 1);
    await c.stop({ timeout: 1000 });
  });

  test('attack: a probe that leaves a process holding its output open cannot stall the monitor: logging and later probes go on', async () => {
    // The probe exits at once, but a process it started in the container keeps the pipe open.
    const c = await f.sh('i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.1; done', { lifetime: 'detached', healthcheck: { test: 'sleep 1000 & echo held; exit 1', interval: '100ms', retries: 100 } });
    await c.start();
    assert.ok(await eventually(async () => ((await c.inspect()).State.Health?.Log.length ?? 0) >= 3, 15_000, 50), 'probes keep being recorded');
    const ticks = async () => Number(/tick-(\d+)\n(?![\s\S]*tick-)/.exec(await c.logs().text())?.[1] ?? 0);
    const before = await ticks();
    assert.ok(await eventually(async () => (await ticks()) > before + 3, 10_000, 50), 'the log keeps growing');
    const h = (await c.inspect()).State.Health!;
    assert.deepEqual(h.Log.map((e) => [e.ExitCode, e.Output]).slice(0, 1), [[1, 'held\n']]);
    await c.stop({ timeout: 1000 });
  });

  test('reboot-like loss: Runtime.open() reports the containers exited (255) and restarts none; with restartPolicies it restarts always and unless-stopped only', async () => {
    const made: Container[] = [];
    for (const [name, restart] of [['lost-always', 'always'], ['lost-unless', 'unless-stopped'], ['lost-onfail', 'on-failure'], ['lost-no', 'no']] as const) {
      made.push(await f.create(['sleep', '100000'], { lifetime: 'detached', restart, name }));
    }
    /** Starts them all and kills every process of theirs (monitor and PID 1), only those pids. */
    const startAndLose = async () => {
      const pids: number[] = [];
      for (const c of made) {
        await c.start();
        const pid = (await c.inspect()).State.Pid;
        pids.push(parentOf(pid), pid);
      }
      for (const p of pids) process.kill(p, 'SIGKILL');
      assert.ok(await eventually(() => pids.every(gone), 5000));
    };
    await startAndLose();
    const plain = await Runtime.open({ root: f.root });
    for (const c of made) {
      const st = (await (await plain.containers.get(c.id)).inspect()).State;
      assert.equal(st.Status, 'exited', c.name);
      assert.equal(st.ExitCode, 255, 'Docker\'s "exit status unknown"');
      assert.deepEqual(cgroupDirsOf(c.id), [], 'the stale cgroup went');
    }

    await startAndLose();
    const since = new Date();
    const daemon = await Runtime.open({ root: f.root, restartPolicies: true });
    const status = async (name: string) => (await (await daemon.containers.get(name)).inspect()).State;
    assert.equal((await status('lost-always')).Status, 'running');
    assert.equal((await status('lost-unless')).Status, 'running');
    assert.equal((await status('lost-onfail')).Status, 'exited');
    assert.equal((await status('lost-no')).Status, 'exited');
    assert.equal((await (await daemon.containers.get('lost-always')).inspect()).RestartCount, 1);
    const seen = await collect(daemon.events({ since, until: new Date(), filters: { action: ['restart'] } }), () => false);
    assert.deepEqual(seen.map((e) => e.name).sort(), ['lost-always', 'lost-unless']);
    for (const name of ['lost-always', 'lost-unless']) await (await daemon.containers.get(name)).stop({ timeout: 500 });
  });

  test('the journal rotates at its size limit whoever writes: a monitor renames the full file, and a replay reads both in order', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-journal-rot-'));
    try {
      const rt = await Runtime.open({ root });
      const old = { type: 'container', action: 'create', id: 'f'.repeat(64), name: 'old', time: '2026-01-01T00:00:00.000Z', attributes: {}, src: 'node-0' };
      writeFileSync(journalPath(root), `${JSON.stringify(old)}\n`);
      const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['true'], lifetime: 'detached' });
      // Full now: the next writer, the monitor journaling its container's start, must rotate it.
      appendFileSync(journalPath(root), `${JSON.stringify(old)}\n`.repeat(Math.ceil(JOURNAL_MAX_BYTES / 150)));
      assert.ok(statSync(journalPath(root)).size >= JOURNAL_MAX_BYTES);
      await c.start();
      assert.ok(existsSync(`${journalPath(root)}.1`), 'the monitor rotated it');
      await c.wait();
      await c.remove();
      assert.ok(statSync(journalPath(root)).size < 10_000);
      const seen = await collect(rt.events({ since: '2025-12-31T00:00:00Z', until: new Date() }), () => false);
      const mine = seen.filter((e) => e.id === c.id).map((e) => e.action);
      assert.deepEqual(mine, ['create', 'start', 'exit', 'destroy']);
      assert.equal(seen[0]!.name, 'old', 'the rotated file is replayed first');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('bad options of events() and Runtime.open() are typed errors naming the option', async () => {
    assert.throws(() => f.rt.events({ since: 'last tuesday' }), /since/);
    await assert.rejects(Runtime.open({ root: f.root, restartPolicies: 'yes' as never }), /restartPolicies/);
  });
});
