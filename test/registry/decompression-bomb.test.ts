/**
 * Decompression bombs (issue 10, item 4): a few hundred KiB of zstd or gzip that expand to
 * gigabytes, offered through every door an image comes in by — pull, load (OCI layout and
 * docker-save archives, and a compressed archive as a whole) and import. Each must be refused
 * with LayerTooLargeError once the output passes `maxLayerSize`, Node's peak RSS must not grow
 * with the bomb's output, and the store must be left as it was.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageService } from '../../lib/image/image-service.js';
import { LayerTooLargeError } from '../../lib/image/errors.js';
import { DEFAULT_MAX_LAYER_SIZE } from '../../lib/image/unpack.js';
import { Runtime } from '../../lib/runtime.js';
import { isBerthError } from '../../lib/errors.js';
import { tempDir } from '../helpers/registry.js';
import { publish, sha256, startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { buildTar, fileHeader } from '../helpers/tar-builder.js';

const MiB = 1024 * 1024;
/** The limit the tests pass: far below the bombs' output, so refusing is cheap. */
const LIMIT = 256 * MiB;
/**
 * Peak RSS growth allowed while a bomb is handled. Before the fix one zstd input chunk's
 * whole output was buffered (gigabytes here); after it, memory is a few 128 KiB steps plus
 * the buffers V8 has not collected yet (it lets external memory grow by 64 MiB between
 * collections).
 */
const MAX_GROWTH = 64 * MiB;

const zstdMissing = existsSync('/usr/bin/zstd') ? undefined : 'zstd is not installed (apt-get install zstd)';

let work: { path: string; remove: () => void };
let fake: FakeRegistry;
let zstdBomb: Buffer;
let gzipBomb: Buffer;
/** Uncompressed bytes in each bomb. */
const BOMB_FILE = 4096 * MiB - 512;

function zstd(input: Buffer): Buffer {
  return execFileSync('zstd', ['-q', '-c', '-3'], { input, maxBuffer: 64 * MiB });
}

/**
 * A layer that is one tar entry: a 4 GiB file of zeros. Frames (zstd) and members (gzip) may
 * be concatenated, so a 64 MiB run of zeros is compressed once and repeated.
 */
function makeBombs(): void {
  const header = fileHeader('bomb', BOMB_FILE);
  const zeros = Buffer.alloc(64 * MiB);
  const zFrame = zstd(zeros);
  const gMember = gzipSync(zeros.subarray(0, 16 * MiB), { level: 9 });
  // The first segment holds the header, so it is 512 bytes short of 64 MiB.
  zstdBomb = Buffer.concat([zstd(header), zstd(zeros.subarray(512)), ...Array(63).fill(zFrame)]);
  gzipBomb = Buffer.concat([gzipSync(header), gzipSync(zeros.subarray(512, 16 * MiB)), ...Array(255).fill(gMember)]);
}

before(async () => {
  work = tempDir('berth-bomb-');
  fake = await startFakeRegistry();
  if (!zstdMissing) makeBombs();
});
after(async () => {
  await fake?.stop();
  work?.remove();
});

let n = 0;
const fresh = (options = {}) => new ImageService(join(work.path, `state-${n++}`), options);

function vmKib(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]) * 1024;
}

/** Runs `fn` and returns how far the process's peak RSS rose above its RSS at the start. */
async function peakGrowth(t: TestContext, fn: () => Promise<unknown>): Promise<number> {
  // Writing 5 to clear_refs resets VmHWM (the peak) to the current RSS: the peak afterwards
  // is the peak during `fn`, even a spike between two samples.
  writeFileSync('/proc/self/clear_refs', '5');
  const start = vmKib('VmRSS');
  await fn();
  const growth = vmKib('VmHWM') - start;
  t.diagnostic(`peak RSS growth ${(growth / MiB).toFixed(1)} MiB`);
  return growth;
}

