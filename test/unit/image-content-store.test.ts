import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore, type BlobSource } from '../../lib/image/content-store.js';
import { DigestMismatchError, SizeMismatchError } from '../../lib/image/errors.js';
import { AbortError } from '../../lib/errors.js';
import { isSystemError } from '../../lib/errors.js';
import { native } from '../../lib/native.js';
import { NativeFake } from '../helpers/native-fake.js';

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'berth-store-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function store(fake?: NativeFake): Promise<ContentStore> {
  const s = new ContentStore(join(dir, `s${n++}`), fake ? { native: fake.binding } : {});
  await s.init();
  return s;
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Serves `data` from an offset, optionally failing after `failAfter` bytes once. */
function source(data: Buffer, { failAfter, ignoreRange = false }: { failAfter?: number; ignoreRange?: boolean } = {}): BlobSource & { offsets: number[] } {
  const offsets: number[] = [];
  let failed = false;
  return {
    offsets,
    async open(offset) {
      offsets.push(offset);
      const start = ignoreRange ? 0 : offset;
      async function* body() {
        for (let i = start; i < data.length; i += 1000) {
          if (failAfter !== undefined && !failed && i >= failAfter) {
            failed = true;
            throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
          }
          yield data.subarray(i, Math.min(i + 1000, data.length));
        }
      }
      return { body: body(), offset: start };
    },
  };
}

const retryable = (e: unknown) => (e as { code?: string }).code === 'ECONNRESET';

test('putBlob verifies and is idempotent', async () => {
  const s = await store();
  const b = Buffer.from('hello');
  assert.equal(await s.putBlob(b, { digest: digestOf(b), size: 5 }), digestOf(b));
  assert.equal(await s.putBlob(b), digestOf(b));
  assert.ok((await s.readBlob(digestOf(b))).equals(b));
  await assert.rejects(s.putBlob(b, { digest: digestOf(Buffer.from('x')) }), DigestMismatchError);
  await assert.rejects(s.putBlob(b, { digest: digestOf(b), size: 6 }), SizeMismatchError);
  assert.deepEqual(readdirSync(s.tmpDir), []);
});

test('ingest: every byte delivered once, in order, resumed after a reset', async () => {
  const s = await store();
  const data = Buffer.alloc(10_500);
  for (let i = 0; i < data.length; i++) data[i] = i % 256;
  const src = source(data, { failAfter: 4000 });
  const seen: Buffer[] = [];
  const r = await s.ingest({ digest: digestOf(data), size: data.length }, { source: src, onData: (c) => void seen.push(Buffer.from(c)), isRetryable: retryable });
  assert.equal(r, 'fetched');
  assert.deepEqual(src.offsets, [0, 4000]);
  assert.ok(Buffer.concat(seen).equals(data));
  assert.equal(await s.ingest({ digest: digestOf(data), size: data.length }, { source: src }), 'cached');
});

test('ingest: a server that ignores Range is handled by skipping', async () => {
  const s = await store();
  const data = Buffer.alloc(5000, 9);
  data[4999] = 1;
  const src = source(data, { failAfter: 2000, ignoreRange: true });
  const seen: Buffer[] = [];
  await s.ingest({ digest: digestOf(data), size: data.length }, { source: src, onData: (c) => void seen.push(Buffer.from(c)), isRetryable: retryable });
  assert.ok(Buffer.concat(seen).equals(data));
});

test('ingest: a partial file from an earlier run is re-delivered, then resumed', async () => {
  const s = await store();
  const data = Buffer.from('0123456789'.repeat(500));
  const digest = digestOf(data);
  writeFileSync(join(s.tmpDir, `blob-${digest.slice(7)}.partial`), data.subarray(0, 1234));
  const src = source(data);
  const seen: Buffer[] = [];
  await s.ingest({ digest, size: data.length }, { source: src, onData: (c) => void seen.push(Buffer.from(c)) });
  assert.deepEqual(src.offsets, [1234]);
  assert.ok(Buffer.concat(seen).equals(data));
  assert.deepEqual(readdirSync(s.tmpDir), []);
});

test('ingest: wrong digest, too long, too short', async () => {
  const s = await store();
  const data = Buffer.from('content');
  await assert.rejects(s.ingest({ digest: digestOf(Buffer.from('other')), size: data.length }, { source: source(data) }), DigestMismatchError);
  await assert.rejects(s.ingest({ digest: digestOf(data), size: 3 }, { source: source(data) }), SizeMismatchError);
  await assert.rejects(s.ingest({ digest: digestOf(data), size: 100 }, { source: source(data), retries: 1 }), SizeMismatchError);
  assert.deepEqual(readdirSync(s.tmpDir), []);
  assert.deepEqual(await s.listBlobs(), []);
});

