/**
 * `list()` reuses what it read of a container while the container's directory is unchanged
 * (lib/containers/record-cache.ts). What another process does to the state dir, and what a
 * detached container's monitor records, must show in the very next `list()` — also when the
 * cached entry is settled (older than SETTLE_MS, so trusted on its directory's stamp alone).
 * Each step waits out SETTLE_MS and lists once before the change, so the list after it reads
 * through a trusted cache entry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerSummary } from '../../lib/containers/container-service.js';
import type { ContainerState } from '../../lib/containers/container-record.js';
import { SETTLE_MS } from '../../lib/containers/record-cache.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { cgroupDirsOf, eventually, openFixture, procStat, type Fixture } from '../helpers/containers-fixture.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The peer Runtime (containers-child-peer.ts): one command, one answer. */
function peer(root: string): { proc: ChildProcess; ask(line: string): Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, 'containers-child-peer.ts'), root, busyboxRootfs()], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  return {
    proc,
    async ask(line) {
      proc.stdin!.write(`${line}\n`);
      const next = await Promise.race([lines.next(), sleep(60_000, undefined, { ref: false }).then(() => ({ done: true, value: 'timeout' }))]);
      if (next.done) throw new Error(`the peer gave no answer to "${line}"`);
      const answer = next.value as string;
      if (!answer.startsWith('ok')) throw new Error(`peer: ${line}: ${answer}`);
      return answer.slice(3);
    },
  };
}

function row(rows: ContainerSummary[], id: string): ContainerSummary | undefined {
  return rows.find((r) => r.Id === id);
}

describe('containers: list() sees other processes\' changes at once', { skip: kernelSkipReason() }, () => {
  let f: Fixture;
  let p: ReturnType<typeof peer>;
  before(async () => {
    f = await openFixture('berth-list-peers-');
    p = peer(f.root);
  });
  after(async () => {
    p?.proc.stdin?.end();
    if (p?.proc.exitCode === null) await new Promise((r) => p.proc.once('exit', r));
    // The peer's containers, whatever step a failure stopped at: the fixture tracks only its own.
    for (const r of (await f?.rt.containers.list({ all: true }).catch(() => [])) ?? []) {
      await (await f.rt.containers.get(r.Id)).remove({ force: true }).catch(() => {});
    }
    await f?.cleanup();
  });

  /** Lists once after SETTLE_MS, so that the next list reads through settled cache entries. */
  const settle = async (): Promise<void> => {
    await sleep(SETTLE_MS + 200);
    await f.rt.containers.list({ all: true });
  };

  test('create, start, an exit the monitor records, stop, a monitor killed, and remove by a peer show in the next list()', async () => {
    assert.deepEqual(await f.rt.containers.list({ all: true }), []);
    const a = await p.ask('create peer-a trap "exit 0" TERM; while :; do sleep 0.1; done');
    const b = await p.ask('create peer-b while [ ! -e /go ]; do sleep 0.05; done; exit 7');
    let rows = await f.rt.containers.list({ all: true });
    assert.equal(row(rows, a)?.State, 'created');
    assert.deepEqual(row(rows, b)?.Names, ['/peer-b']);

    await settle();
    await p.ask(`start ${a}`);
    await p.ask(`start ${b}`);
    rows = await f.rt.containers.list();
    assert.deepEqual(rows.map((r) => r.State), ['running', 'running'], 'both started by the peer, seen running');
    assert.match(row(rows, a)!.Status, /^Up /);

    // b exits by itself: its monitor records it in run.json; nobody else looks.
    await settle();
    await (await f.rt.containers.get(b)).exec(['touch', '/go']);
    const runOf = (id: string) => JSON.parse(readFileSync(join(f.root, 'containers', id, 'run.json'), 'utf8')) as { status: string };
    assert.ok(await eventually(() => runOf(b).status === 'exited', 20_000), 'the monitor recorded the exit');
    rows = await f.rt.containers.list({ all: true });
    assert.equal(row(rows, b)?.State, 'exited');
    assert.match(row(rows, b)!.Status, /^Exited \(7\) /);
    assert.deepEqual((await f.rt.containers.list()).map((r) => r.Id), [a]);

    await settle();
    await p.ask(`stop ${a}`);
    rows = await f.rt.containers.list({ all: true });
    assert.equal(row(rows, a)?.State, 'exited', 'stopped by the peer');
    assert.deepEqual(await f.rt.containers.list(), []);

    // A monitor killed outright records nothing: list() notices it is gone (and PID 1 with it).
    await p.ask(`start ${a}`);
    await settle();
    assert.equal(row(await f.rt.containers.list(), a)?.State, 'running');
    const state = JSON.parse(readFileSync(join(f.root, 'containers', a, 'state.json'), 'utf8')) as ContainerState;
    const monitor = state.monitor!.pid;
    const pid1 = (await (await f.rt.containers.get(a)).inspect()).State.Pid;
    assert.ok(monitor > 0 && pid1 > 0);
    process.kill(monitor, 'SIGKILL');
    process.kill(pid1, 'SIGKILL');
    assert.ok(await eventually(() => procStat(pid1) === undefined || procStat(pid1)!.state === 'Z', 10_000), 'PID 1 is gone');
    assert.ok(await eventually(() => procStat(monitor) === undefined || procStat(monitor)!.state === 'Z', 10_000), 'the monitor is gone');
    rows = await f.rt.containers.list({ all: true });
    assert.equal(row(rows, a)?.State, 'exited', 'a dead monitor is noticed by the next list()');
    assert.match(row(rows, a)!.Status, /^Exited \(255\) /);
    assert.deepEqual(cgroupDirsOf(a), [], 'and its cgroup removed on the way');

    await settle();
    await p.ask(`remove ${a}`);
    rows = await f.rt.containers.list({ all: true });
    assert.deepEqual(rows.map((r) => r.Id), [b], 'removed by the peer, gone from the list');
    await p.ask(`remove ${b}`);
    assert.deepEqual(await f.rt.containers.list({ all: true }), []);
  });
});
