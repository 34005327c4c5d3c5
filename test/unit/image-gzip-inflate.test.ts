/**
 * lib/image/unpack.ts `decompress()` for gzip layers: ISA-L's inflater (src-native/gzip-napi.cc,
 * when libisal is installed) against Node's zlib, the fallback and the reference. Both must give
 * the same bytes for every shape of input, refuse the same corrupt input as a typed error, and
 * stop a bomb at the layer size limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { gzipSync, gunzipSync } from 'node:zlib';
import { isSystemError } from '../../lib/errors.js';
import { LayerTooLargeError } from '../../lib/image/errors.js';
import { decompress, type OutputDigest } from '../../lib/image/unpack.js';
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

test('isal: a step on the pool owns its stream until it settles', { skip: haveIsal ? false : 'libisal2 not installed' }, async () => {
  const n = native();
  const text = Buffer.from('a layer of text, '.repeat(400_000));
  const gz = gzipSync(text);
  const h = n.gzipCreate()!;
  const first = n.gzipInflateAsync(h, gz, 0);
  // A second step, a synchronous one or the end while the first runs would race the worker.
  assert.throws(() => n.gzipInflateAsync(h, gz, 0), (e: unknown) => e instanceof TypeError && /still running/.test(e.message));
  assert.throws(() => n.gzipInflate(h, gz, 0), (e: unknown) => e instanceof TypeError && /still running/.test(e.message));
  assert.throws(() => n.gzipEnd(h), (e: unknown) => e instanceof TypeError && /still running/.test(e.message));
  const out: Buffer[] = [];
  let step = await first;
  for (;;) {
    out.push(step.output);
    assert.ok(step.output.length <= 512 * 1024, `one step gave ${step.output.length} bytes`);
    if (step.offset >= gz.length && !step.more) break;
    step = await n.gzipInflateAsync(h, gz, step.offset);
  }
  n.gzipEnd(h);
  assert.ok(Buffer.concat(out).equals(text));
  assert.throws(() => n.gzipInflateAsync(h, gz, 0), TypeError, 'an ended stream takes no step');
  assert.throws(() => n.gzipInflateAsync(n.gzipCreate()!, gz, gz.length + 1), /offset out of range/);
});

test('isal: a consumer may stop early, and a failure of the step ahead comes after the good output', { skip: haveIsal ? false : 'libisal2 not installed' }, async () => {
  const text = Buffer.from('some text that compresses, '.repeat(300_000));
  const gz = gzipSync(text);
  let got = 0;
  for await (const c of decompress([gz], 'gzip', { layer: 'sha256:t' }, native)) {
    got += c.length;
    break;
  }
  assert.ok(got > 0 && got <= 512 * 1024);
  // A corrupt trailer: every byte of content is yielded (in order) before the refusal.
  const bad = Buffer.from(gz);
  bad[bad.length - 6]! ^= 0xff;
  const out: Buffer[] = [];
  await assert.rejects(async () => {
    for await (const c of decompress([bad.subarray(0, 1000), bad.subarray(1000)], 'gzip', { layer: 'sha256:t' }, native)) out.push(c);
  }, (e: unknown) => isSystemError(e) && e.syscall === 'gzip' && e.code === 'EINVAL');
  assert.ok(Buffer.concat(out).equals(text.subarray(0, Buffer.concat(out).length)), 'what came before the failure is the content, in order');
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

test('isal: the sha256 the decoder takes of its output is that of the bytes it yielded', { skip: haveIsal ? false : 'libisal2 not installed' }, async () => {
  const content = Buffer.concat([randomBytes(700_000), Buffer.from('text '.repeat(300_000))]);
  const gz = Buffer.concat([gzipSync(content.subarray(0, 100)), gzipSync(content.subarray(100))]);
  for (const pieces of [[gz], [gz.subarray(0, 7), gz.subarray(7, 50_000), gz.subarray(50_000)]]) {
    const digest: OutputDigest = { native: false };
    const h = createHash('sha256');
    for await (const c of decompress(pieces, 'gzip', { layer: 'sha256:t', outputDigest: digest }, native)) {
      assert.equal(digest.native, true, 'set before the first chunk');
      h.update(c);
    }
    assert.equal(digest.sha256, h.digest('hex'));
    assert.equal(digest.sha256, createHash('sha256').update(content).digest('hex'));
  }
  // Through Node's zlib the caller hashes: the decoder says so.
  const digest: OutputDigest = { native: false };
  for await (const c of decompress([gz], 'gzip', { outputDigest: digest }, () => zlibOnly.binding)) void c;
  assert.equal(digest.native, false);
  assert.equal(digest.sha256, undefined);
  assert.throws(() => native().gzipCreate({ digest: 'yes' } as never), TypeError);
});
