import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TarReader, TarFormatError, type TarHeader } from '../../lib/image/tar-reader.js';
import { buildTar } from '../helpers/tar-builder.js';

function parse(buf: Buffer, chunk = 7): Array<TarHeader & { body: string }> {
  const out: Array<TarHeader & { body: string }> = [];
  let body: Buffer[] = [];
  const reader = new TarReader({
    entry: (h) => { out.push({ ...h, body: '' }); body = []; },
    data: (c) => body.push(Buffer.from(c)),
    entryEnd: () => { out[out.length - 1]!.body = Buffer.concat(body).toString(); },
  });
  // Odd chunk sizes: every header and body boundary is split somewhere.
  for (let i = 0; i < buf.length; i += chunk) reader.write(buf.subarray(i, i + chunk));
  reader.end();
  return out;
}

test('ustar entries of every type, in odd-sized chunks', () => {
  const tar = buildTar([
    { name: 'dir/', type: 'dir', mode: 0o1777, uid: 1, gid: 2, mtime: 123 },
    { name: 'dir/file', content: 'hello', mode: 0o4755 },
    { name: 'dir/empty', content: '' },
    { name: 'dir/hard', type: 'link', linkname: 'dir/file' },
    { name: 'dir/sym', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 },
    { name: 'fifo', type: 'fifo' },
  ]);
  for (const chunk of [1, 7, 512, 100000]) {
    const e = parse(tar, chunk);
    assert.deepEqual(e.map((x) => [x.name, x.type]), [
      ['dir/', 'dir'], ['dir/file', 'file'], ['dir/empty', 'file'], ['dir/hard', 'link'], ['dir/sym', 'symlink'], ['dev/null', 'char'], ['dev/sda', 'block'], ['fifo', 'fifo'],
    ]);
    assert.equal(e[0]!.mode, 0o1777);
    assert.equal(e[0]!.uid, 1);
    assert.equal(e[0]!.gid, 2);
    assert.equal(e[0]!.mtime, 123);
    assert.equal(e[1]!.body, 'hello');
    assert.equal(e[1]!.mode, 0o4755);
    assert.equal(e[3]!.linkname, 'dir/file');
    assert.equal(e[4]!.linkname, '/etc/passwd');
    assert.deepEqual([e[5]!.devmajor, e[5]!.devminor], [1, 3]);
  }
});

test('PAX path, linkpath, size-independent fields and SCHILY xattrs (binary values)', () => {
  const long = 'a/'.repeat(80) + 'file.txt';
  const cap = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const tar = buildTar([
    { name: long, content: 'x'.repeat(1000), pax: { 'SCHILY.xattr.security.capability': cap, 'SCHILY.xattr.user.k': 'v', uid: '70000', mtime: '1700000000.25' } },
    { name: 'l', type: 'symlink', linkname: 'b/'.repeat(70) },
  ]);
  const [a, b] = parse(tar, 13);
  assert.equal(a!.name, long);
  assert.equal(a!.body.length, 1000);
  assert.equal(a!.uid, 70000);
  assert.equal(a!.mtime, 1700000000.25);
  assert.deepEqual(a!.xattrs.map(([n]) => n), ['security.capability', 'user.k']);
  assert.ok(a!.xattrs[0]![1].equals(cap));
  assert.equal(b!.linkname, 'b/'.repeat(70));
  assert.deepEqual(b!.xattrs, [], 'PAX records apply to one entry only');
});

test('GNU long names', () => {
  const long = 'd/'.repeat(100) + 'x';
  const [e] = parse(buildTar([{ name: long, gnuLongName: true, content: 'z' }]));
  assert.equal(e!.name, long);
  assert.equal(e!.body, 'z');
});

test('prefix field of ustar names', () => {
  const tar = buildTar([{ name: 'short', content: 'q' }]);
  tar.write('some/prefix', 345, 'utf8');
  // Recompute the checksum after editing the header.
  tar.write('        ', 148, 'ascii');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tar[i]!;
  tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  assert.equal(parse(tar)[0]!.name, 'some/prefix/short');
});

test('malformed archives are TarFormatErrors', () => {
  const good = buildTar([{ name: 'f', content: 'hello world' }]);
  const badSum = Buffer.from(good);
  badSum[0] = 0x41;
  assert.throws(() => parse(badSum), (e: unknown) => e instanceof TarFormatError && /checksum/.test(e.message));
  assert.throws(() => parse(good.subarray(0, 512 + 5)), (e: unknown) => e instanceof TarFormatError && /truncated/.test(e.message));
  assert.throws(() => parse(buildTar([{ name: 's', type: 'raw', flag: 'S', content: 'x' }])), (e: unknown) => e instanceof TarFormatError && /sparse/.test(e.message));
  const huge = buildTar([{ name: 'x', type: 'raw', flag: 'x', content: Buffer.alloc(2 * 1024 * 1024, 0x41) }]);
  assert.throws(() => parse(huge, 65536), (e: unknown) => e instanceof TarFormatError && /larger than/.test(e.message));
  const badPax = buildTar([{ name: 'x', type: 'raw', flag: 'x', content: '99 path=x\n' }, { name: 'y', content: '' }]);
  assert.throws(() => parse(badPax), (e: unknown) => e instanceof TarFormatError && /PAX/.test(e.message));
  // A stream that ends exactly at a block boundary without the end marker is accepted (GNU tar does too).
  assert.equal(parse(buildTar([{ name: 'f', content: 'abc' }], { end: false })).length, 1);
});

test('base-256 numbers', () => {
  const tar = buildTar([{ name: 'big', content: 'x', uid: 0 }]);
  // uid field in GNU base-256: 0x80 marker then big-endian value.
  tar.fill(0, 108, 116);
  tar[108] = 0x80;
  tar.writeUInt32BE(3000000000, 112);
  tar.write('        ', 148, 'ascii');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tar[i]!;
  tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  assert.equal(parse(tar)[0]!.uid, 3000000000);
});

test('a last entry without its block padding or end marker is complete (umoci writes these)', () => {
  const full = buildTar([{ name: 'hello.txt', content: 'hi\n' }]);
  const cut = full.subarray(0, 512 + 3); // header + the 3 content bytes, nothing after
  const e = parse(cut);
  assert.deepEqual(e.map((x) => [x.name, x.body]), [['hello.txt', 'hi\n']]);
  // One byte less and the entry itself is incomplete: still refused.
  assert.throws(() => parse(full.subarray(0, 512 + 2)), (err: unknown) => err instanceof TarFormatError && /truncated/.test(err.message));
});
