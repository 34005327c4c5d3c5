/**
 * `diff()` reports only what the container changed, as `docker diff` would for the same
 * actions: not the mount points berth makes in the upper dir when the image lacks them
 * (`/dev`, `/proc`, `/sys`, volume, bind and tmpfs targets and the directories made to hold
 * them), nor `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` (Docker keeps all of these in
 * its "init" layer or bind-mounts them, so its diff never lists them).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason();

/** A rootfs with busybox and a few files, and without /dev, /proc, /sys, /etc or /data. */
function bareRootfs(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-bare-'));
  cpSync(join(busyboxRootfs(), 'bin'), join(dir, 'bin'), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(dir, 'srv'));
  writeFileSync(join(dir, 'srv', 'keep'), 'original\n');
  writeFileSync(join(dir, 'srv', 'gone'), 'to be removed\n');
  mkdirSync(join(dir, 'tmp'), { mode: 0o1777 });
  return dir;
}

describe('containers: diff() without berth\'s own mount points', { skip }, () => {
  let f: Fixture;
  let rootfs: string;
  let bindSource: string;
  before(async () => {
    f = await openFixture();
    rootfs = bareRootfs();
    bindSource = mkdtempSync(join(tmpdir(), 'berth-diff-bind-'));
  });
  after(async () => {
    await f.cleanup();
    rmSync(rootfs, { recursive: true, force: true });
    rmSync(bindSource, { recursive: true, force: true });
  });

  test('an image without /dev, /proc, /sys, /etc; volume, bind and tmpfs mounts: only the container\'s own changes', async () => {
    const script = [
      'echo changed > /srv/keep',
      'rm /srv/gone',
      'touch /tmp/new',
      'mkdir -p /made/deeper && touch /made/deeper/f',
      'mkdir /empty-by-choice',
      'echo in-volume > /data/vol/file', // goes to the volume, not the container's layer
      'echo in-tmpfs > /scratch/file',
      'test -e /proc/self/status && test -e /dev/null && test -d /sys/kernel',
    ].join(' && ');
    const c = await f.rt.containers.create({
      image: { rootfs },
      cmd: ['sh', '-c', script],
      mounts: [
        { type: 'volume', target: '/data/vol' },
        { type: 'tmpfs', target: '/scratch' },
        { type: 'bind', source: bindSource, target: '/opt/src/inner' },
      ],
    });
    try {
      await c.start();
      assert.equal((await c.wait()).exitCode, 0);
      // What `docker diff` prints for these actions (its init layer hides the mount points).
      const docker = ['C /srv', 'C /srv/keep', 'D /srv/gone', 'C /tmp', 'A /tmp/new', 'A /made', 'A /made/deeper', 'A /made/deeper/f', 'A /empty-by-choice'];
      assert.deepEqual((await c.diff()).map((x) => `${x.kind} ${x.path}`).sort(), docker.sort());
    } finally {
      await c.remove({ force: true, volumes: true });
    }
  });

  test('a container that writes beside a mount point keeps that change (the holding directory stays)', async () => {
    const c = await f.rt.containers.create({ image: { rootfs }, cmd: ['sh', '-c', 'echo mine > /data/own.txt'], mounts: [{ type: 'tmpfs', target: '/data/cache' }] });
    try {
      await c.start();
      assert.equal((await c.wait()).exitCode, 0);
      assert.deepEqual((await c.diff()).map((x) => `${x.kind} ${x.path}`), ['A /data', 'A /data/own.txt']);
    } finally {
      await c.remove({ force: true });
    }
  });

  test('a container that did nothing has no changes', async () => {
    const c = await f.rt.containers.create({ image: { rootfs }, cmd: ['true'], mounts: [{ type: 'volume', target: '/var/lib/app' }] });
    try {
      await c.start();
      assert.equal((await c.wait()).exitCode, 0);
      assert.deepEqual(await c.diff(), []);
    } finally {
      await c.remove({ force: true, volumes: true });
    }
  });
});
