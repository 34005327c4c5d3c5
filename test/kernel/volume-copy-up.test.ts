/**
 * Copy-up from the merged image view into a volume, as root: whiteouts and opaque directories
 * applied across layers; owners, modes (setuid, sticky), times, symlinks (never followed), hard
 * links, device nodes, FIFOs and xattrs kept; overlay's own xattrs dropped; the target resolved
 * through image symlinks inside the image only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fsOps } from '../../lib/image/fs-ops.js';
import { copyUp, copyUpDirectory } from '../../lib/volumes/copy-up.js';
import { MergedView } from '../../lib/image/merged-view.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();

/** xattr helpers through the native ops (Node has none): on `path` via its parent's fd. */
function withParent<T>(path: string, fn: (fd: number, name: string) => T): T {
  const fd = fsOps().fsOpenRoot(dirname(path));
  try {
    return fn(fd, basename(path));
  } finally {
    closeSync(fd);
  }
}

function setXattr(path: string, name: string, value: string): void {
  withParent(path, (fd, base) => fsOps().fsSetXattrAt(fd, base, name, Buffer.from(value)));
}

function xattrs(path: string): Record<string, string> {
  return withParent(path, (fd, base) => Object.fromEntries(fsOps().fsListXattrsAt(fd, base).map(([n, v]) => [n, v.toString()])));
}

