/**
 * Attacks on `docker cp` (issue 12 §2), both directions.
 *
 * 1. Symlink-exchange race (CVE-2018-15664): inside a running container, a small static program
 *    swaps a directory `/w/d` and a symlink `/w/s -> <host canary dir>` with
 *    `renameat2(RENAME_EXCHANGE)` in a tight loop, while the test copies `/w/d/...` out and
 *    into `/w/d/` many times. The canary dir exists only on the host: a copy that resolves the
 *    container's symlink against the host's root reads the host's secret or writes into the
 *    host's directory. Each attack runs first against a naive implementation kept here (the
 *    path-join through `/proc/<pid>/root` that such bugs are made of), which must be caught
 *    (so the attack is live and the detection works), then against berth, which must not be.
 * 2. Hostile tar entries for `putArchive`: `../` and absolute names, a symlink entry then a
 *    file through it, hard links out of the destination, a device node, a size larger than the
 *    data: each is refused with a typed error and nothing lands outside the destination.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';
import { buildTar, fileHeader } from '../helpers/tar-builder.js';
import { isBerthError } from '../../lib/errors.js';
import { UnsafeArchiveEntryError } from '../../lib/containers/archive-errors.js';
import type { Container } from '../../lib/containers/container.js';

const skip = kernelSkipReason() || (existsSync('/usr/bin/gcc') ? false : 'needs gcc (builds the static swapper)');

const SWAPPER = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  for (;;) syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
}
`;

const ROUNDS = 200;
/**
 * The swapper shares two busy cores with everything else: it may stall in one state for a
 * while. A run keeps sampling past ROUNDS (up to this many) until the race was seen both ways,
 * so that "never leaked" is not the result of never having been attacked.
 */
const MAX_ROUNDS = 5000;

/** A copy out of the container, as the attacked code path: (container path, host path). */
type CopyOut = (c: Container, pid: number, from: string, to: string) => Promise<void>;
/** A copy into the container: (host file, container dir). */
type CopyIn = (c: Container, pid: number, from: string, toDir: string) => Promise<void>;

/** The classic bug: the container's path joined onto /proc/<pid>/root and opened by the host. */
const naiveOut: CopyOut = async (_c, pid, from, to) => {
  writeFileSync(to, readFileSync(join(`/proc/${pid}/root`, from)));
};
const naiveIn: CopyIn = async (_c, pid, from, toDir) => {
  writeFileSync(join(`/proc/${pid}/root`, toDir, from.slice(from.lastIndexOf('/') + 1)), readFileSync(from));
};
const berthOut: CopyOut = (c, _pid, from, to) => c.copyFrom(from, to);
const berthIn: CopyIn = (c, _pid, from, toDir) => c.copyTo(from, `${toDir}/`);

