import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, lstatSync, readFileSync, readlinkSync, existsSync, mkdirSync, closeSync, writeFileSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { LayerApplier, applyLayer, cleanEntryName, type UnpackMode } from '../../lib/image/unpack.js';
import { fsOps } from '../../lib/image/fs-ops.js';
import { UnsafeLayerEntryError, DigestMismatchError, LayerFormatError } from '../../lib/image/errors.js';
import { isBerthError } from '../../lib/errors.js';
import { buildTar, type TarEntrySpec } from '../helpers/tar-builder.js';
import { describeTree, diffTrees } from '../helpers/tree-compare.js';
import { newFdsSince, openFds } from '../helpers/leaks.js';

let work: string;
before(() => { work = mkdtempSync(join(tmpdir(), 'berth-unpack-')); });
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
function freshDir(): string {
  const d = join(work, `d${n++}`);
  mkdirSync(d);
  return d;
}

async function apply(dir: string, tar: Buffer, { mode = 'layer' as UnpackMode, lowers = [] as string[], layer = 'sha256:test', compression = 'none' as 'none' | 'gzip' | 'zstd', diffId = undefined as string | undefined, privateRoot = false, parallel = 0 } = {}) {
  const fs = fsOps();
  // A private root (what pull uses for its temp layer dirs) lets the native side reuse the
  // parent directory it resolved last; `parallel` writes small files on worker threads.
  const root = fs.fsOpenRoot(dir, { private: privateRoot || parallel > 0 });
  const lowerFds = lowers.map((l) => fs.fsOpenRoot(l));
  try {
    const applier = new LayerApplier(root, mode, layer, fs, { parallel });
    const result = await applyLayer([tar], applier, { layer, compression, ...(diffId ? { diffId } : {}) });
    applier.resolveAgainstLowers(lowerFds);
    applier.finish();
    return result;
  } finally {
    if (privateRoot || parallel > 0) fs.fsCloseRoot(root);
    else closeSync(root);
    for (const fd of lowerFds) closeSync(fd);
  }
}

function getfattr(path: string, name: string): string | null {
  const fs = fsOps();
  const root = fs.fsOpenRoot(dirname(path));
  try {
    const found = fs.fsListXattrsAt(root, basename(path)).find(([n]) => n === name);
    return found ? found[1].toString() : null;
  } finally {
    closeSync(root);
  }
}

test('cleanEntryName', () => {
  assert.equal(cleanEntryName('./a//b/./c/'), 'a/b/c');
  assert.equal(cleanEntryName('./'), '');
  assert.equal(cleanEntryName('/'), '', 'umoci names the layer root "/"');
  assert.throws(() => cleanEntryName('/etc/passwd'), /absolute/);
  assert.throws(() => cleanEntryName('//etc'), /absolute/);
  assert.throws(() => cleanEntryName('a/../../b'), /"\.\."/);
  assert.throws(() => cleanEntryName('a\0b'), /NUL/);
});

