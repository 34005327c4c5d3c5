/**
 * Crash safety and sharing on the real kernel: a Node process owning containers is SIGKILLed;
 * two processes churn 50 containers each in one state dir; detached containers outlive their
 * creator and are managed from another process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime } from '../../lib/runtime.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { mountLines } from '../helpers/leaks.js';
import { cgroupDirsOf, eventually, procStat } from '../helpers/containers-fixture.js';
import { startNodeChild, type NodeChild } from '../helpers/node-child.js';

const skip = kernelSkipReason();
const here = fileURLToPath(new URL('.', import.meta.url));

function child(script: string, args: string[]): NodeChild {
  return startNodeChild(join(here, script), args);
}

describe('containers: crash safety and shared state', { skip }, () => {
  const roots: string[] = [];
  const children: ChildProcess[] = [];
  const newRoot = () => {
    const r = mkdtempSync(join(tmpdir(), 'berth-crash-'));
    roots.push(r);
    return r;
  };
  before(() => {
    busyboxRootfs();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const r of roots) {
      // Anything a failed test left running in these state dirs goes first.
      const rt = await Runtime.open({ root: r }).catch(() => undefined);
      for (const s of (await rt?.containers.list({ all: true })) ?? []) await (await rt!.containers.get(s.Id)).remove({ force: true }).catch(() => {});
      rmSync(r, { recursive: true, force: true });
    }
  });

  test('the owning process is SIGKILLed: its containers die, nothing is left, the next open reports them exited', async () => {
    const root = newRoot();
    const c = child('containers-child-owner.ts', [root, busyboxRootfs()]);
    children.push(c.proc);
    const started = JSON.parse(await c.line) as Array<{ id: string; pid: number }>;
    assert.equal(started.length, 4);
    for (const s of started) assert.ok(procStat(s.pid), `container ${s.id} runs`);
    assert.ok(started.flatMap((s) => cgroupDirsOf(s.id)).length > 0);

    const pidsOf = (s: { id: string }) => cgroupDirsOf(s.id).flatMap((d) => readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number));
    const running = started.slice(0, 3).flatMap(pidsOf);
    const paused = pidsOf(started[3]!);
    const gone = (pids: number[]) => pids.every((p) => procStat(p) === undefined || procStat(p)!.state === 'Z');

    c.proc.kill('SIGKILL');
    await c.done;
    assert.equal(await eventually(() => gone(running), 5000), true, `processes left: ${running.filter((p) => procStat(p)).join(', ')}`);
    assert.deepEqual(mountLines().filter((l) => l.includes(root) || l.includes('/run/berth/rootfs')), [], 'no mount on the host');
    // cgroup v1's freezer holds even SIGKILL until the cgroup is thawed: a paused container
    // outlives its owner, frozen, until the next Runtime.open() kills it (v2 lets it die).
    await sleep(200);
    if (!gone(paused)) assert.ok(paused.every((p) => procStat(p)), 'the paused container is frozen, not half-dead');

    const rt = await Runtime.open({ root });
    for (const s of started) {
      const info = await (await rt.containers.get(s.id)).inspect();
      assert.equal(info.State.Status, 'exited', s.id);
      assert.equal(info.State.ExitCode, 137);
      assert.match(info.State.Error, /owning process/);
      assert.deepEqual(cgroupDirsOf(s.id), [], 'its cgroup was removed');
    }
    assert.deepEqual(await rt.containers.list(), [], 'nothing is reported running');
    assert.equal(await eventually(() => gone([...running, ...paused]), 5000), true, 'the paused container died at reconciliation');
    // They can run again, now owned by this process.
    const again = await rt.containers.get(started[0]!.id);
    await again.start();
    await again.remove({ force: true });
  });

  test('two processes create/start/remove 50 containers each in one state dir: consistent state', async () => {
    const root = newRoot();
    await Runtime.open({ root });
    const a = child('containers-child-churn.ts', [root, busyboxRootfs(), 'pa', '50']);
    const b = child('containers-child-churn.ts', [root, busyboxRootfs(), 'pb', '50']);
    children.push(a.proc, b.proc);
    const [ra, rb] = (await Promise.all([a.line, b.line])).map((l) => JSON.parse(l) as { kept: string[]; removed: string[]; sharedWon: Array<{ name: string; id: string }>; conflicts: number });
    assert.deepEqual(await Promise.all([a.done, b.done]), [0, 0]);
    assert.equal(ra!.kept.length + ra!.removed.length, 50);
    assert.equal(rb!.kept.length + rb!.removed.length, 50);
    // Every shared name went to exactly one process.
    const won = [...ra!.sharedWon, ...rb!.sharedWon];
    assert.deepEqual(won.map((w) => w.name).sort(), Array.from({ length: 10 }, (_, i) => `shared-${i}`).sort());
    assert.equal(ra!.conflicts + rb!.conflicts, 10);

    const rt = await Runtime.open({ root });
    const rows = await rt.containers.list({ all: true });
    const expected = new Set([...ra!.kept, ...rb!.kept, ...won.map((w) => w.id)]);
    assert.deepEqual(new Set(rows.map((r) => r.Id)), expected);
    for (const r of rows) {
      const shared = r.Names[0]!.startsWith('/shared-');
      assert.equal(r.State, shared ? 'created' : 'exited', r.Names[0]);
      if (!shared) {
        const c = await rt.containers.get(r.Id);
        assert.equal((await c.inspect()).State.ExitCode, 0);
        assert.equal(await c.logs().text(), `${r.Names[0]!.slice(1)}\n`);
      }
    }
    const namesDir = join(root, 'containers', 'names');
    const names = Object.fromEntries(readdirSync(namesDir).map((n) => [n, readFileSync(join(namesDir, n), 'utf8').trim()]));
    assert.equal(Object.keys(names).length, expected.size);
    for (const [name, id] of Object.entries(names)) {
      assert.ok(expected.has(id));
      assert.equal(`/${name}`, rows.find((r) => r.Id === id)!.Names[0]);
    }
    const leftovers = readdirSync(join(root, 'containers')).filter((n) => n.startsWith('.'));
    assert.deepEqual(leftovers, [], 'no staging, trash or temp files');
    for (const id of [...ra!.removed, ...rb!.removed, ...expected]) assert.deepEqual(cgroupDirsOf(id), []);
  });

  test('a detached container outlives its creator; another process reads its logs, execs, stops and removes it; an unwatched exit is recorded', async () => {
    const root = newRoot();
    const c = child('containers-child-detached.ts', [root, busyboxRootfs()]);
    children.push(c.proc);
    const ids = JSON.parse(await c.line) as { long: string; short: string; pid: number };
    assert.equal(await c.done, 0, 'the creator exited');
    await sleep(200);
    assert.ok(procStat(ids.pid), 'the detached container still runs');

    const rt = await Runtime.open({ root });
    const long = await rt.containers.get('detached-long');
    assert.equal((await long.inspect()).State.Status, 'running');
    assert.ok((await rt.containers.list()).some((r) => r.Id === ids.long));
    assert.match(await long.logs().text(), /detached-hello/);
    const r = await long.exec(['sh', '-c', 'echo from-exec; cat /proc/1/cmdline | tr "\\0" " "']);
    assert.match(r.stdout, /from-exec/);

    // The short one exited while no Node process watched: its monitor recorded it.
    const short = await rt.containers.get('detached-short');
    await eventually(async () => (await short.inspect()).State.Status === 'exited', 5000);
    const s = (await short.inspect()).State;
    assert.equal(s.Status, 'exited');
    assert.equal(s.ExitCode, 3);
    assert.match(await short.logs().text(), /short-done/);

    const a = await long.attach();
    assert.equal(a.stdin, null, 'the monitor holds a detached container\'s stdin');
    const seen: Buffer[] = [];
    a.stdout.on('data', (d: Buffer) => seen.push(d));
    await long.stop({ timeout: 5000 });
    await eventually(() => Buffer.concat(seen).toString().includes('bye'), 3000);
    a.detach();
    assert.match(Buffer.concat(seen).toString(), /bye/, 'attach follows the output the monitor logs');
    const l = (await long.inspect()).State;
    assert.equal(l.Status, 'exited');
    assert.equal(l.ExitCode, 0);
    assert.match(await long.logs().text(), /bye/);
    assert.equal(await eventually(() => procStat(ids.pid) === undefined, 2000), true, 'PID 1 is gone');
    await long.remove();
    await short.remove();
    assert.deepEqual(cgroupDirsOf(ids.long), []);
  });
});
