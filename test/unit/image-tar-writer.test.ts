import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tarHeader, tarPadding, tarTrailer } from '../../lib/image/tar-writer.js';
import { TarReader, type TarHeader } from '../../lib/image/tar-reader.js';

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