test('layer mode: every entry type with owner, mode, mtime and xattrs', async () => {
  const dir = freshDir();
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  const tar = buildTar([
    { name: './', type: 'dir', mode: 0o755 },
    { name: 'bin/', type: 'dir', mode: 0o755, mtime: 1600000000 },
    { name: 'bin/busybox', content: 'ELF', mode: 0o4755, uid: 0, gid: 0, mtime: 1600000001 },
    { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
    { name: 'bin/ping', content: 'ping', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': cap } },
    { name: 'home/user/', type: 'dir', mode: 0o2750, uid: 1000, gid: 1000 },
    { name: 'home/user/f', content: 'x', uid: 1000, gid: 100, mode: 0o600, pax: { 'SCHILY.xattr.user.note': 'hi' } },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
    { name: 'etc/abs', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'etc/rel', type: 'symlink', linkname: '../bin/busybox' },
    { name: 'etc/dangling', type: 'symlink', linkname: 'nowhere/at/all' },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/loop0', type: 'block', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
    { name: 'run/fifo', type: 'fifo', mode: 0o620 },
    { name: 'x'.repeat(50) + '/' + 'y'.repeat(120), content: 'long' },
    { name: 'evil-xattr', content: '', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } },
  ]);
  const { diffId, size } = await apply(dir, tar, { diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}` });
  assert.equal(size, tar.length);
  assert.match(diffId, /^sha256:/);
  const st = (p: string) => lstatSync(join(dir, p));
  assert.equal(st('bin/busybox').mode & 0o7777, 0o4755);
  assert.equal(st('bin/busybox').mtimeMs, 1600000001000);
  assert.equal(st('bin').mtimeMs, 1600000000000, 'directory mtime survives its children');
  assert.equal(st('bin/sh').ino, st('bin/busybox').ino);
  assert.equal(st('bin/busybox').nlink, 2);
  assert.equal(getfattr(join(dir, 'bin/ping'), 'security.capability') !== null, true, 'capability kept (set after content)');
  assert.equal(st('home/user').mode & 0o7777, 0o2750);
  assert.equal(st('home/user').uid, 1000);
  assert.equal(st('home/user/f').gid, 100);
  assert.equal(getfattr(join(dir, 'home/user/f'), 'user.note'), 'hi');
  assert.equal(st('tmp').mode & 0o7777, 0o1777);
  assert.equal(readlinkSync(join(dir, 'etc/abs')), '/etc/passwd');
  assert.equal(readlinkSync(join(dir, 'etc/rel')), '../bin/busybox');
  assert.equal(readlinkSync(join(dir, 'etc/dangling')), 'nowhere/at/all');
  assert.ok(st('dev/null').isCharacterDevice());
  assert.equal(st('dev/null').rdev, (1 << 8) | 3);
  assert.ok(st('dev/loop0').isBlockDevice());
  assert.equal(st('dev/loop0').gid, 6);
  assert.ok(st('run/fifo').isFIFO());
  assert.equal(st('run/fifo').mode & 0o777, 0o620);
  assert.equal(readFileSync(join(dir, 'x'.repeat(50), 'y'.repeat(120)), 'utf8'), 'long');
  assert.equal(getfattr(join(dir, 'evil-xattr'), 'trusted.overlay.redirect'), null, 'overlay xattrs from a layer are dropped');
});

test('layer mode: whiteouts and opaque directories in overlay format', async () => {
  const dir = freshDir();
  await apply(dir, buildTar([
    { name: 'etc/', type: 'dir' },
    { name: 'etc/.wh.motd', content: '' },
    { name: 'var/cache/', type: 'dir', mode: 0o700 },
    { name: 'var/cache/.wh..wh..opq', content: '' },
    { name: 'var/cache/new', content: 'n' },
    { name: 'gone/deep/.wh.file', content: '' },
    { name: '.wh..wh..plnk/123', content: '' },
  ]));
  const wh = lstatSync(join(dir, 'etc/motd'));
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.equal(getfattr(join(dir, 'var/cache'), 'trusted.overlay.opaque'), 'y');
  assert.equal(lstatSync(join(dir, 'var/cache')).mode & 0o777, 0o700);
  assert.ok(lstatSync(join(dir, 'gone/deep/file')).isCharacterDevice());
});

test('layer mode: a hard link to a lower layer\'s file is copied up', async () => {
  const lower = freshDir();
  await apply(lower, buildTar([
    { name: 'usr/', type: 'dir', mode: 0o711, uid: 5 },
    { name: 'usr/bin/', type: 'dir' },
    { name: 'usr/bin/tool', content: 'tool-bytes', mode: 0o4711, uid: 3, pax: { 'SCHILY.xattr.user.a': 'b' } },
  ]));
  const upper = freshDir();
  await apply(upper, buildTar([{ name: 'alias', type: 'link', linkname: 'usr/bin/tool' }]), { lowers: [lower] });
  const a = lstatSync(join(upper, 'alias'));
  const t = lstatSync(join(upper, 'usr/bin/tool'));
  assert.equal(a.ino, t.ino);
  assert.equal(readFileSync(join(upper, 'alias'), 'utf8'), 'tool-bytes');
  assert.equal(t.mode & 0o7777, 0o4711);
  assert.equal(t.uid, 3);
  assert.equal(getfattr(join(upper, 'usr/bin/tool'), 'user.a'), 'b');
  assert.equal(lstatSync(join(upper, 'usr')).mode & 0o7777, 0o711, 'implicit parent takes the lower directory\'s metadata');
  assert.equal(lstatSync(join(upper, 'usr')).uid, 5);
});

test('flatten mode: deletions, opaque dirs and type changes across layers', async () => {
  const dir = freshDir();
  await apply(dir, buildTar([
    { name: 'a/', type: 'dir' }, { name: 'a/keep', content: '1' }, { name: 'a/del', content: '2' },
    { name: 'o/', type: 'dir' }, { name: 'o/old', content: '3' }, { name: 'o/sub/', type: 'dir' },
    { name: 'f2d', content: 'file' }, { name: 'd2f/', type: 'dir' }, { name: 'd2f/child', content: 'c' },
  ]), { mode: 'flatten' });
  await apply(dir, buildTar([
    { name: 'a/.wh.del', content: '' },
    { name: 'o/', type: 'dir' }, { name: 'o/new', content: '4' }, { name: 'o/.wh..wh..opq', content: '' },
    { name: 'f2d/', type: 'dir' }, { name: 'f2d/x', content: 'x' },
    { name: 'd2f', content: 'now a file' },
    { name: 'nothing/.wh.here', content: '' },
  ]), { mode: 'flatten' });
  assert.ok(existsSync(join(dir, 'a/keep')));
  assert.ok(!existsSync(join(dir, 'a/del')));
  assert.deepEqual(readdirSync(join(dir, 'o')).sort(), ['new']);
  assert.ok(lstatSync(join(dir, 'f2d')).isDirectory());
  assert.equal(readFileSync(join(dir, 'd2f'), 'utf8'), 'now a file');
  assert.ok(!existsSync(join(dir, 'nothing')));
});

test('gzip layers and diff id verification', async () => {
  const tar = buildTar([{ name: 'f', content: 'gz' }]);
  const dir = freshDir();
  await apply(dir, gzipSync(tar), { compression: 'gzip' });
  assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'gz');
  await assert.rejects(apply(freshDir(), tar, { diffId: 'sha256:' + '0'.repeat(64) }), (e: unknown) => e instanceof DigestMismatchError && e.code === 'ERR_DIGEST_MISMATCH');
  await assert.rejects(apply(freshDir(), gzipSync(tar).subarray(0, 30), { compression: 'gzip' }), (e: unknown) => isBerthError(e) && (e instanceof LayerFormatError));
  await assert.rejects(apply(freshDir(), Buffer.from('not gzip at all'), { compression: 'gzip' }), LayerFormatError);
});

const escapes: Array<[string, TarEntrySpec[], string]> = [
  ['dot-dot', [{ name: '../escape', content: 'x' }], '../escape'],
  ['nested dot-dot', [{ name: 'a/../../escape', content: 'x' }], 'a/../../escape'],
  ['absolute name', [{ name: '/tmp/escape', content: 'x' }], '/tmp/escape'],
  ['symlinked parent (absolute)', [{ name: 'evil', type: 'symlink', linkname: '/OUTSIDE' }, { name: 'evil/escape', content: 'x' }], 'evil/escape'],
  ['symlinked parent (relative)', [{ name: 'evil', type: 'symlink', linkname: '../../../../../../OUTSIDE' }, { name: 'evil/escape', content: 'x' }], 'evil/escape'],
  ['symlinked grandparent', [{ name: 'd/', type: 'dir' }, { name: 'd/evil', type: 'symlink', linkname: '/' }, { name: 'd/evil/OUTSIDE/escape', type: 'dir' }], 'd/evil/OUTSIDE/escape'],
  ['hard link to outside (dot-dot)', [{ name: 'h', type: 'link', linkname: '../../../../etc/passwd' }], 'h'],
  ['hard link to absolute path', [{ name: 'h', type: 'link', linkname: '/etc/passwd' }], 'h'],
  ['hard link through a symlink', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'h', type: 'link', linkname: 'etc/passwd' }], 'h'],
  ['whiteout of dot-dot', [{ name: 'a/.wh...', content: '' }], 'a/.wh...'],
  ['whiteout through a symlinked parent', [{ name: 'evil', type: 'symlink', linkname: '/OUTSIDE' }, { name: 'evil/.wh.escape', content: '' }], 'evil/.wh.escape'],
  ['opaque through a symlinked parent', [{ name: 'evil', type: 'symlink', linkname: '/OUTSIDE' }, { name: 'evil/.wh..wh..opq', content: '' }], 'evil/.wh..wh..opq'],
  ['GNU long name with dot-dot', [{ name: 'x/'.repeat(60) + '../'.repeat(70) + 'escape', gnuLongName: true, content: 'x' }], 'x/'.repeat(60) + '../'.repeat(70) + 'escape'],
  // A directory already used as a parent, then replaced by a symlink: a cached parent fd must
  // not survive the replacement.
  ['a used directory replaced by a symlink', [{ name: 'd/', type: 'dir' }, { name: 'd/x', content: 'x' }, { name: 'd', type: 'symlink', linkname: '/OUTSIDE' }, { name: 'd/escape', content: 'x' }], 'd/escape'],
];

for (const [what, entries, entry] of escapes) {
  for (const variant of ['layer', 'flatten', 'layer, private root', 'layer, parallel'] as const) {
    const mode = variant === 'flatten' ? 'flatten' : 'layer';
    test(`refuses ${what} (${variant})`, async () => {
      const outside = join(work, 'OUTSIDE');
      mkdirSync(outside, { recursive: true });
      writeFileSync(join(outside, 'escape'), 'original');
      const dir = join(freshDir(), 'root');
      mkdirSync(dir);
      await assert.rejects(apply(dir, buildTar(entries), { mode, layer: 'sha256:' + 'e'.repeat(64), privateRoot: variant === 'layer, private root', parallel: variant === 'layer, parallel' ? 4 : 0 }), (e: unknown) => {
        assert.ok(e instanceof UnsafeLayerEntryError, `${String(e)}`);
        assert.equal(e.code, 'ERR_UNSAFE_LAYER_ENTRY');
        assert.equal(e.entry, entry);
        assert.equal(e.layer, 'sha256:' + 'e'.repeat(64));
        assert.ok(e.message.includes(JSON.stringify(entry)));
        return true;
      });
      assert.equal(readFileSync(join(outside, 'escape'), 'utf8'), 'original');
      assert.deepEqual(readdirSync(outside), ['escape']);
      assert.ok(!existsSync('/OUTSIDE'));
      assert.ok(!existsSync(join(work, 'escape')));
    });
  }
}

test('zstd layers through libzstd: whole, multi-frame, truncated, garbage', { skip: existsSync('/usr/bin/zstd') ? false : 'zstd CLI not installed' }, async () => {
  const { execFileSync } = await import('node:child_process');
  const tar = buildTar([{ name: 'z', content: 'zstd!'.repeat(100_000) }]);
  const z = execFileSync('/usr/bin/zstd', ['-q', '-c'], { input: tar });
  const dir = freshDir();
  await apply(dir, z, { compression: 'zstd' });
  assert.equal(readFileSync(join(dir, 'z'), 'utf8').length, 500_000);
  // Two frames back to back are one stream (as zstd -d reads them).
  const half = tar.length / 2;
  const twoFrames = Buffer.concat([execFileSync('/usr/bin/zstd', ['-q', '-c'], { input: tar.subarray(0, half) }), execFileSync('/usr/bin/zstd', ['-q', '-c'], { input: tar.subarray(half) })]);
  await apply(freshDir(), twoFrames, { compression: 'zstd' });
  await assert.rejects(apply(freshDir(), z.subarray(0, z.length - 10), { compression: 'zstd' }), (e: unknown) => e instanceof LayerFormatError && /decompression failed|truncated/.test(e.message));
  await assert.rejects(apply(freshDir(), Buffer.from('definitely not zstd'), { compression: 'zstd' }), LayerFormatError);
});

test('native errors carry code, errno, syscall and path (EPERM is not mistaken for success)', () => {
  const dir = freshDir();
  mkdirSync(join(dir, 'd'));
  const fs = fsOps();
  const root = fs.fsOpenRoot(dir);
  try {
    assert.throws(() => fs.fsMakeEntry(root, { path: 'hl', kind: 'link', target: 'd' }), (e: unknown) => {
      const err = e as { code: string; errno: number; syscall: string; path: string };
      assert.equal(err.code, 'EPERM');
      assert.equal(err.errno, 1);
      assert.equal(err.syscall, 'linkat');
      assert.equal(err.path, 'hl -> d');
      return true;
    });
    assert.throws(() => fs.fsMakeEntry(root, { path: '../x', kind: 'file' }), (e: unknown) => (e as { code: string }).code === 'EINVAL');
    assert.throws(() => fs.fsLstatAt(root, 'd/../..'), (e: unknown) => (e as { code: string }).code === 'EINVAL');
    assert.equal(fs.fsLstatAt(root, 'missing/deeper'), null);
    assert.equal(fs.fsRemoveAt(root, 'missing'), false);
  } finally {
    closeSync(root);
  }
});

test('private root: cached parent directories never outlive a replacement', async () => {
  // dir -> file -> dir again, twice, with writes in between: every write must land in the
  // directory that is there now, not in one a cached fd still points to.
  const entries: TarEntrySpec[] = [
    { name: 'a/', type: 'dir' },
    { name: 'a/old', content: 'old' },
    { name: 'a', content: 'now a file' },
    { name: 'a/', type: 'dir' },
    { name: 'a/new', content: 'new' },
    { name: 'b/', type: 'dir' },
    { name: 'b/c/', type: 'dir' },
    { name: 'b/c/1', content: '1' },
    { name: 'b/c', type: 'symlink', linkname: 'elsewhere' },
    { name: 'b/c', type: 'dir' },
    { name: 'b/c/2', content: '2' },
    { name: 'b/c/.wh.2', content: '' },
  ];
  const results: string[] = [];
  for (const privateRoot of [false, true]) {
    const dir = freshDir();
    await apply(dir, buildTar(entries), { privateRoot });
    assert.deepEqual(readdirSync(join(dir, 'a')), ['new']);
    assert.equal(readFileSync(join(dir, 'a/new'), 'utf8'), 'new');
    assert.ok(lstatSync(join(dir, 'b/c')).isDirectory());
    assert.deepEqual(readdirSync(join(dir, 'b/c')), ['2']);
    assert.ok(lstatSync(join(dir, 'b/c/2')).isCharacterDevice(), 'the whiteout replaced the file');
    results.push(JSON.stringify([...readdirSync(dir)].sort()));
  }
  assert.equal(results[0], results[1]);
  // Many private roots at once (as a pull of many layers opens), closed again: no fd is left.
  const fs = fsOps();
  const before = openFds();
  const roots = Array.from({ length: 80 }, () => fs.fsOpenRoot(freshDir(), { private: true }));
  for (const r of roots) fs.fsMakeEntry(r, { path: 'x', kind: 'dir', mode: 0o755 });
  for (const r of roots) fs.fsMakeEntry(r, { path: 'x/y', kind: 'dir', mode: 0o755 });
  for (const r of roots) fs.fsCloseRoot(r);
  assert.deepEqual(newFdsSince(before), [], 'cached parent fds are closed with their root');
});

test('parallel writing gives the same tree as writing in order, for every kind of entry and reordering hazard', async () => {
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  const entries: TarEntrySpec[] = [
    { name: 'bin/', type: 'dir', mode: 0o755, mtime: 1600000000 },
    { name: 'bin/busybox', content: 'ELF'.repeat(1000), mode: 0o4755, mtime: 1600000001 },
    { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' }, // a hard link to a queued file
    { name: 'bin/ping', content: 'ping', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': cap } },
    { name: 'home/user/', type: 'dir', mode: 0o2750, uid: 1000, gid: 1000 },
    { name: 'home/user/f', content: 'x', uid: 1000, gid: 100, mode: 0o600, pax: { 'SCHILY.xattr.user.note': 'hi' } },
    { name: 'dup', content: 'first' },
    { name: 'dup', content: 'second, longer' }, // the same path twice: the last one wins
    { name: 'f2d', content: 'a file' },
    { name: 'f2d/', type: 'dir' }, // a queued file replaced by a directory
    { name: 'f2d/inside', content: 'in' },
    { name: 'd2f/', type: 'dir' },
    { name: 'd2f/child', content: 'c' },
    { name: 'd2f', content: 'now a file' }, // a directory with a queued child replaced by a file
    { name: 'big', content: Buffer.alloc(1_500_000, 7) }, // too big to queue whole: streamed to a worker piece by piece
    // Streamed with every kind of metadata (setuid after the chown, an xattr, an owner), then a
    // hard link to it (waits for its end), and a streamed file replaced in order.
    { name: 'bin/bigsuid', content: Buffer.from(Array.from({ length: 3_000_001 }, (_, i) => (i * 31) & 0xff)), mode: 0o4755, uid: 1000, gid: 1000, mtime: 1600000003, pax: { 'SCHILY.xattr.user.note': 'big' } },
    { name: 'bin/biglink', type: 'link', linkname: 'bin/bigsuid' },
    { name: 'big2', content: Buffer.alloc(2_000_000, 9) },
    { name: 'big2', content: 'small now' },
    { name: 'small3', content: Buffer.alloc(1_048_576, 3) }, // exactly the whole-file limit
    { name: 'etc/.wh.gone', content: '' },
    { name: 'etc/conf', content: 'conf', mtime: 1600000002 },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'x'.repeat(50) + '/' + 'y'.repeat(120), content: 'long' },
    ...Array.from({ length: 300 }, (_, i): TarEntrySpec => ({ name: `many/d${i % 7}/f${i}`, content: `file ${i}`, mode: 0o640, mtime: 1600000000 + i })),
  ];
  const tar = buildTar(entries);
  const inOrder = freshDir();
  await apply(inOrder, tar);
  const parallel = freshDir();
  await apply(parallel, tar, { parallel: 4 });
  assert.deepEqual(diffTrees(describeTree(parallel, { mtimes: true }), describeTree(inOrder, { mtimes: true }), ['parallel', 'in order']), []);
  assert.equal(readFileSync(join(parallel, 'dup'), 'utf8'), 'second, longer');
  assert.equal(lstatSync(join(parallel, 'bin/sh')).ino, lstatSync(join(parallel, 'bin/busybox')).ino);
  assert.ok(lstatSync(join(parallel, 'd2f')).isFile());
  assert.equal(lstatSync(join(parallel, 'bin')).mtimeMs, 1600000000000, 'directory mtimes after every queued child');
  assert.ok(readFileSync(join(parallel, 'bin/bigsuid')).equals(entries.find((e) => e.name === 'bin/bigsuid')!.content as Buffer), 'streamed content intact');
  assert.equal(lstatSync(join(parallel, 'bin/bigsuid')).mode & 0o7777, 0o4755);
  assert.equal(lstatSync(join(parallel, 'bin/biglink')).ino, lstatSync(join(parallel, 'bin/bigsuid')).ino);
  assert.equal(readFileSync(join(parallel, 'big2'), 'utf8'), 'small now');
});

test('parallel writing: a failure on a worker names its entry; a queued file as a parent is refused', async () => {
  // An xattr name the file system refuses fails inside the worker that writes the file.
  await assert.rejects(apply(freshDir(), buildTar([{ name: 'ok', content: 'x' }, { name: 'bad', content: 'y', pax: { 'SCHILY.xattr.nonsense.name': 'v' } }]), { parallel: 2 }), (e: unknown) => {
    assert.ok(isBerthError(e), String(e));
    assert.match((e as Error).message, /entry "bad"/);
    assert.equal((e as { syscall?: string }).syscall, 'fsetxattr');
    return true;
  });
  await assert.rejects(apply(freshDir(), buildTar([{ name: 'a', content: 'a file' }, { name: 'a/b', content: 'under a file' }]), { parallel: 2 }), (e: unknown) => e instanceof LayerFormatError && /parent "a" is not a directory/.test(e.message));
  // The same for a streamed file: its metadata is applied by the worker at its end.
  await assert.rejects(apply(freshDir(), buildTar([{ name: 'bigbad', content: Buffer.alloc(2_500_000, 1), pax: { 'SCHILY.xattr.nonsense.name': 'v' } }, { name: 'after', content: 'x' }]), { parallel: 2 }), (e: unknown) => {
    assert.match((e as Error).message, /entry "bigbad"/);
    assert.equal((e as { syscall?: string }).syscall, 'fsetxattr');
    return true;
  });
  // A layer cut off in the middle of a streamed file: refused, and the worker's open file is
  // closed with the pool.
  const fdsBeforeCut = openFds();
  const whole = buildTar([{ name: 'cut', content: Buffer.alloc(3_000_000, 2) }]);
  await assert.rejects(apply(freshDir(), whole.subarray(0, 2_000_000), { parallel: 2 }), (e: unknown) => e instanceof LayerFormatError);
  assert.deepEqual(newFdsSince(fdsBeforeCut), [], 'the streamed file is closed when the layer fails');
  // Threads stop with the applier: no fd or thread is left behind.
  const before = openFds();
  const threads = () => readdirSync('/proc/self/task').length;
  const t0 = threads();
  await apply(freshDir(), buildTar(Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, content: 'x' }))), { parallel: 4 });
  assert.deepEqual(newFdsSince(before), []);
  // The thread pool of libuv may have started meanwhile (the apply above used it already).
  assert.ok(threads() <= t0, 'the write pool\'s threads are gone');
});

/** Applies `layers` in flatten mode to `dir` with one applier, as `images.unpack()` does. */
async function flatten(dir: string, layers: Buffer[], { parallel = 0, privateRoot = false, between = undefined as ((i: number) => void) | undefined } = {}): Promise<void> {
  const fs = fsOps();
  const root = fs.fsOpenRoot(dir, { private: privateRoot });
  try {
    const applier = new LayerApplier(root, 'flatten', 'sha256:l0', fs, { parallel, devices: false });
    for (const [i, tar] of layers.entries()) {
      between?.(i);
      applier.nextLayer(`sha256:l${i}`);
      await applyLayer([tar], applier, { layer: `sha256:l${i}`, compression: 'none' });
    }
    applier.finish();
  } finally {
    fs.fsCloseRoot(root);
  }
}

test('flatten mode, parallel (a non-private root): the same tree as in order, across layers that delete and replace', async () => {
  const many = (prefix: string, count: number, mtime0: number): TarEntrySpec[] =>
    Array.from({ length: count }, (_, i) => ({ name: `${prefix}/f${i}`, content: `${prefix} ${i}`, mode: 0o640, mtime: mtime0 + i }));
  const layers = [
    buildTar([
      { name: 'bin/', type: 'dir', mode: 0o755, mtime: 1600000000 },
      { name: 'bin/busybox', content: 'ELF'.repeat(1000), mode: 0o4755 },
      { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
      ...many('keep', 120, 1600000000),
      ...many('gone', 50, 1600000000),
      ...many('opq', 40, 1600000000),
      { name: 'implicit/child', content: 'its parent is made by the applier' },
      { name: 'todev', content: 'a file a device replaces' },
      { name: 'big', content: Buffer.alloc(1_500_000, 3) },
    ]),
    buildTar([
      { name: 'gone/.wh.f3', content: '' },
      { name: 'keep/f5', content: 'replaced in the next layer' }, // a path an earlier layer made
      { name: 'opq/', type: 'dir' }, { name: 'opq/.wh..wh..opq', content: '' }, { name: 'opq/new', content: 'after opaque' },
      { name: 'implicit', content: 'an implicit directory (with queued children) becomes a file' },
      { name: 'todev', type: 'char', devmajor: 1, devminor: 3 }, // skipped, but it removes the file
      ...many('fresh', 80, 1600001000),
    ]),
    buildTar([
      { name: '.wh.gone', content: '' },
      { name: 'keep/f5/', type: 'dir' }, { name: 'keep/f5/now-a-dir', content: 'x' },
      { name: 'fresh/f1', type: 'link', linkname: 'keep/f7' },
      ...many('fresh/sub', 30, 1600002000),
    ]),
  ];
  const inOrder = freshDir();
  await flatten(inOrder, layers);
  const parallel = freshDir();
  await flatten(parallel, layers, { parallel: 4 });
  assert.deepEqual(diffTrees(describeTree(parallel, { mtimes: true }), describeTree(inOrder, { mtimes: true }), ['parallel', 'in order']), []);
  assert.ok(!existsSync(join(parallel, 'gone')));
  assert.deepEqual(readdirSync(join(parallel, 'opq')), ['new']);
  assert.ok(lstatSync(join(parallel, 'implicit')).isFile());
  assert.ok(!existsSync(join(parallel, 'todev')));
  assert.ok(lstatSync(join(parallel, 'keep/f5')).isDirectory());
  assert.equal(lstatSync(join(parallel, 'fresh/f1')).ino, lstatSync(join(parallel, 'keep/f7')).ino);
});

// Attack: `unpack()` writes into a user's directory, which another process may change while
// the worker threads write. A directory the workers have written into is moved out of the
// root between two layers (a concurrent writer's rename); the next layer's file below that
// directory must not follow it out. Worker threads that kept the directory's fd from the first
// layer (as they do for the store's private temp dirs) write it outside.
test('flatten mode, parallel: a directory moved out of the root between layers is not written through', async () => {
  const dir = freshDir();
  const outside = join(work, `outside-${n++}`);
  const first = buildTar(Array.from({ length: 50 }, (_, i) => ({ name: `d/f${i}`, content: `f${i}` })));
  const second = buildTar([{ name: 'd/escaped', content: 'must not leave the root' }]);
  const error = await flatten(dir, [first, second], { parallel: 1, between: (i) => { if (i === 1) renameSync(join(dir, 'd'), outside); } }).then(() => undefined, (e: unknown) => e);
  assert.ok(!existsSync(join(outside, 'escaped')), 'a worker wrote through a directory that had left the root');
  // The file lands in a directory made again inside the root, or the layer fails (its parent
  // is gone); either is fine, writing outside is not.
  if (error === undefined) assert.equal(readFileSync(join(dir, 'd/escaped'), 'utf8'), 'must not leave the root');
  else assert.ok(isBerthError(error), String(error));
});

// The pool creates files with their permission bits and skips a chown or chmod that would
// change nothing; each owner/mode case below takes another branch of that (owner kept or
// changed, bits the umask strips, setuid/setgid/sticky that only a chmod after the chown sets,
// a capability that a chown would clear), in both roots' modes.
test('parallel writing: owners, modes and capabilities exact whichever metadata calls are skipped', async () => {
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  const cases: Array<{ name: string; uid: number; gid: number; mode: number; cap?: boolean }> = [
    { name: 'root-644', uid: 0, gid: 0, mode: 0o644 },
    { name: 'root-666', uid: 0, gid: 0, mode: 0o666 }, // the umask (022) strips group/other write at creation
    { name: 'root-000', uid: 0, gid: 0, mode: 0o000 },
    { name: 'root-4755', uid: 0, gid: 0, mode: 0o4755 },
    { name: 'root-2755-gid', uid: 0, gid: 50, mode: 0o2755 },
    { name: 'user-4750', uid: 1000, gid: 1000, mode: 0o4750 },
    { name: 'user-1777', uid: 1000, gid: 0, mode: 0o1777 },
    { name: 'root-cap', uid: 0, gid: 0, mode: 0o755, cap: true },
    { name: 'user-cap', uid: 1000, gid: 1000, mode: 0o750, cap: true },
  ];
  const tar = buildTar(cases.map((c): TarEntrySpec => ({ name: c.name, content: `content of ${c.name}`, uid: c.uid, gid: c.gid, mode: c.mode, ...(c.cap ? { pax: { 'SCHILY.xattr.security.capability': cap } } : {}) })));
  for (const privateRoot of [true, false]) {
    const dir = freshDir();
    await apply(dir, tar, { parallel: 2, privateRoot, mode: privateRoot ? 'layer' : 'flatten' });
    for (const c of cases) {
      const st = lstatSync(join(dir, c.name));
      assert.equal(st.mode & 0o7777, c.mode, `${c.name} mode (private root ${privateRoot})`);
      assert.deepEqual([st.uid, st.gid], [c.uid, c.gid], `${c.name} owner`);
      assert.equal(readFileSync(join(dir, c.name), 'utf8'), `content of ${c.name}`);
      if (c.cap) assert.equal(getfattr(join(dir, c.name), 'security.capability'), cap.toString(), `${c.name} capability`);
    }
  }
});
