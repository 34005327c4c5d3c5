/**
 * The pull pipeline with several layers in flight at once, against a real registry: layers
 * that finish out of order still resolve against their lower layers (hard-link copy-up,
 * whiteouts, implicit directories) exactly as one at a time; a layer that fails verification
 * while others are downloading and unpacking leaves nothing visible and nothing in tmp/; an
 * abort while layers are in flight does the same and the next pull succeeds.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageService } from '../../lib/image/image-service.js';
import { DigestMismatchError } from '../../lib/image/errors.js';
import { NotFoundError, isBerthError } from '../../lib/errors.js';
import { registryToolsMissing, run, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { buildTar, type TarEntrySpec } from '../helpers/tar-builder.js';
import { describeTree, diffTrees } from '../helpers/tree-compare.js';

const skip = registryToolsMissing();

let registry: TestRegistry;
let work: { path: string; remove: () => void };

/**
 * Six layers whose base is the largest (so the layers above it finish downloading first):
 * a hard link to a base file (copy-up), whiteouts of base files, files under directories only
 * the base lists (implicit parents), an opaque directory. Random content: every call makes
 * blobs of its own, so tampering with one image's blob in the registry touches no other.
 */
function layers(): TarEntrySpec[][] {
  const small = (dir: string, n: number): TarEntrySpec[] => Array.from({ length: n }, (_, i) => ({ name: `${dir}/f${i}`, content: randomBytes(200 + i), mode: 0o640, mtime: 1600000000 + i }));
  return [
    [
      { name: 'base/', type: 'dir', mode: 0o750, uid: 7, gid: 7, mtime: 1500000000 },
      { name: 'base/big', content: randomBytes(3 << 20) },
      { name: 'base/linked', content: 'shared inode', mode: 0o600 },
      { name: 'base/gone', content: 'deleted above' },
      { name: 'cache/', type: 'dir' }, { name: 'cache/old', content: 'hidden by an opaque dir above' },
      ...small('base/many', 150),
    ],
    [{ name: 'base/link2', type: 'link', linkname: 'base/linked' }, { name: 'base/.wh.gone', content: '' }],
    [{ name: 'cache/', type: 'dir' }, { name: 'cache/.wh..wh..opq', content: '' }, { name: 'cache/new', content: 'fresh' }],
    small('upper', 200),
    [{ name: 'base/many/sub/deep', content: 'under directories only the base lists' }, { name: 'upper/.wh.f3', content: '' }],
    [{ name: 'top', content: randomBytes(100_000) }],
  ];
}

