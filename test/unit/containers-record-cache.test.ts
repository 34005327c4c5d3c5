/**
 * The cache behind `list()` (lib/containers/record-cache.ts), on real files: a change made the
 * way every writer makes one (rename into the container's directory) is seen at once, however
 * soon after the previous read; a directory whose stamp is settled is not read again; removed
 * containers drop out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeJsonAtomic } from '../../lib/state/atomic-file.js';
import { ContainerFilesCache, SETTLE_MS, sameStamp, settled, type DirStamp } from '../../lib/containers/record-cache.js';
import { initialState, type ContainerRecord, type ContainerState } from '../../lib/containers/container-record.js';

const ID = 'a'.repeat(64);

function record(name: string, lifetime: 'process' | 'detached' = 'detached'): ContainerRecord {
  return { version: 1, id: ID, name, lifetime } as ContainerRecord;
}

function running(monitorPid: number): ContainerState {
  return { ...initialState(), status: 'running', pid: 42, monitor: { pid: monitorPid, startTime: '1' } };
}

function fixture(): { containers: string; dir: string; done(): void } {
  const containers = mkdtempSync(join(tmpdir(), 'berth-record-cache-'));
  const dir = join(containers, ID);
  mkdirSync(dir);
  return { containers, dir, done: () => rmSync(containers, { recursive: true, force: true }) };
}

test('settled: a stamp is trusted only when it was older than the settle time at the read', () => {
  const stamp: DirStamp = { ino: 1, mtimeMs: 10_000, ctimeMs: 10_000 };
  assert.equal(settled(stamp, 10_000 + SETTLE_MS), true);
  assert.equal(settled(stamp, 10_000 + SETTLE_MS - 1), false);
  assert.equal(settled({ ...stamp, ctimeMs: 11_000 }, 10_000 + SETTLE_MS), false, 'a recent ctime (chmod, rename of the directory) counts too');
  assert.equal(settled(stamp, 10_000 - 5_000), false, 'a stamp from the future (clock stepped back) is never trusted');
  assert.equal(sameStamp(stamp, { ...stamp }), true);
  assert.equal(sameStamp(stamp, { ...stamp, ino: 2 }), false);
  assert.equal(sameStamp(stamp, { ...stamp, mtimeMs: 10_000.000_5 }), false);
});

test('a rewrite by rename right after a read is seen by the next read, in the same clock tick or not', async () => {
  const f = fixture();
  try {
    await writeJsonAtomic(join(f.dir, 'config.json'), record('one'), { durable: false });
    await writeJsonAtomic(join(f.dir, 'state.json'), initialState(), { durable: false });
    const cache = new ContainerFilesCache(f.containers);
    for (let i = 0; i < 50; i++) {
      assert.equal(cache.read(ID)?.state.restartCount, i === 0 ? 0 : i - 1);
      await writeJsonAtomic(join(f.dir, 'state.json'), { ...initialState(), restartCount: i }, { durable: false });
      assert.equal(cache.read(ID)?.state.restartCount, i, `write ${i} was not seen`);
    }
    await writeJsonAtomic(join(f.dir, 'config.json'), record('two'), { durable: false });
    assert.equal(cache.read(ID)?.record.name, 'two');
  } finally {
    f.done();
  }
});

test('a settled directory is served from memory: an in-place write (which no writer makes) is not read', async () => {
  const f = fixture();
  try {
    writeFileSync(join(f.dir, 'config.json'), JSON.stringify(record('one')));
    writeFileSync(join(f.dir, 'state.json'), JSON.stringify(initialState()));
    const settleMs = 50;
    const cache = new ContainerFilesCache(f.containers, settleMs);
    await sleep(settleMs * 3);
    assert.equal(cache.read(ID)?.record.name, 'one');
    // Same inode, no rename: the directory's stamp stays, so the cache must not look.
    writeFileSync(join(f.dir, 'config.json'), JSON.stringify(record('changed-in-place')));
    assert.equal(cache.read(ID)?.record.name, 'one', 'the settled entry was read again from disk');
    // The rename every writer makes is seen.
    writeFileSync(join(f.dir, '.config.json.tmp'), JSON.stringify(record('renamed')));
    renameSync(join(f.dir, '.config.json.tmp'), join(f.dir, 'config.json'));
    assert.equal(cache.read(ID)?.record.name, 'renamed');
  } finally {
    f.done();
  }
});

test('run.json is read with the others for an active detached container, and its removal is seen', async () => {
  const f = fixture();
  try {
    await writeJsonAtomic(join(f.dir, 'config.json'), record('d'), { durable: false });
    await writeJsonAtomic(join(f.dir, 'state.json'), running(7), { durable: false });
    await writeJsonAtomic(join(f.dir, 'run.json'), { monitorPid: 7, status: 'running', pid: 42, startedAt: '', restartCount: 0, retries: 0, manuallyStopped: false, error: '' }, { durable: false });
    const cache = new ContainerFilesCache(f.containers);
    assert.equal(cache.read(ID)?.run?.monitorPid, 7);
    rmSync(join(f.dir, 'run.json'));
    assert.equal(cache.read(ID)?.run, undefined);
    writeFileSync(join(f.dir, 'run.json'), '{not json');
    await writeJsonAtomic(join(f.dir, 'state.json'), running(8), { durable: false });
    assert.equal(cache.read(ID)?.run, undefined, 'an unreadable run.json counts as none, as readRun() does');
    // A process-lifetime container has no monitor's record to read.
    await writeJsonAtomic(join(f.dir, 'config.json'), record('p', 'process'), { durable: false });
    await writeJsonAtomic(join(f.dir, 'run.json'), { monitorPid: 7, status: 'running' }, { durable: false });
    assert.equal(cache.read(ID)?.run, undefined);
  } finally {
    f.done();
  }
});

test('a container removed (renamed away, or half made) reads as gone and leaves no entry', async () => {
  const f = fixture();
  try {
    await writeJsonAtomic(join(f.dir, 'config.json'), record('x'), { durable: false });
    await writeJsonAtomic(join(f.dir, 'state.json'), initialState(), { durable: false });
    const cache = new ContainerFilesCache(f.containers);
    assert.ok(cache.read(ID));
    assert.equal(cache.size, 1);
    renameSync(f.dir, join(f.containers, `.trash-${ID}-1`));
    assert.equal(cache.read(ID), undefined);
    assert.equal(cache.size, 0);
    // Same id back (a restore from backup): a new inode, read afresh.
    mkdirSync(f.dir);
    await writeJsonAtomic(join(f.dir, 'config.json'), record('y'), { durable: false });
    assert.equal(cache.read(ID), undefined, 'config without state is not a container yet');
    await writeJsonAtomic(join(f.dir, 'state.json'), initialState(), { durable: false });
    assert.equal(cache.read(ID)?.record.name, 'y');
    cache.retain(new Set());
    assert.equal(cache.size, 0, 'retain() drops the containers no longer listed');
  } finally {
    f.done();
  }
});
