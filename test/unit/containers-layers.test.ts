/**
 * Layer reading for diff/export/commit against fixture directories laid out as overlay
 * leaves them (whiteouts = char 0/0, opaque = trusted.overlay.opaque), and the tar writer
 * read back by berth's own tar reader. Needs root (mknod of whiteouts, trusted xattrs).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveHeader, archivePadding, archiveTrailer } from '../../lib/containers/archive-writer.js';
import { diffLayers } from '../../lib/containers/diff.js';
import { LayerStack } from '../../lib/containers/layer-view.js';
import { layerArchive, mergedArchive } from '../../lib/containers/rootfs-archive.js';
import { fsOps } from '../../lib/image/fs-ops.js';
import { TarReader, type TarHeader } from '../../lib/image/tar-reader.js';

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

type Entry = TarHeader & { body: string };
async function readTar(chunks: AsyncIterable<Buffer>): Promise<Entry[]> {
  const out: Entry[] = [];
  let body: Buffer[] = [];
  const r = new TarReader({
    entry: (h) => {
      out.push({ ...h, body: '' });
      body = [];
    },
    data: (c) => body.push(Buffer.from(c)),
    entryEnd: () => {
      out[out.length - 1]!.body = Buffer.concat(body).toString();
    },
  });
  for await (const c of chunks) r.write(c);
  r.end();
  return out;
}

describe('tar writer', () => {
  test('every type, long names, long link targets, big ids and xattrs round-trip through the tar reader', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    const veryLong = 'x/'.repeat(200) + 'leaf';
    const parts: Buffer[] = [
      archiveHeader({ name: 'dir', type: 'dir', mode: 0o1777, uid: 1, gid: 2, mtime: 123 }),
      archiveHeader({ name: 'dir/file', type: 'file', mode: 0o4755, uid: 0, gid: 0, mtime: 1, size: 5 }),
      Buffer.from('hello'),
      archivePadding(5),
      archiveHeader({ name: 'sym', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, linkname: `/${'t'.repeat(150)}` }),
      archiveHeader({ name: 'hard', type: 'link', mode: 0o644, uid: 0, gid: 0, mtime: 0, linkname: 'dir/file' }),
      archiveHeader({ name: 'null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 0, devmajor: 1, devminor: 3 }),
      archiveHeader({ name: 'fifo', type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: 0 }),
      archiveHeader({ name: long, type: 'file', mode: 0o600, uid: 3_000_000, gid: 4_000_000, mtime: 0, size: 0, xattrs: [['security.capability', Buffer.from([1, 0, 0, 2])], ['user.note', Buffer.from('a=b\n')]] }),
      archiveHeader({ name: veryLong, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 }),
      archiveHeader({ name: 'ünïcode', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 }),
      archiveTrailer(),
    ];
    const e = await readTar([Buffer.concat(parts)][Symbol.iterator]() as unknown as AsyncIterable<Buffer>);
    assert.deepEqual(e.map((x) => [x.name, x.type]), [
      ['dir/', 'dir'], ['dir/file', 'file'], ['sym', 'symlink'], ['hard', 'link'], ['null', 'char'], ['fifo', 'fifo'], [long, 'file'], [veryLong, 'file'], ['ünïcode', 'file'],
    ]);
    assert.equal(e[0]!.mode, 0o1777);
    assert.equal(e[1]!.body, 'hello');
    assert.equal(e[1]!.mode, 0o4755);
    assert.equal(e[2]!.linkname, `/${'t'.repeat(150)}`);
    assert.equal(e[3]!.linkname, 'dir/file');
    assert.deepEqual([e[4]!.devmajor, e[4]!.devminor], [1, 3]);
    assert.equal(e[6]!.uid, 3_000_000);
    assert.equal(e[6]!.gid, 4_000_000);
    assert.deepEqual(e[6]!.xattrs.map(([k, v]) => [k, [...v]]), [['security.capability', [1, 0, 0, 2]], ['user.note', [...Buffer.from('a=b\n')]]]);
  });
});

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
    const s = LayerStack.open([upper, lower0, lower1]);
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
    const e = await readTar(mergedArchive([upper, lower0, lower1]));
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
    const names = (await readTar(layerArchive(upper))).map((x) => x.name).sort();
    assert.deepEqual(names, ['.wh.c', 'a/', 'a/.wh..wh..opq', 'a/fresh', 'd/', 'd/.wh..wh..opq', 'd/inner', 'evil', 'keep', 'new', 'new-hardlink']);
  });
});
