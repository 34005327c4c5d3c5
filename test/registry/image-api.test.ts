/**
 * The public image API against a real registry: `PullTask` events, the `Image` object,
 * `list()` with Docker's filters, `history()` against the config umoci wrote, and `prune()`
 * with shared layers, orphans and layers in use.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageService } from '../../lib/image/image-service.js';
import { Image, PullTask, type LayerProgress, type TotalProgress } from '../../lib/image/image.js';
import { ConflictError, NotFoundError, ValidationError } from '../../lib/errors.js';
import { registryToolsMissing, tempDir, type TestRegistry } from '../helpers/registry.js';
import { serveFixtureImage } from '../helpers/fixture-registry.js';
import { buildTar } from '../helpers/tar-builder.js';

const skip = registryToolsMissing();

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let layout: string;
let ref: string;

before(async () => {
  if (skip) return;
  work = tempDir('berth-image-api-');
  ({ registry, layout, ref } = await serveFixtureImage(work.path, { extraLayers: 2 }));
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

let n = 0;
const fresh = (options = {}) => new ImageService(join(work.path, `state-${n++}`), options);
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The fixture's config as umoci wrote it, read from the layout without berth. */
function layoutConfig(): { id: string; config: Record<string, any> } {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  const bytes = readFileSync(join(layout, 'blobs/sha256', manifest.config.digest.slice(7)));
  return { id: sha256(bytes), config: JSON.parse(bytes.toString()) };
}

test('pull returns a PullTask: a Promise<Image> with progress, total and done events', { skip }, async () => {
  const svc = fresh();
  const progress: LayerProgress[] = [];
  const totals: TotalProgress[] = [];
  const done: Image[] = [];
  const callback: number[] = [];
  const task = svc.pull(ref, { onProgress: (p) => callback.push(p.index) });
  assert.ok(task instanceof Promise && task instanceof PullTask);
  assert.equal(task.on('progress', (p) => progress.push(p)), task, 'on() chains');
  task.on('total', (t) => totals.push(t)).once('done', (img) => done.push(img));
  const chained = task.then((img) => img.id);
  assert.ok(!(chained instanceof PullTask), 'then() gives a plain promise');
  const img = await task;
  assert.equal(await chained, img.id);
  assert.ok(img instanceof Image);
  assert.deepEqual(done, [img]);
  assert.equal(progress.length, totals.length);
  assert.equal(callback.length, progress.length, 'onProgress sees the same events');
  for (let i = 0; i < img.layers.length; i++) {
    const states = progress.filter((p) => p.index === i).map((p) => p.state);
    assert.equal(states[0], 'waiting');
    assert.equal(states.at(-1), 'done');
    assert.ok(states.includes('downloading') && states.includes('extracting') && states.includes('verifying'), states.join());
    assert.ok(progress.filter((p) => p.index === i).every((p) => p.layer === img.layers[i]!.digest && p.bytesTotal === img.layers[i]!.size));
  }
  for (let i = 1; i < totals.length; i++) {
    assert.ok(totals[i]!.bytesDone >= totals[i - 1]!.bytesDone && totals[i]!.layersDone >= totals[i - 1]!.layersDone, 'totals never go back');
  }
  assert.deepEqual(totals.at(-1), { bytesDone: totals.at(-1)!.bytesTotal, bytesTotal: img.layers.reduce((a, l) => a + l.size, 0), layersDone: img.layers.length, layers: img.layers.length });

  // A second pull of the same image: every layer cached.
  const again: LayerProgress[] = [];
  await svc.pull(ref).on('progress', (p) => again.push(p));
  assert.deepEqual([...new Set(again.filter((p) => p.state !== 'waiting').map((p) => p.state))], ['cached']);

  // Failures reject the task; nothing else is needed to observe them.
  const failing = svc.pull(`${registry.host}/fixtures/busybox:nope`);
  let events = 0;
  failing.on('progress', () => events++);
  await assert.rejects(failing, NotFoundError);
  assert.equal(events, 0);
  await assert.rejects(svc.pull('Not A Ref'), ValidationError);
});

