/**
 * The hot path of a container does not grow with the containers already there (issue 17 §2):
 * creating, starting and removing containers opens no file of the other containers, reads no
 * table of every name and lists no directory of every container. Observed with the kernel's
 * own file-access notifications (inotify, through `inotifywait` of inotify-tools), a counter
 * rather than a clock: a scan per create shows as events on the others' files at any speed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Container } from '../../lib/containers/container.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { SETTLE_MS } from '../../lib/containers/record-cache.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';

const noInotify = spawnSync('inotifywait', ['--help']).error ? 'inotifywait not installed (scripts/test-deps.sh installs inotify-tools)' : undefined;

interface Access {
  dir: string;
  file: string;
  events: string[];
}

/** `inotifywait -m -r` on `dir`, resolved once its watches are set. */
async function watch(dir: string): Promise<{ proc: ChildProcess; stop(): Promise<Access[]> }> {
  const proc = spawn('inotifywait', ['-m', '-r', '--format', '%w|%f|%e', '-e', 'open,access', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  // "Watches established." on stderr: from here on every access is seen.
  await new Promise<void>((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d) => {
      err += d;
      if (err.includes('Watches established')) resolve();
    });
    proc.on('exit', (code) => reject(new Error(`inotifywait exited ${code}: ${err}`)));
  });
  return {
    proc,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      return out.split('\n').filter(Boolean).map((l) => {
        const [d, file, ev] = l.split('|');
        return { dir: d!, file: file!, events: ev!.split(',') };
      });
    },
  };
}

describe('containers: the hot path reads nothing of the other containers', { skip: noInotify }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture('berth-density-');
  });
  after(async () => {
    await f?.cleanup();
  });

  test('creating, starting and removing 30 detached containers opens no file of the 5 already running and lists no directory of all', async () => {
    const others: Container[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await f.create(['sleep', '600'], { name: `other-${i}`, lifetime: 'detached', memory: '32m', pids: 16 });
      await c.start();
      others.push(c);
    }
    const containersDir = join(f.root, 'containers');
    const w = await watch(containersDir);
    let seen: Access[];
    const mine = new Set<string>();
    try {
      const made: Container[] = [];
      for (let i = 0; i < 30; i++) {
        const c = await f.create(['sleep', '600'], { name: `new-${i}`, lifetime: 'detached', memory: '32m', pids: 16 });
        mine.add(c.id);
        await c.start();
        made.push(c);
      }
      for (const c of made) await c.remove({ force: true });
    } finally {
      seen = await w.stop();
    }
    assert.ok(seen.some((a) => a.file === 'config.json'), 'the watch saw the new containers being written (else it watched nothing)');
    const otherIds = new Set(others.map((c) => c.id));
    const touchedOthers = seen.filter((a) => [...otherIds].some((id) => a.dir.includes(id) || a.file.includes(id)) || /^other-/.test(a.file));
    assert.deepEqual(touchedOthers, [], 'files of the containers already there were opened');
    // A listing (getdents) of a directory is an IN_ACCESS on the directory itself.
    const listings = seen.filter((a) => (a.dir === `${containersDir}/` || a.dir === `${containersDir}/names/`) && a.file === '' && a.events.includes('ACCESS'));
    assert.deepEqual(listings, [], 'a directory holding every container (or every name) was listed');
    // One file naming every container (the names table of old) would be opened by every create.
    // (A directory opened without a listing is an fsync after a rename into it.)
    const shared = seen.filter((a) => a.dir === `${containersDir}/` && a.file !== '' && !a.events.includes('ISDIR') && !mine.has(a.file));
    assert.deepEqual(shared, [], 'a file shared by all containers was opened');
    const rows = await f.rt.containers.list();
    assert.deepEqual(new Set(rows.map((r) => r.Id)), otherIds);
  });

  test('list() of containers unchanged since the last one opens none of their files', async () => {
    const made: Container[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await f.create(['sleep', '600'], { name: `listed-${i}`, lifetime: 'detached', memory: '32m', pids: 16 });
      await c.start();
      made.push(c);
    }
    // Settled: what the next list() reads is reused while the directories keep their stamps.
    await sleep(SETTLE_MS + 200);
    const first = await f.rt.containers.list();
    const containersDir = join(f.root, 'containers');
    const w = await watch(containersDir);
    let seen: Access[];
    let rows;
    try {
      rows = await f.rt.containers.list();
      await f.rt.containers.list();
    } finally {
      seen = await w.stop();
    }
    assert.deepEqual(rows, first.map((r) => ({ ...r, Status: rows!.find((x) => x.Id === r.Id)?.Status })), 'the same rows (the Status text counts up)');
    for (const c of made) assert.ok(rows.some((r) => r.Id === c.id && r.State === 'running'));
    assert.ok(seen.some((a) => a.dir === `${containersDir}/` && a.file === '' && a.events.includes('ACCESS')), 'the watch saw the listing of the containers (else it watched nothing)');
    const opened = seen.filter((a) => a.dir !== `${containersDir}/` || a.file !== '');
    assert.deepEqual(opened, [], 'a file of an unchanged container was opened');
  });
});
