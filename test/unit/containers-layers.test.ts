/**
 * Layer reading for diff/export/commit against fixture directories laid out as overlay
 * leaves them (whiteouts = char 0/0, opaque = trusted.overlay.opaque), read back by berth's
 * own tar reader. Needs root (mknod of whiteouts, trusted xattrs).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffLayers } from '../../lib/containers/diff.js';
import { MergedView } from '../../lib/image/merged-view.js';
import { layerArchive, mergedArchive } from '../../lib/storage/rootfs-archive.js';
import { fsOps } from '../../lib/image/fs-ops.js';
import { readTarEntries } from '../helpers/tar-entries.js';

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (whiteouts are device nodes)';
  try {
    fsOps();
  } catch {
    return 'needs the native addon';
  }
  return false;
}
const skip = skipReason();

describe('layers: merged view, diff, export, commit layer', { skip }, () => {
  const base = mkdtempSync(join(tmpdir(), 'berth-layers-'));
  after(() => rmSync(base, { recursive: true, force: true }));
  const opaque = (dir: string, rel: string) => {
    const fd = fsOps().fsOpenRoot(dir);
    try {
      fsOps().fsSetXattrAt(fd, rel, 'trusted.overlay.opaque', Buffer.from('y'));
    } finally {
      closeSync(fd);
    }
  };
  const whiteout = (path: string) => execFileSync('mknod', [path, 'c', '0', '0']);
  const write = (path: string, text: string) => {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
  };

  // lower1 (bottom): /a/x, /a/y, /b/z, /c, /keep
  // lower0 (top of image): whites out /a/y, makes /b opaque with /b/w, adds /d
  // upper: adds /new, changes /keep, whites out /c, makes /a opaque with /a/fresh, replaces /d
  //        (a file) with a directory, and holds a symlink and a hard link pair
  const lower1 = join(base, 'lower1');
  const lower0 = join(base, 'lower0');
  const upper = join(base, 'upper');
  write(join(lower1, 'a/x'), 'x');
  write(join(lower1, 'a/y'), 'y');
  write(join(lower1, 'b/z'), 'z');
  write(join(lower1, 'c'), 'c');
  write(join(lower1, 'keep'), 'old');
  write(join(lower0, 'b/w'), 'w');
  write(join(lower0, 'd'), 'd-file');
  mkdirSync(join(upper, 'a'), { recursive: true });
  write(join(upper, 'a/fresh'), 'fresh');
  write(join(upper, 'new'), 'new');
  write(join(upper, 'keep'), 'new-content');
  write(join(upper, 'd/inner'), 'inner');
  symlinkSync('/etc/passwd', join(upper, 'evil'));
  linkSync(join(upper, 'new'), join(upper, 'new-hardlink'));
  chmodSync(join(upper, 'new'), 0o640);

  test('fixture', { skip }, () => {
    mkdirSync(join(lower0, 'a'));
    whiteout(join(lower0, 'a', 'y'));
    opaque(lower0, 'b');
    whiteout(join(upper, 'c'));
    opaque(upper, 'a');
    opaque(upper, 'd');
  });

  test('merged lookups honour whiteouts and opaque directories of every layer', { skip }, () => {
    const s = MergedView.open([upper, lower0, lower1]);
    try {
      assert.equal(s.lookup('a/x'), undefined, 'hidden by the opaque /a in upper');
      assert.equal(s.lookup('a/fresh')!.layerIndex, 0);
      assert.equal(s.lookup('b/z'), undefined, 'hidden by the opaque /b in lower0');
      assert.equal(s.lookup('b/w')!.layerIndex, 1);
      assert.equal(s.lookup('c'), undefined, 'whited out in upper');
      assert.equal(s.lookup('keep')!.layerIndex, 0);
      assert.equal(s.lookup('d/inner')!.layerIndex, 0);
      assert.equal(s.lookup('evil')!.layerIndex, 0);
      assert.equal(s.lookup('evil/x'), undefined, 'nothing below a symlink');
      assert.deepEqual(s.listDir('').map((e) => e.path), ['a', 'b', 'd', 'evil', 'keep', 'new', 'new-hardlink']);
    } finally {
      s.close();
    }
  });

  test('diff against the image layers', { skip }, () => {
    assert.deepEqual(diffLayers(upper, [lower0, lower1]), [
      { path: '/a', kind: 'C' },
      { path: '/a/fresh', kind: 'A' },
      { path: '/a/x', kind: 'D' },
      { path: '/c', kind: 'D' },
      { path: '/d', kind: 'C' },
      { path: '/d/inner', kind: 'A' },
      { path: '/evil', kind: 'A' },
      { path: '/keep', kind: 'C' },
      { path: '/new', kind: 'A' },
      { path: '/new-hardlink', kind: 'A' },
    ]);
  });

  test('export of the merged view: deletions applied, the symlink kept as a symlink, hard link once', { skip }, async () => {
    const e = await readTarEntries(mergedArchive([upper, lower0, lower1]));
    const byName = new Map(e.map((x) => [x.name, x]));
    assert.deepEqual([...byName.keys()].sort(), ['a/', 'a/fresh', 'b/', 'b/w', 'd/', 'd/inner', 'evil', 'keep', 'new', 'new-hardlink']);
    assert.equal(byName.get('keep')!.body, 'new-content');
    assert.equal(byName.get('evil')!.type, 'symlink');
    assert.equal(byName.get('evil')!.linkname, '/etc/passwd');
    assert.equal(byName.get('new')!.mode, 0o640);
    assert.equal(byName.get('new-hardlink')!.type, 'link');
    assert.equal(byName.get('new-hardlink')!.linkname, 'new');
    assert.ok(e.every((x) => !x.xattrs.some(([k]) => k.startsWith('trusted.overlay.'))), 'overlay bookkeeping is not exported');
  });

  test('the upper dir as an OCI layer: .wh. files and opaque markers', { skip }, async () => {
    const names = (await readTarEntries(layerArchive(upper))).map((x) => x.name).sort();
    assert.deepEqual(names, ['.wh.c', 'a/', 'a/.wh..wh..opq', 'a/fresh', 'd/', 'd/.wh..wh..opq', 'd/inner', 'evil', 'keep', 'new', 'new-hardlink']);
  });
});