test('Image: Docker\'s fields, inspect, tag/remove with events, toJSON', { skip }, async () => {
  const svc = fresh();
  const img = await svc.pull(ref);
  const { id, config } = layoutConfig();
  assert.equal(img.id, id, 'id is the config digest');
  assert.equal(img.digest, (await svc.record(ref)).manifestDigest);
  assert.deepEqual(img.repoTags, [ref]);
  assert.match(img.repoDigests[0]!, new RegExp(`^${registry.host}/fixtures/busybox@sha256:`));
  assert.equal(img.created?.getTime(), Date.parse(config.created));
  assert.deepEqual(img.config.Cmd, config.config.Cmd);
  assert.deepEqual(img.platform, { os: config.os, architecture: config.architecture });
  assert.throws(() => { (img.config.Cmd as string[]).push('x'); }, TypeError, 'config is frozen');
  const info = await img.inspect();
  assert.equal(info.Id, img.id);
  assert.equal(info.Size, img.size);
  assert.ok(img.size > 1_000_000, 'busybox is in there');
  assert.deepEqual(JSON.parse(JSON.stringify(img)), {
    id: img.id, digest: img.digest, repoTags: [ref], repoDigests: [...img.repoDigests], size: img.size, created: img.created!.toISOString(), platform: { ...img.platform },
  });

  const seen: string[] = [];
  img.on('tag', (r) => seen.push(`tag ${r}`)).on('untag', (r) => seen.push(`untag ${r}`)).on('remove', (r) => seen.push(`remove ${r.deleted[0]}`));
  assert.equal(await img.tag('localhost/again'), img);
  assert.deepEqual(img.repoTags, [ref, 'localhost/again:latest'].sort());
  assert.equal((await svc.get('localhost/again')).id, img.id);
  await assert.rejects(img.remove(), ConflictError, 'two tags need force, as docker rmi');
  const result = await img.remove({ force: true });
  assert.deepEqual(img.repoTags, []);
  assert.deepEqual(seen.slice(0, 1), ['tag localhost/again:latest']);
  assert.ok(seen.includes(`untag ${ref}`) && seen.includes('untag localhost/again:latest'), seen.join());
  assert.equal(seen.at(-1), `remove ${img.id}`);
  assert.ok(result.deleted.includes(img.id));
  assert.deepEqual(await svc.store.listLayers(), []);
  await assert.rejects(svc.get(ref), NotFoundError);
});

test('history: Docker\'s rows from the config history, aligned with the layers', { skip }, async () => {
  const svc = fresh();
  const img = await svc.pull(ref);
  const { config } = layoutConfig();
  const rows = await img.history();
  const hist = [...config.history].reverse();
  assert.equal(rows.length, hist.length);
  rows.forEach((row, i) => {
    assert.equal(row.Id, i === 0 ? img.id : '<missing>');
    assert.deepEqual(row.Tags, i === 0 ? [ref] : null);
    assert.equal(row.CreatedBy, hist[i].created_by);
    assert.equal(row.Created, Math.floor(Date.parse(hist[i].created) / 1000));
    assert.equal(row.EmptyLayer, hist[i].empty_layer === true);
  });
  // umoci config made an empty step on top; the layers below carry their sizes, base first.
  assert.equal(rows[0]!.CreatedBy, 'umoci config');
  assert.equal(rows[0]!.Size, 0);
  const layerRows = rows.filter((r) => !r.EmptyLayer).reverse();
  assert.equal(layerRows.length, img.layers.length);
  assert.ok(layerRows[0]!.Size >= readFileSync('/bin/busybox').length, 'the base layer holds busybox');
  assert.equal(layerRows.reduce((a, r) => a + r.Size, 0), img.size);
  assert.deepEqual(await svc.history(img.id), rows);
});

/** Imports a tiny one-layer image; `created` differs per call so before/since can order them. */
async function importTiny(svc: ImageService, name: string, content: string, { ref: tag, labels }: { ref?: string; labels?: Record<string, string> } = {}) {
  const path = join(work.path, `tiny-${n++}.tar`);
  writeFileSync(path, buildTar([{ name: 'file', content }]));
  const changes = Object.entries(labels ?? {}).map(([k, v]) => `LABEL ${k}=${v}`);
  const img = await svc.import(path, { ...(tag ? { ref: tag } : {}), changes, message: name });
  await new Promise((r) => setTimeout(r, 15)); // distinct `created` times
  return img;
}

