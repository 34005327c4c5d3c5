/**
 * Containers on the real kernel: Docker's states and transitions, wrong-state conflicts,
 * names, signals, wait, pause, remove, events, restart policies, init, OOM.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, ConflictError, NotFoundError, ValidationError } from '../../lib/errors.js';
import type { RuntimeEvent } from '../../lib/containers/events.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { cgroupDirsOf, eventually, openFixture, pathExists, procStat, zombieChildrenOf, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason();

describe('containers: lifecycle and state machine', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.cleanup();
  });

  test('create -> start -> exit: states, inspect, pid in the cgroup, cgroup removed after exit', async () => {
    const c = await f.sh('echo started; read x', { openStdin: true, labels: { suite: 'lifecycle' } });
    assert.match(c.id, /^[0-9a-f]{64}$/);
    let info = await c.inspect();
    assert.equal(info.State.Status, 'created');
    assert.equal(info.State.Running, false);
    assert.equal(info.State.StartedAt, '0001-01-01T00:00:00Z');
    assert.equal(info.Name, `/${c.name}`);
    assert.deepEqual(info.Config.Labels, { suite: 'lifecycle' });
    assert.equal(info.Config.Hostname, c.id.slice(0, 12));
    assert.deepEqual([info.Path, ...info.Args], ['sh', '-c', 'echo started; read x']);

    await c.start();
    info = await c.inspect();
    assert.equal(info.State.Status, 'running');
    assert.equal(info.State.Running, true);
    assert.ok(info.State.Pid > 0);
    const dirs = cgroupDirsOf(c.id);
    assert.ok(dirs.length > 0, 'the container has cgroup directories');
    const procs = readFileSync(join(dirs.find((d) => d.includes('/pids/'))!, 'cgroup.procs'), 'utf8');
    assert.ok(procs.split('\n').includes(String(info.State.Pid)), 'PID 1 is in the container cgroup');

    const pid1 = info.State.Pid;
    const attach = await c.attach();
    attach.stdin!.end('bye\n');
    const exit = await c.wait();
    assert.deepEqual(exit, { exitCode: 0, signal: null, oomKilled: false });
    info = await c.inspect();
    assert.equal(info.State.Status, 'exited');
    assert.equal(info.State.Pid, 0);
    assert.ok(info.State.FinishedAt >= info.State.StartedAt);
    assert.equal(procStat(pid1), undefined, 'PID 1 is gone');
    assert.deepEqual(await eventually(() => cgroupDirsOf(c.id).length === 0), true, 'cgroup gone after exit');
    assert.equal(await c.logs().text(), 'started\n');
  });

  test('an exited container starts again; logs accumulate; a running one cannot start twice', async () => {
    const c = await f.sh('echo run; sleep 30');
    await c.start();
    await assert.rejects(c.start(), (e: Error) => e instanceof ConflictError && /already running/.test(e.message));
    await c.stop({ timeout: 200 });
    await c.start();
    await c.stop({ timeout: 200 });
    assert.equal(await c.logs().text(), 'run\nrun\n');
    assert.equal((await c.inspect()).RestartCount, 0);
  });

  test('wrong-state calls throw ConflictError', async () => {
    const c = await f.sh('sleep 30');
    await assert.rejects(c.pause(), ConflictError);
    await assert.rejects(c.unpause(), ConflictError);
    await assert.rejects(c.kill(), ConflictError);
    await assert.rejects(c.exec(['true']), (e: Error) => e instanceof ConflictError && /is not running/.test(e.message));
    await assert.rejects(c.attach(), ConflictError);
    await assert.rejects(c.top(), ConflictError);
    await assert.rejects(c.stats(), ConflictError);
    await c.start();
    await assert.rejects(c.unpause(), /is not paused/);
    await assert.rejects(c.remove(), (e: Error) => e instanceof ConflictError && /force/.test(e.message));
    await c.pause();
    await assert.rejects(c.pause(), /already paused/);
    await assert.rejects(c.exec(['true']), /unpause the container before exec/);
    await assert.rejects(c.start(), /try unpause instead/);
    await c.unpause();
    await c.kill();
    await c.wait();
    await assert.rejects(c.kill(), ConflictError);
    await c.stop(); // a stopped container: nothing to do, as Docker
  });

  test('stop: SIGTERM is ignored by a shell as PID 1, so SIGKILL follows the timeout (137)', async () => {
    const c = await f.sh('sleep 30');
    await c.start();
    const t0 = Date.now();
    await c.stop({ timeout: 300 });
    const took = Date.now() - t0;
    assert.ok(took >= 290, `stop returned after ${took} ms, before the timeout`);
    const s = (await c.inspect()).State;
    assert.equal(s.ExitCode, 137);
    assert.equal(s.Status, 'exited');
  });

  test('stop with init: berth-init forwards SIGTERM; the command dies of it at once (143)', async () => {
    const c = await f.create(['sleep', '30'], { init: true });
    await c.start();
    // A signal that reaches berth-init before it has blocked signals is dropped (PID 1 ignores
    // what it has no handler for), as with tini: wait until its child runs.
    assert.ok(await eventually(async () => (await c.top()).processes.length === 2), 'init and sleep are up');
    const t0 = Date.now();
    await c.stop({ timeout: 5000 });
    assert.ok(Date.now() - t0 < 3000);
    assert.equal((await c.inspect()).State.ExitCode, 143);
  });

  test('stop uses the container\'s stop signal; kill(signal) reaches PID 1', async () => {
    const c = await f.sh('trap "echo got-usr1; exit 7" USR1; trap "echo got-int; exit 9" INT; while :; do sleep 0.05; done', { stopSignal: 'SIGINT' });
    await c.start();
    await c.waitForLog('', { timeout: 100 }).catch(() => {});
    await sleep(100);
    await c.kill('SIGUSR1');
    assert.equal((await c.wait()).exitCode, 7);
    await c.start();
    await sleep(100);
    await c.stop({ timeout: 5000 });
    assert.equal((await c.inspect()).State.ExitCode, 9);
    assert.equal(await c.logs().text(), 'got-usr1\ngot-int\n');
    assert.equal((await c.inspect()).Config.StopSignal, 'SIGINT');
  });

  test('restart(): stop, start, new PID 1, restart event', async () => {
    const c = await f.sh('sleep 30', { init: true });
    await c.start();
    assert.ok(await eventually(async () => (await c.top()).processes.length === 2));
    const pid1 = (await c.inspect()).State.Pid;
    const events: string[] = [];
    for (const e of ['start', 'exit', 'restart'] as const) c.on(e, () => events.push(e));
    await c.restart({ timeout: 2000 });
    const pid2 = (await c.inspect()).State.Pid;
    assert.notEqual(pid1, pid2);
    assert.equal(procStat(pid1), undefined);
    assert.deepEqual(events, ['exit', 'start', 'restart']);
    assert.equal((await c.inspect()).State.Status, 'running');
  });

  test('wait(): resolves at once when stopped, honours AbortSignal, next-exit and removed conditions', async () => {
    const c = await f.sh('exit 4');
    await c.start();
    assert.equal((await c.wait()).exitCode, 4);
    assert.equal((await c.wait()).exitCode, 4, 'already exited: immediate');
    const d = await f.sh('sleep 30');
    await d.start();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(d.wait({ signal: ac.signal }), AbortError);
    const next = d.wait({ condition: 'next-exit' });
    const removed = d.wait({ condition: 'removed' });
    await d.remove({ force: true });
    assert.equal((await next).exitCode, 137);
    await removed;
  });

  test('start() with an aborted signal starts nothing', async () => {
    const c = await f.sh('sleep 30');
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(c.start({ signal: ac.signal }), AbortError);
    assert.equal(await c.status(), 'created');
  });

  test('pause/unpause freeze the container\'s processes (freezer) and emit events', async () => {
    const c = await f.sh('i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done');
    const events: string[] = [];
    c.on('pause', () => events.push('pause'));
    c.on('unpause', () => events.push('unpause'));
    await c.start();
    await c.waitForLog(/^5$/, { timeout: 5000 });
    await c.pause();
    const info = await c.inspect();
    assert.equal(info.State.Status, 'paused');
    assert.equal(info.State.Paused, true);
    assert.equal(info.State.Running, true);
    const freezer = cgroupDirsOf(c.id).find((d) => d.includes('/freezer/'));
    if (freezer) assert.equal(readFileSync(join(freezer, 'freezer.state'), 'utf8').trim(), 'FROZEN');
    const before = (await c.logs().text()).split('\n').length;
    await sleep(200);
    assert.equal((await c.logs().text()).split('\n').length, before, 'no output while paused');
    await c.unpause();
    await eventually(async () => (await c.logs().text()).split('\n').length > before + 2);
    assert.ok((await c.logs().text()).split('\n').length > before + 2, 'output resumes');
    assert.deepEqual(events, ['pause', 'unpause']);
    await c.stop({ timeout: 100 });
  });

  test('a paused container can be stopped (thawed after the signal)', async () => {
    const c = await f.create(['sleep', '30'], { init: true });
    await c.start();
    await c.pause();
    await c.stop({ timeout: 3000 });
    assert.equal(await c.status(), 'exited');
  });

  test('remove: refuses a running container; force kills it; state dir, name and cgroup are gone', async () => {
    const c = await f.sh('sleep 30', { name: 'to-remove' });
    await c.start();
    const destroyed: string[] = [];
    c.on('destroy', () => destroyed.push('destroy'));
    await assert.rejects(c.remove(), ConflictError);
    const pid = (await c.inspect()).State.Pid;
    await c.remove({ force: true, volumes: true });
    assert.equal(procStat(pid), undefined);
    assert.equal(pathExists(join(f.root, 'containers', c.id)), false);
    assert.deepEqual(cgroupDirsOf(c.id), []);
    await assert.rejects(f.rt.containers.get('to-remove'), NotFoundError);
    await assert.rejects(c.inspect(), NotFoundError);
    await assert.rejects(c.remove(), NotFoundError);
    assert.deepEqual(destroyed, ['destroy']);
    const again = await f.sh('true', { name: 'to-remove' });
    assert.equal(again.name, 'to-remove', 'the name is free again');
  });

  test('Symbol.asyncDispose removes the container (await using)', async () => {
    let id = '';
    {
      await using c = await f.rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sleep', '30'] });
      id = c.id;
      await c.start();
    }
    await assert.rejects(f.rt.containers.get(id), NotFoundError);
  });

  test('names: unique, generated when absent, rename moves the name; get by name, /name, id and prefix', async () => {
    const a = await f.sh('true', { name: 'alpha' });
    await assert.rejects(f.sh('true', { name: 'alpha' }), (e: Error) => e instanceof ConflictError && /already in use/.test(e.message));
    await assert.rejects(f.sh('true', { name: 'no way' }), ValidationError);
    const g = await f.sh('true');
    assert.match(g.name, /^[a-z]+_[a-z]+_\d{4}$/);
    assert.equal(await f.rt.containers.get('alpha'), a);
    assert.equal(await f.rt.containers.get('/alpha'), a);
    assert.equal(await f.rt.containers.get(a.id), a);
    assert.equal(await f.rt.containers.get(a.id.slice(0, 12)), a);
    await assert.rejects(f.rt.containers.get('no-such-container'), NotFoundError);
    const renamed: Array<{ oldName: string; name: string }> = [];
    a.on('rename', (r) => renamed.push(r));
    await assert.rejects(a.rename(g.name), ConflictError);
    await a.rename('beta');
    assert.equal(a.name, 'beta');
    assert.deepEqual(renamed, [{ oldName: 'alpha', name: 'beta' }]);
    assert.equal(await f.rt.containers.get('beta'), a);
    await assert.rejects(f.rt.containers.get('alpha'), NotFoundError);
    assert.equal((await f.sh('true', { name: 'alpha' })).name, 'alpha');
  });

  test('list: running only by default; all; filters by status, label and name', async () => {
    const up = await f.sh('sleep 30', { name: 'list-up', labels: { tier: 'web', team: 'a' } });
    const down = await f.sh('true', { name: 'list-down', labels: { tier: 'db' } });
    await up.start();
    await down.start();
    await down.wait();
    const ids = (rows: Array<{ Id: string }>) => rows.map((r) => r.Id);
    assert.ok(ids(await f.rt.containers.list()).includes(up.id));
    assert.ok(!ids(await f.rt.containers.list()).includes(down.id));
    assert.ok(ids(await f.rt.containers.list({ all: true })).includes(down.id));
    assert.deepEqual(ids(await f.rt.containers.list({ filters: { status: 'exited', name: 'list-' } })), [down.id]);
    assert.deepEqual(ids(await f.rt.containers.list({ all: true, filters: { label: 'tier=web' } })), [up.id]);
    assert.deepEqual(ids(await f.rt.containers.list({ all: true, filters: { label: ['tier', 'team=a'] } })), [up.id]);
    assert.deepEqual(ids(await f.rt.containers.list({ all: true, filters: { name: /^list-d/ } })), [down.id]);
    const row = (await f.rt.containers.list({ filters: { name: 'list-up' } }))[0]!;
    assert.equal(row.State, 'running');
    assert.match(row.Status, /^Up /);
    assert.deepEqual(row.Names, ['/list-up']);
    await up.stop({ timeout: 100 });
  });

  test('events: per container and runtime-wide, in order, with the exit status', async () => {
    const sub = f.rt.events({ filters: { container: ['ev-1'] } });
    const seen: RuntimeEvent[] = [];
    const collecting = (async () => {
      for await (const e of sub) seen.push(e);
    })();
    const c = await f.sh('exit 5', { name: 'ev-1', labels: { k: 'v' } });
    const exits: unknown[] = [];
    c.on('exit', (e) => exits.push(e));
    await c.start();
    await c.wait();
    await c.remove();
    await eventually(() => seen.length >= 4);
    sub.close();
    await collecting;
    assert.deepEqual(seen.map((e) => e.action), ['create', 'start', 'exit', 'destroy']);
    assert.equal(seen[2]!.attributes.exitCode, '5');
    assert.equal(seen[0]!.attributes['label.k'], 'v');
    assert.equal(seen[0]!.id, c.id);
    assert.deepEqual(exits, [{ exitCode: 5, signal: null, oomKilled: false }]);
  });

  test('a command that cannot run: start() rejects, the state records 127 and the reason', async () => {
    const c = await f.create(['no-such-binary-xyz']);
    await assert.rejects(c.start(), (e: Error) => e instanceof NotFoundError && /no-such-binary-xyz/.test(e.message));
    const s = (await c.inspect()).State;
    assert.equal(s.Status, 'exited');
    assert.equal(s.ExitCode, 127);
    assert.match(s.Error, /executable file not found/);
    assert.match(await c.logs().text(), /no-such-binary-xyz/);
    assert.deepEqual(cgroupDirsOf(c.id), []);
  });

  test('init: true reaps an orphaned grandchild; without init it stays a zombie of PID 1', async () => {
    // The inner shell backgrounds a short sleep and exits: the sleep is re-parented to PID 1.
    // The outer shell then becomes `sleep 3`, which never waits for anything.
    const script = 'sh -c "sleep 0.1 &"; exec sleep 3';
    const withInit = await f.sh(script, { init: true });
    const without = await f.sh(script);
    await withInit.start();
    await without.start();
    const pidInit = (await withInit.inspect()).State.Pid;
    const pidBare = (await without.inspect()).State.Pid;
    const zombie = await eventually(() => zombieChildrenOf(pidBare).length > 0, 2000);
    assert.equal(zombie, true, 'control: the orphan is a zombie under a PID 1 that does not reap');
    await sleep(300);
    assert.deepEqual(zombieChildrenOf(pidInit), [], 'berth-init reaped the orphan');
    await withInit.kill();
    await without.kill();
  });

  test('restart policy on-failure:2 restarts exactly twice, then stays exited', async () => {
    const c = await f.sh('echo attempt; exit 3', { restart: 'on-failure:2' });
    const events: string[] = [];
    for (const e of ['start', 'exit', 'restart'] as const) c.on(e, () => events.push(e));
    await c.start();
    const exit = await c.wait();
    assert.equal(exit.exitCode, 3);
    await sleep(400); // a third restart would come after 400 ms of backoff
    const info = await c.inspect();
    assert.equal(info.State.Status, 'exited');
    assert.equal(info.RestartCount, 2);
    assert.deepEqual(events, ['start', 'exit', 'restart', 'start', 'exit', 'restart', 'start', 'exit']);
    assert.equal(await c.logs().text(), 'attempt\nattempt\nattempt\n');
    assert.deepEqual(info.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
  });

  test('restart policy always: restarts after success too, but not after stop()', async () => {
    const c = await f.sh('sleep 0.05', { restart: 'always' });
    await c.start();
    await eventually(async () => (await c.inspect()).RestartCount >= 2, 5000);
    assert.ok((await c.inspect()).RestartCount >= 2);
    await c.stop({ timeout: 200 });
    const n = (await c.inspect()).RestartCount;
    await sleep(500);
    assert.equal((await c.inspect()).RestartCount, n);
    assert.equal(await c.status(), 'exited');
  });

  test('autoRemove: the container is removed after it exits', async () => {
    const c = await f.sh('exit 0', { autoRemove: true });
    const removed = c.wait({ condition: 'removed' });
    await c.start();
    await removed;
    await assert.rejects(f.rt.containers.get(c.id), NotFoundError);
  });

  test('OOM: oomKilled, the oom event, exit 137', async () => {
    const c = await f.sh('exec tail /dev/zero', { memory: '32m', memorySwap: '32m' });
    const ooms: number[] = [];
    c.on('oom', () => ooms.push(1));
    await c.start();
    const exit = await c.wait();
    assert.deepEqual(exit, { exitCode: 137, signal: 'SIGKILL', oomKilled: true });
    assert.equal(ooms.length, 1);
    assert.equal((await c.inspect()).State.OOMKilled, true);
  });
});
