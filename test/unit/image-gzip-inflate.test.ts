/**
 * lib/image/unpack.ts `decompress()` for gzip layers: ISA-L's inflater (src-native/gzip-napi.cc,
 * when libisal is installed) against Node's zlib, the fallback and the reference. Both must give
 * the same bytes for every shape of input, refuse the same corrupt input as a typed error, and
 * stop a bomb at the layer size limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { gzipSync, gunzipSync } from 'node:zlib';
import { isSystemError } from '../../lib/errors.js';
import { LayerTooLargeError } from '../../lib/image/errors.js';
import { decompress } from '../../lib/image/unpack.js';
import { native } from '../../lib/native.js';
import { NativeFake } from '../helpers/native-fake.js';

const haveIsal = existsSync('/usr/lib/x86_64-linux-gnu/libisal.so.2') || existsSync('/usr/lib/aarch64-linux-gnu/libisal.so.2');
const zlibOnly = new NativeFake({ delegate: native() }).stub('gzipCreate', () => null);

async function inflate(input: Buffer, via: 'isal' | 'zlib', { pieces = 3, limit }: { pieces?: number; limit?: number } = {}): Promise<Buffer> {
  // Fed in uneven pieces, so that headers, blocks and trailers straddle chunk boundaries.
  const chunks: Buffer[] = [];
  const step = Math.max(1, Math.ceil(input.length / pieces));
  for (let i = 0, k = 0; i < input.length; k++) {
    const n = Math.max(1, step - (k % 7));
    chunks.push(input.subarray(i, i + n));
    i += n;
  }
  const out: Buffer[] = [];
  const fs = via === 'zlib' ? () => zlibOnly.binding : native;
  for await (const c of decompress(chunks, 'gzip', { layer: 'sha256:t', ...(limit ? { limit } : {}) }, fs)) out.push(c);
  return Buffer.concat(out);
}

test('ISA-L is used where installed', { skip: haveIsal ? false : 'libisal2 not installed' }, () => {
  const h = native().gzipCreate();
  assert.notEqual(h, null);
  native().gzipInflate(h!, gzipSync(Buffer.from('x')), 0);
  native().gzipEnd(h!);
});

for (const via of ['isal', 'zlib'] as const) {
  test(`${via}: the same bytes as zlib's gunzip, for every shape of input`, { skip: via === 'isal' && !haveIsal ? 'libisal2 not installed' : false }, async () => {
    const text = Buffer.from('a layer of text, '.repeat(200_000));
    const shapes: Array<[string, Buffer]> = [
      ['empty content', gzipSync(Buffer.alloc(0))],
      ['text, many output steps from little input', gzipSync(text)],
      ['random (stored blocks)', gzipSync(randomBytes(3_000_000), { level: 1 })],
      ['zeros (a 1000:1 ratio)', gzipSync(Buffer.alloc(5_000_000))],
      ['two members', Buffer.concat([gzipSync(text.subarray(0, 1000)), gzipSync(randomBytes(100_000))])],
      ['a member then zero padding', Buffer.concat([gzipSync(text.subarray(0, 5000)), Buffer.alloc(1024)])],
    ];
    for (const [what, gz] of shapes) {
      for (const pieces of [1, 5, 200]) assert.ok((await inflate(gz, via, { pieces })).equals(gunzipSync(gz)), `${what}, ${pieces} pieces`);
    }
  });

  test(`${via}: corrupt, truncated and foreign input is refused; a bomb stops at the limit`, { skip: via === 'isal' && !haveIsal ? 'libisal2 not installed' : false }, async () => {
    const gz = gzipSync(randomBytes(200_000));
    const crc = Buffer.from(gz);
    crc[crc.length - 6]! ^= 0xff; // the CRC-32 of the trailer
    const len = Buffer.from(gz);
    len[len.length - 2]! ^= 0x01; // the length of the trailer
    const body = Buffer.from(gz);
    body[1000]! ^= 0x55; // inside a stored block: only the CRC can tell
    const bad: Array<[string, Buffer]> = [
      ['a wrong CRC-32', crc],
      ['a wrong length', len],
      ['a flipped content byte', body],
      ['truncated inside the member', gz.subarray(0, gz.length - 100)],
      ['truncated inside the trailer', gz.subarray(0, gz.length - 3)],
      ['not gzip', Buffer.from('not gzip at all, a plain text')],
      ['empty input', Buffer.alloc(0)],
      ['garbage after a member', Buffer.concat([gzipSync(Buffer.from('x')), Buffer.from('garbage')])],
    ];
    for (const [what, input] of bad) {
      await assert.rejects(inflate(input, via), (e: unknown) => {
        if (via === 'isal') assert.ok(isSystemError(e) && e.syscall === 'gzip', `${what}: ${String(e)}`);
        else assert.ok(/^Z_/.test((e as { code?: string }).code ?? ''), `${what}: ${String(e)}`);
        return true;
      }, what);
    }
    const bomb = gzipSync(Buffer.alloc(50 << 20));
    await assert.rejects(inflate(bomb, via, { limit: 1 << 20 }), LayerTooLargeError);
  });
}