test('list with Docker\'s filters: reference, dangling, label, before, since, until, id', { skip }, async () => {
  const svc = fresh();
  const base = await svc.pull(ref); // created by umoci in the past
  const a = await importTiny(svc, 'a', 'a', { ref: 'localhost/app/a:1', labels: { tier: 'web', team: 'x' } });
  const b = await importTiny(svc, 'b', 'b', { ref: 'localhost/app/b:2', labels: { tier: 'db' } });
  const c = await importTiny(svc, 'c', 'c'); // dangling
  const ids = async (filters: object) => (await svc.list({ filters } as never)).map((i) => i.id).sort();
  const sorted = (...imgs: Image[]) => imgs.map((i) => i.id).sort();

  assert.deepEqual(await ids({}), sorted(base, a, b, c));
  assert.deepEqual((await svc.list()).map((i) => i.id), [c.id, b.id, a.id, base.id].filter((id, i, all) => all.indexOf(id) === i), 'newest first');
  assert.deepEqual(await ids({ reference: 'localhost/app/*' }), sorted(a, b), '* matches within a path component');
  assert.deepEqual(await ids({ reference: 'localhost/*' }), [], '* does not cross "/"');
  assert.deepEqual(await ids({ reference: '*/app/?:[12]' }), sorted(a, b));
  assert.deepEqual(await ids({ reference: ['localhost/app/a', `${registry.host}/fixtures/busybox:1`] }), sorted(a, base), 'values are alternatives');
  assert.deepEqual(await ids({ reference: `${registry.host}/fixtures/busybox@sha256:*` }), sorted(base), 'digest references match too');
  assert.deepEqual(await ids({ dangling: true }), sorted(c));
  assert.deepEqual(await ids({ dangling: 'false' }), sorted(base, a, b));
  assert.deepEqual(await ids({ label: 'tier' }), sorted(a, b));
  assert.deepEqual(await ids({ label: ['tier=web', 'team'] }), sorted(a), 'every label must match');
  assert.deepEqual(await ids({ label: 'org.berth.test=1' }), sorted(base));
  assert.deepEqual(await ids({ since: 'localhost/app/a:1' }), sorted(b, c));
  assert.deepEqual(await ids({ before: 'localhost/app/b:2' }), sorted(base, a));
  assert.deepEqual(await ids({ before: b.id.slice(7, 19), since: base.id }), sorted(a));
  assert.deepEqual(await ids({ until: (a.created!.getTime() + 1) / 1000 }), sorted(base, a));
  assert.deepEqual(await ids({ until: '87600h' }), [], 'nothing is ten years old');
  assert.deepEqual(await ids({ until: new Date(b.created!.getTime() + 1) }), sorted(base, a, b));
  assert.deepEqual(await ids({ id: a.id.slice(7, 15) }), sorted(a));
  assert.deepEqual(await ids({ id: [a.id, `sha256:${b.id.slice(7, 12)}`] }), sorted(a, b));
  assert.deepEqual(await ids({ reference: ['localhost/app/*'], dangling: ['false'] }), sorted(a, b), "Docker's API form");

  await assert.rejects(svc.list({ filters: { nope: 'x' } as never }), (e: unknown) => e instanceof ValidationError && e.option === 'filters.nope');
  await assert.rejects(svc.list({ filters: { dangling: 'maybe' } as never }), ValidationError);
  await assert.rejects(svc.list({ filters: { reference: 'a[' } }), ValidationError);
  await assert.rejects(svc.list({ filters: { until: 'yesterday' } }), ValidationError);
  await assert.rejects(svc.list({ filters: { before: 'localhost/none:1' } }), NotFoundError);
});