test('locks: exclusive waits, shared coexists, abort while waiting', async () => {
  const s = await store();
  const a = await s.lock('x');
  let got = false;
  const waiting = s.lock('x').then((l) => {
    got = true;
    return l;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(got, false);
  a.release();
  (await waiting).release();
  assert.equal(got, true);
  const s1 = await s.lock('gc', { mode: 'shared' });
  const s2 = await s.lock('gc', { mode: 'shared' });
  const ac = new AbortController();
  const ex = s.lock('gc', { signal: ac.signal });
  setTimeout(() => ac.abort(), 30);
  await assert.rejects(ex, AbortError);
  s1.release();
  s2.release();
  (await s.lock('gc')).release();
});

test('commitLayer: visible only when complete; a second commit of the same layer is dropped', async () => {
  const s = await store();
  const chainId = `sha256:${'c'.repeat(64)}`;
  const t1 = await s.layerTempDir(chainId);
  writeFileSync(join(t1, 'f'), 'one');
  assert.equal(await s.hasLayer(chainId), false);
  await s.commitLayer(t1, { chainId, diffId: chainId, size: 3 });
  assert.equal(await s.hasLayer(chainId), true);
  const t2 = await s.layerTempDir(chainId);
  writeFileSync(join(t2, 'f'), 'two');
  await s.commitLayer(t2, { chainId, diffId: chainId, size: 3 });
  assert.ok(!existsSync(t2));
  assert.deepEqual((await s.layerMeta(chainId))?.size, 3);
  await s.removeLayer(chainId);
  assert.equal(await s.hasLayer(chainId), false);
  assert.deepEqual(readdirSync(s.tmpDir), []);
});

test('cleanTmp removes what dead processes left, keeps blob partials', async () => {
  const s = await store();
  const deadPid = 2 ** 22 + 12345; // above pid_max's default: never alive
  writeFileSync(join(s.tmpDir, `w-${deadPid}-abc`), 'x');
  writeFileSync(join(s.tmpDir, `layer-abcdef-${deadPid}-x`), 'x');
  writeFileSync(join(s.tmpDir, `stage-${deadPid}-x`), 'x');
  writeFileSync(join(s.tmpDir, `layer-abcdef-${process.pid}-y`), 'x');
  writeFileSync(join(s.tmpDir, `blob-${'a'.repeat(64)}.partial`), 'x');
  await s.cleanTmp();
  assert.deepEqual(readdirSync(s.tmpDir).sort(), [`blob-${'a'.repeat(64)}.partial`, `layer-abcdef-${process.pid}-y`].sort());
});

test('durable: concurrent callers share syncfs calls; later callers wait for a later call', async () => {
  const fake = new NativeFake({ delegate: native() });
  const calls: Array<() => void> = [];
  // Hold each syncfs until the test lets it go, to see who waits for which call.
  fake.stub('fsSyncAsync', (fd: number) => native().fsSyncAsync(fd).then(() => new Promise<void>((r) => calls.push(r))));
  const started = () => fake.callsOf('fsSyncAsync').length;
  const s = await store(fake);
  const settle = () => new Promise((r) => setTimeout(r, 50));
  const order: string[] = [];
  const first = s.durable().then(() => order.push('first'));
  await settle();
  assert.equal(started(), 1);
  // Ten callers arrive while the first call runs: they share one more call, not ten.
  const later = Array.from({ length: 10 }, (_, i) => s.durable().then(() => order.push(`later${i}`)));
  await settle();
  assert.equal(started(), 1, 'nobody starts a second syncfs while one runs');
  calls.shift()!();
  await first;
  await settle();
  assert.equal(started(), 2);
  assert.deepEqual(order, ['first'], 'the later callers wait for the call that started after them');
  calls.shift()!();
  await Promise.all(later);
  assert.equal(order.length, 11);
  assert.equal(started(), 2);
  // Idle again: the next caller starts its own call at once.
  const alone = s.durable();
  await settle();
  assert.equal(started(), 3);
  calls.shift()!();
  await alone;
});

test('durable: a failing syncfs rejects its callers with the SystemError and does not wedge the next one', async () => {
  const fake = new NativeFake({ delegate: native() }).fail('fsSyncAsync', 'EIO', { syscall: 'syncfs' });
  const s = await store(fake);
  await assert.rejects(s.durable(), (e: unknown) => isSystemError(e) && e.code === 'EIO' && e.syscall === 'syncfs');
  await s.durable();
  assert.deepEqual(fake.callsOf('fsSyncAsync').map((c) => c.failed), ['EIO', undefined]);
  // The real call, on a real file system: an fd that is not open is EBADF from the native side.
  await assert.rejects(native().fsSyncAsync(987654), (e: unknown) => isSystemError(e) && e.code === 'EBADF');
});

test('tryLock, commitBlobFile, stagingDir', async () => {
  const s = await store();
  const a = s.tryLock('x');
  assert.ok(a);
  assert.equal(s.tryLock('x'), undefined, 'held (flock is per open file description)');
  a.release();
  const b = s.tryLock('x');
  assert.ok(b);
  b.release();
  const stage = await s.stagingDir();
  assert.match(stage, new RegExp(`/stage-${process.pid}-`));
  const data = Buffer.from('staged blob');
  writeFileSync(join(stage, 'f'), data);
  await s.commitBlobFile(join(stage, 'f'), digestOf(data));
  assert.ok(await s.hasBlob(digestOf(data)));
  assert.ok(!existsSync(join(stage, 'f')));
  writeFileSync(join(stage, 'g'), data);
  await s.commitBlobFile(join(stage, 'g'), digestOf(data));
  assert.ok(!existsSync(join(stage, 'g')), 'already there: the copy is dropped');
  assert.deepEqual((await s.listPartials()), []);
  writeFileSync(join(s.tmpDir, `blob-${'b'.repeat(64)}.partial`), 'p');
  assert.deepEqual((await s.listPartials()).map((p) => p.hex), ['b'.repeat(64)]);
});