describe('docker cp against a container that swaps a directory and a symlink to a host dir', { skip }, () => {
  let f: Fixture;
  let work: string;
  let canary: string;
  let c: Container;
  let pid: number;
  const marker = `berth-host-secret-${process.pid}-${Date.now()}`;

  before(async () => {
    f = await openFixture('berth-cp-attack-');
    work = mkdtempSync(join(tmpdir(), 'berth-cp-attack-work-'));
    canary = mkdtempSync(join(tmpdir(), 'berth-cp-canary-'));
    writeFileSync(join(canary, 'secret.txt'), marker);
    const bin = join(work, 'bin');
    mkdirSync(bin);
    writeFileSync(join(work, 'swapper.c'), SWAPPER);
    execFileSync('gcc', ['-static', '-O2', '-o', join(bin, 'swapper'), join(work, 'swapper.c')]);
    c = await f.sh(
      `mkdir -p /w/d && echo inside > /w/d/secret.txt && ln -s ${canary} /w/s && exec /t/swapper /w/d /w/s`,
      { mounts: [{ type: 'bind', source: bin, target: '/t', readonly: true }] },
    );
    await c.start();
    pid = (await c.inspect()).State.Pid;
    // The swapper is running once /w/d has been seen as the symlink at least once.
    for (let i = 0; ; i++) {
      const r = await c.exec(['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do [ -L /w/d ] && echo swapped && exit 0; done; exit 1']);
      if (r.stdout.includes('swapped')) break;
      assert.ok(i < 50, 'the swapper never swapped');
    }
  });

  after(async () => {
    await f?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
    if (canary) rmSync(canary, { recursive: true, force: true });
  });

  /**
   * Copies /w/d/secret.txt out at least ROUNDS times, and on until both states of the race were
   * met (the directory in place, and the symlink in place: a miss or a leak).
   */
  async function leaksOut(copy: CopyOut): Promise<{ leaked: number; inside: number; missed: number }> {
    let leaked = 0;
    let inside = 0;
    let missed = 0;
    for (let i = 0; i < ROUNDS || ((inside === 0 || leaked + missed === 0) && i < MAX_ROUNDS); i++) {
      const to = join(work, `out-${i}`);
      try {
        await copy(c, pid, '/w/d/secret.txt', to);
      } catch (error) {
        // A copy that finds nothing (the symlink resolved inside the container) fails.
        if (!(isBerthError(error) || (error as NodeJS.ErrnoException).code !== undefined)) throw error;
        missed++;
        continue;
      }
      const got = readFileSync(to, 'utf8');
      if (got.includes(marker)) leaked++;
      else if (got.includes('inside')) inside++;
      rmSync(to, { force: true });
    }
    return { leaked, inside, missed };
  }

  /** Copies a file into /w/d at least ROUNDS times (and on, as leaksOut); how many landed in the host's canary dir. */
  async function leaksIn(copy: CopyIn): Promise<{ leaked: number; inside: number; missed: number }> {
    let leaked = 0;
    let inside = 0;
    let missed = 0;
    for (let i = 0; i < ROUNDS || ((inside === 0 || leaked + missed === 0) && i < MAX_ROUNDS); i++) {
      const name = `planted-${process.pid}-${i}`;
      const from = join(work, name);
      writeFileSync(from, `planted ${i}`);
      try {
        await copy(c, pid, from, '/w/d');
        if (existsSync(join(canary, name))) leaked++;
        else inside++;
      } catch (error) {
        if (!(isBerthError(error) || (error as NodeJS.ErrnoException).code !== undefined)) throw error;
        missed++;
      }
      rmSync(from, { force: true });
    }
    for (const n of readdirSync(canary)) if (n.startsWith('planted-')) rmSync(join(canary, n), { force: true });
    return { leaked, inside, missed };
  }

  test('reading: the naive copy leaks the host secret; berth never does', async () => {
    const naive = await leaksOut(naiveOut);
    assert.ok(naive.leaked > 0, `the attack must be live: the naive copy never read the host's file (${JSON.stringify(naive)})`);
    const ours = await leaksOut(berthOut);
    assert.equal(ours.leaked, 0, `berth copied the host's secret out ${ours.leaked} times`);
    assert.ok(ours.inside > 0, 'berth must still copy the container\'s own file when the directory is in place');
  });

  test('reading a directory (getArchive of /w/d/) never includes the host secret', async () => {
    let seenInside = 0;
    const outcomes = new Map<string, number>();
    for (let i = 0; i < ROUNDS / 4 || (seenInside === 0 && i < MAX_ROUNDS); i++) {
      let tar: Buffer;
      try {
        const s = await c.getArchive({ path: '/w/d/' });
        const parts: Buffer[] = [];
        for await (const chunk of s) parts.push(chunk as Buffer);
        tar = Buffer.concat(parts);
      } catch (error) {
        if (!isBerthError(error)) throw error;
        outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1);
        continue;
      }
      assert.ok(!tar.includes(marker), 'getArchive returned the host secret');
      if (tar.includes('inside')) seenInside++;
      else outcomes.set(`tar of ${tar.length} bytes without the file`, (outcomes.get(`tar of ${tar.length} bytes without the file`) ?? 0) + 1);
    }
    assert.ok(seenInside > 0, `never read the container's own directory: ${JSON.stringify([...outcomes])}`);
  });

  test('writing: the naive copy plants files in the host dir; berth never does', async () => {
    const naive = await leaksIn(naiveIn);
    assert.ok(naive.leaked > 0, `the attack must be live: the naive copy never wrote to the host (${JSON.stringify(naive)})`);
    const ours = await leaksIn(berthIn);
    assert.equal(ours.leaked, 0, `berth wrote ${ours.leaked} files into the host's directory`);
    assert.deepEqual(readdirSync(canary), ['secret.txt'], 'nothing at all (not even a temporary file) may appear in the host\'s directory');
    assert.ok(ours.inside > 0, 'berth must still copy into the directory when it is in place');
  });

  test('putArchive to the swapped directory never writes to the host', async () => {
    const before = readdirSync(canary).length;
    for (let i = 0; i < ROUNDS / 2; i++) {
      await c.putArchive(buildTar([{ name: `tar-planted-${i}`, content: 'x' }]), { path: '/w/d' }).catch((error) => {
        if (!isBerthError(error)) throw error;
      });
    }
    assert.equal(readdirSync(canary).length, before);
  });
});