test('prune: dangling images and orphans go; tagged images, shared and in-use layers stay', { skip }, async () => {
  const inUse = new Set<string>();
  const svc = fresh({ isLayerInUse: (chainId: string) => inUse.has(chainId) });
  const base = await svc.pull(ref);
  // Same rootfs, different configs: one shared layer. Moving the tag leaves `old` dangling.
  const old = await importTiny(svc, 'old', 'shared', { ref: 'localhost/moving:1' });
  const current = await importTiny(svc, 'current', 'shared', { ref: 'localhost/moving:1', labels: { v: '2' } });
  assert.equal(old.layers[0]!.chainId, current.layers[0]!.chainId);
  assert.deepEqual((await svc.get(old.id)).repoTags, [], 'the tag moved');
  const lonely = await importTiny(svc, 'lonely', 'lonely'); // dangling, own layer
  const busy = await importTiny(svc, 'busy', 'busy'); // dangling, but a container uses it
  inUse.add(busy.layers[0]!.chainId);
  // Orphans: a blob no record names, and an abandoned download.
  const orphan = await svc.store.putBlob(Buffer.from('orphan blob'));
  const partial = join(svc.store.tmpDir, `blob-${'ab'.repeat(32)}.partial`);
  writeFileSync(partial, Buffer.alloc(1000));
  const size = async (d: string) => (await svc.store.blobSize(d)) ?? assert.fail(`blob ${d} missing`);
  let expected = 1000 + 'orphan blob'.length + 'lonely'.length;
  for (const d of [old.id, old.digest, lonely.id, lonely.digest, lonely.layers[0]!.digest]) expected += await size(d);

  const result = await svc.prune();
  const deleted = result.imagesDeleted.filter((d): d is { deleted: string } => 'deleted' in d).map((d) => d.deleted);
  assert.ok(deleted.includes(old.id) && deleted.includes(lonely.id), JSON.stringify(result));
  assert.ok(!deleted.includes(busy.id) && !deleted.includes(current.id) && !deleted.includes(base.id));
  assert.ok(deleted.includes(lonely.layers[0]!.chainId), 'its own layer goes');
  assert.ok(!deleted.includes(old.layers[0]!.chainId), 'a layer another image uses stays');
  assert.ok(await svc.store.hasLayer(current.layers[0]!.chainId));
  assert.ok(await svc.store.hasLayer(busy.layers[0]!.chainId));
  assert.ok(!(await svc.store.hasBlob(orphan)) && !existsSync(partial));
  assert.deepEqual((await svc.list({ filters: { dangling: true } })).map((i) => i.id), [busy.id]);
  assert.equal(result.spaceReclaimed, expected, 'blobs, layer content and the abandoned download');
  // Images still there are intact.
  await svc.unpack(ref, join(work.path, 'after-prune'));
  assert.equal((await svc.get('localhost/moving:1')).id, current.id);

  // Nothing left to prune: nothing happens.
  assert.deepEqual(await svc.prune(), { imagesDeleted: [], spaceReclaimed: 0 });

  // dangling=false removes every unused image; label and until narrow it; in-use survives.
  const keep = await importTiny(svc, 'keep', 'keep', { ref: 'localhost/keep:1', labels: { keep: 'yes' } });
  const r2 = await svc.prune({ filters: { dangling: false, label: '!keep' } });
  assert.ok(r2.imagesDeleted.some((d) => 'untagged' in d && d.untagged === 'localhost/moving:1'));
  assert.ok(r2.imagesDeleted.some((d) => 'untagged' in d && d.untagged === ref));
  assert.deepEqual((await svc.list()).map((i) => i.id).sort(), [busy.id, keep.id].sort());
  const r3 = await svc.prune({ filters: { dangling: false, until: '1h' } });
  assert.deepEqual(r3.imagesDeleted, [], 'keep is younger than an hour');
  inUse.clear();
  await svc.prune({ filters: { dangling: false } });
  assert.deepEqual(await svc.list(), []);
  assert.deepEqual(await svc.store.listLayers(), []);
  assert.deepEqual(await svc.store.listBlobs(), []);
  await assert.rejects(svc.prune({ filters: { reference: 'x' } as never }), ValidationError);
});
