import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tarHeader, tarPadding, tarTrailer } from '../../lib/image/tar-writer.js';
import { TarReader, type TarHeader } from '../../lib/image/tar-reader.js';
import { readTarEntries } from '../helpers/tar-entries.js';

function archive(members: Array<{ name: string; type: 'file' | 'dir'; content?: Buffer }>): Buffer {
  const out: Buffer[] = [];
  for (const m of members) {
    out.push(tarHeader({ name: m.name, type: m.type, size: m.content?.length ?? 0 }));
    if (m.content) out.push(m.content, tarPadding(m.content.length));
  }
  out.push(tarTrailer());
  return Buffer.concat(out);
}

const longName = `blobs/${'x'.repeat(120)}/file`;
const members = [
  { name: 'blobs/', type: 'dir' as const },
  { name: 'blobs/sha256/', type: 'dir' as const },
  { name: 'blobs/sha256/abc', type: 'file' as const, content: Buffer.from('hello\n') },
  { name: 'empty', type: 'file' as const, content: Buffer.alloc(0) },
  { name: 'aligned', type: 'file' as const, content: Buffer.alloc(1024, 1) },
  { name: longName, type: 'file' as const, content: Buffer.from('long\n') },
  { name: 'ünïcode.json', type: 'file' as const, content: Buffer.from('{}') },
];

test('GNU tar reads what the writer writes: names (long, non-ASCII), types, contents, mtime 0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-tarw-'));
  try {
    const file = join(dir, 'a.tar');
    writeFileSync(file, archive(members));
    const listing = execFileSync('tar', ['--utc', '-tvf', file], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(listing.map((l) => l.slice(l.indexOf('1970-01-01 00:00 ') + 17)), members.map((m) => m.name));
    assert.ok(listing.every((l) => l.includes('1970-01-01 00:00')), 'mtime 0: the same images give the same bytes');
    assert.match(listing[0]!, /^drwxr-xr-x/);
    assert.match(listing[2]!, /^-rw-r--r--/);
    execFileSync('tar', ['-xf', file, '-C', dir]);
    for (const m of members) if (m.content) assert.ok(readFileSync(join(dir, m.name)).equals(m.content), m.name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('our reader reads it back, including a PAX size above 8 GiB', () => {
  const seen: TarHeader[] = [];
  const data: Buffer[] = [];
  const reader = new TarReader({ entry: (h) => seen.push(h), data: (c) => data.push(Buffer.from(c)), entryEnd: () => {} });
  reader.write(archive(members));
  reader.end();
  assert.deepEqual(seen.map((h) => [h.name, h.type, h.size]), members.map((m) => [m.name, m.type, m.content?.length ?? 0]));
  assert.equal(Buffer.concat(data).length, members.reduce((a, m) => a + (m.content?.length ?? 0), 0));

  const huge = 2 ** 33 + 7;
  const headers: TarHeader[] = [];
  const r2 = new TarReader({ entry: (h) => headers.push(h), data: () => {}, entryEnd: () => {} });
  r2.write(tarHeader({ name: 'huge', type: 'file', size: huge }));
  assert.equal(headers[0]?.size, huge);
  assert.throws(() => tarHeader({ name: 'bad', type: 'file', size: -1 }), RangeError);
  assert.equal(tarPadding(512).length, 0);
  assert.equal(tarPadding(1).length, 511);
});

test('every type, long names, long link targets, big ids and xattrs round-trip through the tar reader', async () => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
  const veryLong = 'x/'.repeat(200) + 'leaf';
  const parts: Buffer[] = [
    tarHeader({ name: 'dir', type: 'dir', mode: 0o1777, uid: 1, gid: 2, mtime: 123 }),
    tarHeader({ name: 'dir/file', type: 'file', mode: 0o4755, uid: 0, gid: 0, mtime: 1, size: 5 }),
    Buffer.from('hello'),
    tarPadding(5),
    tarHeader({ name: 'sym', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, linkname: `/${'t'.repeat(150)}` }),
    tarHeader({ name: 'hard', type: 'link', mode: 0o644, uid: 0, gid: 0, mtime: 0, linkname: 'dir/file' }),
    tarHeader({ name: 'null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 0, devmajor: 1, devminor: 3 }),
    tarHeader({ name: 'fifo', type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: 0 }),
    tarHeader({ name: long, type: 'file', mode: 0o600, uid: 3_000_000, gid: 4_000_000, mtime: 0, size: 0, xattrs: [['security.capability', Buffer.from([1, 0, 0, 2])], ['user.note', Buffer.from('a=b\n')]] }),
    tarHeader({ name: veryLong, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 }),
    tarHeader({ name: 'ünïcode', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 }),
    tarTrailer(),
  ];
  const e = await readTarEntries(Buffer.concat(parts));
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