function expectTooLarge(layer: string | RegExp, limit: number) {
  return (e: unknown) => {
    assert.ok(e instanceof LayerTooLargeError, `expected LayerTooLargeError, got ${String(e)}`);
    assert.ok(isBerthError(e));
    assert.equal(e.code, 'ERR_LAYER_TOO_LARGE');
    assert.equal(e.limit, limit);
    if (typeof layer === 'string') assert.equal(e.layer, layer);
    else assert.match(e.layer, layer);
    assert.match(e.message, new RegExp(`${limit} bytes`));
    return true;
  };
}

/** Nothing of a refused image is visible, and nothing is left in tmp/. */
function storeUntouched(svc: ImageService, bombDigest?: string): void {
  assert.deepEqual(readdirSync(svc.store.tmpDir), [], 'tmp/ is clean');
  assert.deepEqual(readdirSync(svc.store.layersDir), [], 'no layer made visible');
  assert.deepEqual(readdirSync(join(svc.store.imagesDir, 'manifests')), [], 'no image record');
  if (bombDigest) assert.ok(!existsSync(svc.store.blobPath(bombDigest)), 'the refused blob is not kept');
}

/** Publishes a one-layer image whose layer is `blob`. */
function publishBomb(repoTag: string, blob: Buffer, mediaType: string): string {
  const config = Buffer.from(JSON.stringify({ architecture: process.arch === 'x64' ? 'amd64' : process.arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(`not checked: the limit comes first ${repoTag}`)] } }));
  fake.blobs.set(sha256(config), config);
  fake.blobs.set(sha256(blob), blob);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType, digest: sha256(blob), size: blob.length }],
  }));
  publish(fake, repoTag, manifest, 'application/vnd.oci.image.manifest.v1+json');
  return sha256(blob);
}

test('the default limit is generous: 64 GiB', () => {
  assert.equal(DEFAULT_MAX_LAYER_SIZE, 64 * 1024 ** 3);
});

test('pull: a zstd bomb is refused at the limit, RSS stays flat, the store stays clean', { skip: zstdMissing }, async (t) => {
  assert.ok(zstdBomb.length < 512 * 1024, `the bomb is small (${zstdBomb.length} bytes)`);
  const digest = publishBomb('bomb/zstd:1', zstdBomb, 'application/vnd.oci.image.layer.v1.tar+zstd');
  const svc = fresh();
  const growth = await peakGrowth(t, () => assert.rejects(svc.pull(`${fake.host}/bomb/zstd:1`, { maxLayerSize: LIMIT }), expectTooLarge(digest, LIMIT)));
  assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  storeUntouched(svc, digest);
});