/** Pushes `entries` as one image (a layer per element) to `repo`; returns the layout and layer digests. */
async function pushLayers(name: string, entries: TarEntrySpec[][], repo: string): Promise<{ layout: string; layerDigests: string[] }> {
  const layout = join(work.path, `layout-${name}`);
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:t`]);
  for (const [i, layer] of entries.entries()) {
    const tarPath = join(work.path, `${name}-${i}.tar`);
    writeFileSync(tarPath, buildTar(layer));
    await run('umoci', ['raw', 'add-layer', '--image', `${layout}:t`, tarPath]);
  }
  await skopeoPush(layout, 't', registry, repo);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  return { layout, layerDigests: manifest.layers.map((l: { digest: string }) => l.digest) };
}

before(async () => {
  if (skip) return;
  work = tempDir('berth-pipeline-');
  registry = await startRegistry();
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

let n = 0;
const fresh = () => new ImageService(join(work.path, `state-${n++}`));

/** Nothing half-written (tmp/ empty), no layer visible, no image recorded. */
async function nothingVisible(svc: ImageService, ref: string): Promise<void> {
  assert.deepEqual(readdirSync(svc.store.tmpDir), [], 'nothing left in tmp/');
  assert.deepEqual(await svc.store.listLayers(), [], 'no layer made visible');
  await assert.rejects(svc.get(ref), NotFoundError);
  // What blobs are kept (verified before the failure, so the next pull needs not fetch them)
  // are exactly what their names say.
  for (const digest of await svc.store.listBlobs()) await svc.store.readBlob(digest);
}

test('layers in flight at once give the same layer dirs as one at a time, and unpack() equals umoci', { skip }, async () => {
  const { layout } = await pushLayers('order', layers(), 'pipeline/order:1');
  const ref = `${registry.host}/pipeline/order:1`;
  const parallel = fresh();
  const serial = fresh();
  const order: string[] = [];
  const img = await parallel.pull(ref, { concurrency: 6, onProgress: (p) => p.state === 'verifying' && order.push(String(p.index)) });
  await serial.pull(ref, { concurrency: 1 });
  // The point of the fixture: an upper layer was complete before the base under it.
  assert.notEqual(order[0], '0', `layers finished downloading in the order ${order.join(',')}`);
  for (const l of img.layers) {
    const diffs = diffTrees(describeTree(parallel.store.layerDir(l.chainId), { mtimes: true }), describeTree(serial.store.layerDir(l.chainId), { mtimes: true }), ['6 at once', 'one at a time']);
    assert.deepEqual(diffs, [], `layer ${l.chainId}`);
  }
  const top = parallel.store.layerDir(img.layers[1]!.chainId);
  assert.equal(readFileSync(join(top, 'base/linked'), 'utf8'), 'shared inode', 'the hard link\'s target was copied up');
  const dest = join(work.path, 'order-unpacked');
  await parallel.unpack(ref, dest);
  const bundle = join(work.path, 'order-umoci');
  await run('umoci', ['unpack', '--image', `${layout}:t`, bundle]);
  assert.deepEqual(diffTrees(describeTree(dest, { mtimes: true }), describeTree(join(bundle, 'rootfs'), { mtimes: true }), ['berth', 'umoci']), []);
});

test('a layer failing verification while others are in flight leaves nothing visible and nothing half-written', { skip }, async () => {
  const { layerDigests } = await pushLayers('tamper', layers(), 'pipeline/tamper:1');
  const ref = `${registry.host}/pipeline/tamper:1`;
  // Layer 3 (200 small files) is in flight together with the base and the layers around it.
  const file = registry.blobFile(layerDigests[3]!);
  const bytes = readFileSync(file);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  writeFileSync(file, bytes);
  const svc = fresh();
  await assert.rejects(svc.pull(ref, { concurrency: 6 }), (e: unknown) => {
    assert.ok(e instanceof DigestMismatchError, String(e));
    assert.equal(e.expected, layerDigests[3]);
    return true;
  });
  await nothingVisible(svc, ref);
  assert.ok(!(await svc.store.hasBlob(layerDigests[3]!)), 'the tampered blob is not stored');
});

test('an abort while layers are in flight: AbortError, nothing visible or half-written, the next pull succeeds', { skip }, async () => {
  await pushLayers('abort', layers(), 'pipeline/abort:1');
  const ref = `${registry.host}/pipeline/abort:1`;
  const svc = fresh();
  const ac = new AbortController();
  const reason = new Error('user cancelled');
  // The first layer above the base to be downloaded and unpacked into tmp/: the base (3 MiB)
  // is still in flight, and that layer's directory exists, half of what the pull will make.
  const pulling = svc.pull(ref, { concurrency: 6, signal: ac.signal, onProgress: (p) => p.index > 0 && p.state === 'verifying' && ac.abort(reason) });
  await assert.rejects(pulling, (e: unknown) => {
    assert.ok(isBerthError(e) && e.code === 'ABORT_ERR', String(e));
    assert.equal((e as Error).cause, reason);
    return true;
  });
  assert.ok(ac.signal.aborted);
  await nothingVisible(svc, ref);
  const img = await svc.pull(ref);
  assert.equal(img.layers.length, 6);
});