describe('copy-up', { skip }, () => {
  let base: string;
  let lower: string;
  let upper: string;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'berth-copyup-'));
    lower = join(base, 'lower');
    upper = join(base, 'upper');
    // Lower layer: /srv/data with a bit of everything, /srv/gone, /srv/opaque/old.
    const d = join(lower, 'srv', 'data');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'owned'), 'owned by app\n');
    chownSync(join(d, 'owned'), 1000, 1001);
    chmodSync(join(d, 'owned'), 0o640);
    writeFileSync(join(d, 'setuid'), '#!/bin/sh\n');
    chmodSync(join(d, 'setuid'), 0o4755);
    chmodSync(join(d, 'sub'), 0o1770);
    chownSync(join(d, 'sub'), 1000, 1000);
    writeFileSync(join(d, 'sub', 'deep'), 'deep\n');
    linkSync(join(d, 'sub', 'deep'), join(d, 'hardlink'));
    symlinkSync('/etc/shadow', join(d, 'abs-link'));
    symlinkSync('sub/deep', join(d, 'rel-link'));
    execFileSync('mkfifo', [join(d, 'fifo')]);
    execFileSync('mknod', [join(d, 'null'), 'c', '1', '3']);
    writeFileSync(join(d, 'whited'), 'hidden by the upper layer\n');
    setXattr(join(d, 'owned'), 'user.berth.test', 'kept');
    setXattr(join(d, 'owned'), 'trusted.overlay.origin', 'must-not-leak');
    utimesSync(join(d, 'owned'), 1_000_000_000, 1_000_000_000);
    chownSync(d, 1000, 1000);
    chmodSync(d, 0o750);
    mkdirSync(join(lower, 'srv', 'opaque'), { recursive: true });
    writeFileSync(join(lower, 'srv', 'opaque', 'old'), 'old\n');
    symlinkSync('/srv/data', join(lower, 'srv', 'via-abs'));
    symlinkSync('../../../../srv/data', join(lower, 'srv', 'via-dotdot'));
    // Upper layer: a whiteout for data/whited, a new file, an opaque srv/opaque.
    mkdirSync(join(upper, 'srv', 'data'), { recursive: true });
    execFileSync('mknod', [join(upper, 'srv', 'data', 'whited'), 'c', '0', '0']);
    writeFileSync(join(upper, 'srv', 'data', 'added'), 'from the upper layer\n');
    // The topmost copy of a directory carries its metadata in the merged view.
    chownSync(join(upper, 'srv', 'data'), 1000, 1000);
    chmodSync(join(upper, 'srv', 'data'), 0o750);
    mkdirSync(join(upper, 'srv', 'opaque'), { recursive: true });
    setXattr(join(upper, 'srv', 'opaque'), 'trusted.overlay.opaque', 'y');
    writeFileSync(join(upper, 'srv', 'opaque', 'new'), 'new\n');
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  test('the merged view: topmost wins, whiteouts hide, opaque directories end the merge', () => {
    const tree = MergedView.open([upper, lower]);
    try {
      assert.deepEqual(tree.listDir('srv/data').map((e) => e.name), ['abs-link', 'added', 'fifo', 'hardlink', 'null', 'owned', 'rel-link', 'setuid', 'sub']);
      assert.deepEqual(tree.listDir('srv/opaque').map((e) => e.name), ['new']);
      assert.equal(tree.lookup('srv/data/whited'), undefined);
      assert.equal(tree.lookup('srv/opaque/old'), undefined);
      assert.equal(tree.lookup('srv/data')!.layerIndex, 0);
      assert.equal(copyUpDirectory(tree, '/srv/via-abs'), 'srv/data', 'an absolute link resolves inside the image');
      assert.equal(copyUpDirectory(tree, '/srv/via-dotdot/'), 'srv/data', '.. stops at the image root');
      assert.equal(copyUpDirectory(tree, '/srv/data/owned'), null, 'not a directory');
      assert.equal(copyUpDirectory(tree, '/nowhere'), null);
    } finally {
      tree.close();
    }
  });

  test('copies with owners, modes, times, links, devices and xattrs; never follows a symlink', async () => {
    const vol = join(base, 'vol');
    mkdirSync(vol);
    assert.equal(await copyUp({ layers: [upper, lower] }, '/srv/data', vol), true);
    assert.deepEqual(readdirSync(vol).sort(), ['abs-link', 'added', 'fifo', 'hardlink', 'null', 'owned', 'rel-link', 'setuid', 'sub']);
    const st = statSync(join(vol, 'owned'));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1000, 1001, 0o640]);
    assert.equal(st.mtimeMs, 1_000_000_000_000);
    assert.equal(readFileSync(join(vol, 'owned'), 'utf8'), 'owned by app\n');
    assert.equal(statSync(join(vol, 'setuid')).mode & 0o7777, 0o4755, 'chown before chmod keeps setuid');
    const sub = statSync(join(vol, 'sub'));
    assert.deepEqual([sub.uid, sub.gid, sub.mode & 0o7777], [1000, 1000, 0o1770]);
    assert.equal(readlinkSync(join(vol, 'abs-link')), '/etc/shadow', 'the link itself, not /etc/shadow');
    assert.ok(lstatSync(join(vol, 'abs-link')).isSymbolicLink());
    assert.equal(readlinkSync(join(vol, 'rel-link')), 'sub/deep');
    assert.equal(statSync(join(vol, 'hardlink')).ino, statSync(join(vol, 'sub', 'deep')).ino, 'hard links stay one file');
    assert.ok(lstatSync(join(vol, 'fifo')).isFIFO());
    const dev = lstatSync(join(vol, 'null'));
    assert.ok(dev.isCharacterDevice());
    assert.equal(dev.rdev, statSync('/dev/null').rdev);
    assert.deepEqual(xattrs(join(vol, 'owned')), { 'user.berth.test': 'kept' }, 'overlay xattrs never reach a volume');
    const root = statSync(vol);
    assert.deepEqual([root.uid, root.gid, root.mode & 0o7777], [1000, 1000, 0o750], "the volume root takes the directory's owner and mode");
  });

  test('nothing to copy: a missing path or a file', async () => {
    const vol = join(base, 'vol-empty');
    mkdirSync(vol);
    assert.equal(await copyUp({ layers: [lower] }, '/does/not/exist', vol), false);
    assert.equal(await copyUp({ layers: [lower] }, '/srv/data/owned', vol), false);
    assert.deepEqual(readdirSync(vol), []);
  });
});
