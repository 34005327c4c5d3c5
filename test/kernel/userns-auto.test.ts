/**
 * Attack (issue 10, item 9): with `userns: 'auto'` every container got the same host id range,
 * so root in one container was the same host user as root in every other one (its files, its
 * signals). Each container must get its own range, held until it is gone, and the allocation must
 * hold across Node processes sharing a registry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { run } from '../../lib/run.js';
import { Runtime } from '../../lib/runtime.js';
import { AUTO_SIZE, USERNS_REGISTRY_DIR, allocateAutoRange, autoPool, releaseAutoRange } from '../../lib/launch/userns.js';
import type { IdMapping } from '../../lib/launch/run-options.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();
const execFileAsync = promisify(execFile);

/** Outside ranges of a /proc/<pid>/uid_map text. */
function outside(map: string): Array<{ start: number; size: number }> {
  return map.trim().split('\n').map((l) => {
    const [, out, size] = l.trim().split(/\s+/).map(Number);
    return { start: out!, size: size! };
  });
}

function overlaps(a: { start: number; size: number }, b: { start: number; size: number }): boolean {
  return a.start < b.start + b.size && b.start < a.start + a.size;
}

describe("userns: 'auto' gives every container its own host id range", { skip }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-userns-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('two concurrent run()s see disjoint uid and gid maps', async () => {
    const rootfs = busyboxRootfs();
    // Both are alive at once: each waits for the other's map to show up in a shared dir.
    const share = join(dir, 'share');
    mkdirSync(share);
    // Reached by the containers' unprivileged host root: traversable and writable by "other".
    chmodSync(dir, 0o755);
    chmodSync(share, 0o777);
    const script = (me: string, other: string) =>
      `cat /proc/self/uid_map > /s/${me}.uid; cat /proc/self/gid_map > /s/${me}.gid; i=0; while [ ! -e /s/${other}.gid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; test -e /s/${other}.gid`;
    const opts = { userns: 'auto' as const, mounts: [{ type: 'bind' as const, source: share, target: '/s' }] };
    const [a, b] = await Promise.all([run({ rootfs }, ['sh', '-c', script('a', 'b')], opts), run({ rootfs }, ['sh', '-c', script('b', 'a')], opts)]);
    assert.equal(a.exitCode, 0, `the two containers did not run at the same time: ${a.stderr}`);
    assert.equal(b.exitCode, 0, b.stderr);
    for (const kind of ['uid', 'gid']) {
      const ma = outside(readFileSync(join(share, `a.${kind}`), 'utf8'));
      const mb = outside(readFileSync(join(share, `b.${kind}`), 'utf8'));
      for (const x of ma) for (const y of mb) assert.ok(!overlaps(x, y), `${kind} maps overlap: ${JSON.stringify(ma)} and ${JSON.stringify(mb)}`);
      assert.ok(ma.every((r) => r.size === AUTO_SIZE && r.start > 0), `container root is an unprivileged host id: ${JSON.stringify(ma)}`);
    }
  });

  test('containers of rt.containers hold distinct ranges from create to remove', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-userns-rt-'));
    const rt = await Runtime.open({ root });
    try {
      const a = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sleep', '30'], userns: 'auto' });
      const b = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sleep', '30'], userns: 'auto' });
      const mapsOf = async (c: typeof a) => (await c.read()).record.options.userns as { uidMap: IdMapping[]; gidMap: IdMapping[] };
      const [ma, mb] = [await mapsOf(a), await mapsOf(b)];
      const range = (m: IdMapping[]) => ({ start: m[0]!.hostId, size: m[0]!.size });
      assert.ok(!overlaps(range(ma.uidMap), range(mb.uidMap)), `uid ranges overlap: ${JSON.stringify([ma.uidMap, mb.uidMap])}`);
      assert.ok(!overlaps(range(ma.gidMap), range(mb.gidMap)), `gid ranges overlap: ${JSON.stringify([ma.gidMap, mb.gidMap])}`);
      // Both run at once, each in its own range, and their root can write their own files.
      await a.start();
      await b.start();
      const live = async (c: typeof a) => {
        const r = await c.exec(['sh', '-c', 'touch /written && cat /proc/self/uid_map']);
        assert.equal(r.exitCode, 0, r.stderr);
        return outside(r.stdout);
      };
      const [la, lb] = [await live(a), await live(b)];
      for (const x of la) for (const y of lb) assert.ok(!overlaps(x, y), `live uid maps overlap: ${JSON.stringify([la, lb])}`);
      assert.deepEqual(la, [range(ma.uidMap)]);
      const registry = () => readFileSync(join(USERNS_REGISTRY_DIR, 'userns-ranges.json'), 'utf8');
      assert.match(registry(), new RegExp(`container:${a.id}`));
      await a.remove({ force: true });
      assert.doesNotMatch(registry(), new RegExp(`container:${a.id}`), 'remove() gives the range back');
      await b.remove({ force: true });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a range is reused only after its release; a crashed holder\'s range is reclaimed', async () => {
    const reg = join(dir, 'reg-reuse');
    const pool = autoPool({ subuid: '/nonexistent', subgid: '/nonexistent' });
    const a = await allocateAutoRange({ key: 'a' }, { registryDir: reg, pool });
    const b = await allocateAutoRange({ key: 'b' }, { registryDir: reg, pool });
    assert.notEqual(a.slot, b.slot);
    assert.equal((await allocateAutoRange({ key: 'a' }, { registryDir: reg, pool })).slot, a.slot, 'the same holder asking again keeps its range');
    const c = await allocateAutoRange({ key: 'c' }, { registryDir: reg, pool });
    assert.ok(c.slot !== a.slot && c.slot !== b.slot, 'held ranges are not handed out');
    await releaseAutoRange('a', { registryDir: reg });
    assert.equal((await allocateAutoRange({ key: 'd' }, { registryDir: reg, pool })).slot, a.slot, 'a released range is free again');
    // A holder that died: its pid no longer runs and its container directory is gone.
    const file = join(reg, 'userns-ranges.json');
    const r = JSON.parse(readFileSync(file, 'utf8')) as { entries: Array<{ key: string; owner: { pid: number; startTime: string }; containerDir?: string }> };
    for (const e of r.entries) {
      if (e.key === 'b') e.owner = { pid: 999_999_999, startTime: '1' };
      if (e.key === 'c') {
        e.owner = { pid: 999_999_999, startTime: '1' };
        e.containerDir = dir; // still exists: a container outlives its creator
      }
    }
    writeFileSync(file, JSON.stringify(r));
    assert.equal((await allocateAutoRange({ key: 'e' }, { registryDir: reg, pool })).slot, b.slot, 'the dead holder\'s range is reclaimed');
    assert.notEqual((await allocateAutoRange({ key: 'f' }, { registryDir: reg, pool })).slot, c.slot, 'a range whose container still exists stays held');
  });

  test('two Node processes allocating from one registry at once never get the same range', async () => {
    const reg = join(dir, 'reg-procs');
    mkdirSync(reg);
    const child = join(import.meta.dirname, 'userns-alloc-child.ts');
    const N = 40;
    // Each holder names an existing container dir, so its ranges stay held after it exits.
    const outs = await Promise.all(['p', 'q'].map((tag) => execFileAsync(process.execPath, ['--import', 'tsx', child, reg, tag, String(N), dir], { timeout: 60_000 })));
    const slots = outs.flatMap((o) => JSON.parse(o.stdout) as number[]);
    assert.equal(slots.length, 2 * N);
    assert.equal(new Set(slots).size, slots.length, `a range was handed out twice: ${JSON.stringify(slots)}`);
  });
});