describe('putArchive with hostile tar entries', { skip }, () => {
  let f: Fixture;
  let canary: string;
  let c: Container;

  before(async () => {
    f = await openFixture('berth-cp-tar-');
    canary = mkdtempSync(join(tmpdir(), 'berth-cp-canary-'));
    c = await f.sh(`mkdir -p /dest /other && ln -s ${canary} /dest/hostlink && ln -s / /dest/rootlink && exec sleep 1000`);
    await c.start();
    await c.exec(['sh', '-c', 'until [ -L /dest/rootlink ]; do sleep 0.05; done']);
  });

  after(async () => {
    await f?.cleanup();
    if (canary) rmSync(canary, { recursive: true, force: true });
  });

  /** Nothing new outside /dest in the container, nothing in the host canary. */
  async function assertContained(): Promise<void> {
    assert.deepEqual(readdirSync(canary), []);
    const r = await c.exec(['sh', '-c', 'ls /other; ls / | grep -c evil; ls /etc | grep -c evil; true']);
    assert.equal(r.stdout.trim().split('\n').filter((l) => l !== '0' && l !== '').join(','), '');
  }

  async function refused(entries: Parameters<typeof buildTar>[0], reason: RegExp): Promise<void> {
    await assert.rejects(c.putArchive(buildTar(entries), { path: '/dest' }), (e: unknown) => {
      assert.ok(e instanceof UnsafeArchiveEntryError, `expected UnsafeArchiveEntryError, got ${String(e)}`);
      assert.match((e as Error).message, reason);
      return true;
    });
    await assertContained();
  }

  test('"../" names are refused', () => refused([{ name: '../other/evil', content: 'x' }], /"\.\." path component/));
  test('absolute names are refused', () => refused([{ name: '/etc/evil', content: 'x' }], /absolute path/));
  test('a file through a symlink entry is refused (to the root and to a host dir)', async () => {
    await refused([{ name: 'l', type: 'symlink', linkname: '/' }, { name: 'l/etc/evil', content: 'x' }], /symlink/);
    await refused([{ name: 'h', type: 'symlink', linkname: canary }, { name: 'h/evil', content: 'x' }], /symlink/);
  });
  test('a file through a symlink already in the container is refused', async () => {
    await refused([{ name: 'rootlink/etc/evil', content: 'x' }], /symlink/);
    await refused([{ name: 'hostlink/evil', content: 'x' }], /symlink/);
  });
  test('hard links out of the destination are refused', async () => {
    await refused([{ name: 'hl', type: 'link', linkname: '../etc/passwd' }], /"\.\." path component/);
    await refused([{ name: 'hl', type: 'link', linkname: '/etc/passwd' }], /absolute path/);
    await refused([{ name: 'hl', type: 'link', linkname: 'rootlink/etc/passwd' }], /symlink/);
  });
  test('device nodes are refused for an unprivileged container', () => refused([{ name: 'mem', type: 'char', devmajor: 1, devminor: 1 }], /device/));
  test('an entry claiming more data than the archive holds leaves nothing behind', async () => {
    const tar = Buffer.concat([fileHeader('huge', 2 ** 40), Buffer.alloc(4096, 0x41)]);
    await assert.rejects(c.putArchive(tar, { path: '/dest' }), (e: unknown) => isBerthError(e) && /truncated/.test((e as Error).message));
    const r = await c.exec(['ls', '-a', '/dest']);
    const names = r.stdout.trim().split('\n');
    assert.ok(!names.includes('huge'), 'the truncated file must not appear');
    assert.deepEqual(names.filter((n) => n.startsWith('.berth-cp-')), [], 'its temporary file must be removed');
    await assertContained();
  });
});