test('pull: a gzip bomb is refused at the limit, RSS stays flat, the store stays clean', { skip: zstdMissing }, async (t) => {
  assert.ok(gzipBomb.length < 8 * MiB, `the bomb is small (${gzipBomb.length} bytes)`);
  const digest = publishBomb('bomb/gzip:1', gzipBomb, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const svc = fresh();
  const growth = await peakGrowth(t, () => assert.rejects(svc.pull(`${fake.host}/bomb/gzip:1`, { maxLayerSize: LIMIT }), expectTooLarge(digest, LIMIT)));
  assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  storeUntouched(svc, digest);
});

test('pull: the limit set on Runtime.open applies to rt.images.pull', { skip: zstdMissing }, async (t) => {
  const digest = publishBomb('bomb/runtime:1', zstdBomb, 'application/vnd.oci.image.layer.v1.tar+zstd');
  const rt = await Runtime.open({ root: join(work.path, `rt-${n++}`), maxLayerSize: 100 * MiB });
  const growth = await peakGrowth(t, () => assert.rejects(rt.images.pull(`${fake.host}/bomb/runtime:1`), expectTooLarge(digest, 100 * MiB)));
  assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  storeUntouched(rt.images, digest);
});

/** An OCI image layout archive (uncompressed tar) holding one image with `layer` as its layer. */
function ociArchive(layer: Buffer, mediaType: string): Buffer {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('unchecked')] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType, digest: sha256(layer), size: layer.length }],
  }));
  const index = JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': 'localhost/bomb:1' } }] });
  const blob = (b: Buffer) => ({ name: `blobs/sha256/${sha256(b).slice(7)}`, content: b });
  return buildTar([{ name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' }, { name: 'index.json', content: index }, blob(config), blob(manifest), blob(layer)]);
}

test('load: an OCI archive with a zstd bomb layer is refused, RSS flat, store clean', { skip: zstdMissing }, async (t) => {
  const path = join(work.path, 'oci-bomb.tar');
  writeFileSync(path, ociArchive(zstdBomb, 'application/vnd.oci.image.layer.v1.tar+zstd'));
  const svc = fresh();
  const growth = await peakGrowth(t, () => assert.rejects(svc.load(path, { maxLayerSize: LIMIT }), expectTooLarge(sha256(zstdBomb), LIMIT)));
  assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  storeUntouched(svc, sha256(zstdBomb));
});

test('load: a docker-save archive with a gzip bomb layer is refused, store clean', { skip: zstdMissing }, async (t) => {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('unchecked')] } }));
  const path = join(work.path, 'docker-bomb.tar');
  writeFileSync(path, buildTar([
    { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: ['localhost/bomb:2'], Layers: ['layer.tar'] }]) },
    { name: 'config.json', content: config },
    { name: 'layer.tar', content: gzipBomb },
  ]));
  const svc = fresh();
  const growth = await peakGrowth(t, () => assert.rejects(svc.load(path, { maxLayerSize: LIMIT }), expectTooLarge(sha256(gzipBomb), LIMIT)));
  assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  storeUntouched(svc);
});

test('load: a gzip-compressed archive that expands past the limit is refused before it fills the disk', { skip: zstdMissing }, async () => {
  // Eight 64 MiB members of zeros: each under the limit, the archive as a whole over it.
  const zeros = gzipSync(Buffer.alloc(64 * MiB), { level: 9 });
  const parts: Buffer[] = [];
  for (let i = 0; i < 8; i++) parts.push(gzipSync(fileHeader(`junk-${i}`, 64 * MiB)), zeros);
  const path = join(work.path, 'archive-bomb.tar.gz');
  writeFileSync(path, Buffer.concat(parts));
  const svc = fresh();
  await assert.rejects(svc.load(path, { maxLayerSize: LIMIT }), expectTooLarge('image archive', LIMIT));
  storeUntouched(svc);
});

test('load: an archive member declaring more than the limit is refused from its header', async () => {
  const path = join(work.path, 'member-bomb.tar');
  writeFileSync(path, Buffer.concat([fileHeader('blobs/sha256/huge', 8 * 1024 * MiB - 1), Buffer.alloc(512)]));
  const svc = fresh();
  await assert.rejects(svc.load(path, { maxLayerSize: LIMIT }), expectTooLarge(/huge/, LIMIT));
  storeUntouched(svc);
});

test('import: a zstd bomb tarball is refused, RSS flat, store clean', { skip: zstdMissing }, async (t) => {
  const path = join(work.path, 'rootfs-bomb.tar.zst');
  writeFileSync(path, zstdBomb);
  const svc = fresh();
  const growth = await peakGrowth(t, () => assert.rejects(svc.import(path, { ref: 'localhost/bomb:3', maxLayerSize: LIMIT }), expectTooLarge(sha256(zstdBomb), LIMIT)));
  assert.ok(growth < MAX_GROWTH, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  storeUntouched(svc);
});

test('maxLayerSize must be a positive whole number of bytes', async () => {
  const svc = fresh();
  for (const bad of [0, -1, 1.5, '1g', Number.NaN]) {
    await assert.rejects(svc.pull(`${fake.host}/bomb/zstd:1`, { maxLayerSize: bad as number }), (e: unknown) => isBerthError(e) && e.code === 'ERR_INVALID_OPTION' && /maxLayerSize/.test(e.message));
  }
  assert.throws(() => new ImageService(join(work.path, 'bad'), { maxLayerSize: -5 }), /maxLayerSize/);
});
