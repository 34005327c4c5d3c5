/**
 * Pulls from a real registry (Debian's docker-registry) fed by skopeo, and compares what berth
 * unpacks with what umoci unpacks from the same OCI layout.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImageService, chainIds, type PullProgress } from '../../lib/image/image-service.js';
import { RegistryClient } from '../../lib/image/registry-client.js';
import { parseManifest } from '../../lib/image/manifest.js';
import { ConflictError, NotFoundError } from '../../lib/errors.js';
import { registryToolsMissing, run, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { FIXTURE_TAG } from '../helpers/fixture-image.js';
import { serveFixtureImage } from '../helpers/fixture-registry.js';
import { describeTree, diffTrees } from '../helpers/tree-compare.js';
import { startProxy } from '../helpers/registry-proxy.js';

const skip = registryToolsMissing();
const execFileP = promisify(execFile);

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let layout: string;
let ref: string;

before(async () => {
  if (skip) return;
  work = tempDir('berth-pull-');
  ({ registry, layout, ref } = await serveFixtureImage(work.path, { extraLayers: 3 }));
  await skopeoPush(layout, FIXTURE_TAG, registry, 'fixtures/busybox:zstd', { compress: 'zstd' });
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

let stateN = 0;
const freshService = () => new ImageService(join(work.path, `state-${stateN++}`));

async function umociRootfs(): Promise<string> {
  const bundle = join(work.path, 'umoci-bundle');
  if (!existsSync(bundle)) await run('umoci', ['unpack', '--image', `${layout}:${FIXTURE_TAG}`, bundle]);
  return join(bundle, 'rootfs');
}

test('pull a multi-layer image: progress, record, layers, inspect', { skip }, async () => {
  const svc = freshService();
  const events: PullProgress[] = [];
  const img = await svc.pull(ref, { onProgress: (e) => events.push(e) });
  assert.equal(img.layers.length, 6);
  assert.deepEqual(img.repoTags, [`${registry.host}/fixtures/busybox:1`]);
  assert.equal(img.repoDigests.length, 1);
  assert.match(img.repoDigests[0]!, new RegExp(`^${registry.host}/fixtures/busybox@sha256:[a-f0-9]{64}$`));
  assert.deepEqual(img.layers.map((l) => l.chainId), chainIds(img.layers.map((l) => l.diffId)));
  for (const l of img.layers) assert.ok(lstatSync(svc.store.layerDir(l.chainId)).isDirectory());
  for (let i = 0; i < img.layers.length; i++) {
    const states = events.filter((e) => e.index === i).map((e) => e.state);
    assert.equal(states[0], 'waiting');
    assert.equal(states.at(-1), 'done');
    assert.ok(states.includes('downloading'));
    assert.ok(states.includes('extracting'));
  }
  const last = events.at(-1)!;
  assert.equal(last.total.layersDone, 6);
  assert.equal(last.total.bytesDone, last.total.bytesTotal);
  // Nothing left in progress.
  assert.deepEqual(readdirSync(svc.store.tmpDir), []);

  const info = await svc.inspect(ref);
  assert.equal(info.Id, img.id);
  assert.deepEqual(info.RepoTags, [`${registry.host}/fixtures/busybox:1`]);
  assert.deepEqual(info.Config?.Cmd, ['sh']);
  assert.equal(info.Config?.WorkingDir, '/root');
  assert.deepEqual(info.Config?.Labels, { 'org.berth.test': '1' });
  assert.equal(info.RootFS.DiffIDs.length, 6);
  assert.ok(info.Size > 1_000_000);
  assert.equal(info.Os, 'linux');

  // Same image again: every layer cached, nothing downloaded.
  const again: PullProgress[] = [];
  await svc.pull(ref, { onProgress: (e) => again.push(e) });
  assert.deepEqual(again.filter((e) => e.state !== 'waiting').map((e) => e.state), Array(6).fill('cached'));

  const { lowerDirs, config } = await svc.rootfsFor(ref);
  assert.deepEqual(lowerDirs, img.layers.map((l) => svc.store.layerDir(l.chainId)).reverse());
  assert.deepEqual(config.config?.Env, ['PATH=/bin:/usr/bin']);
});

test('unpack() matches umoci unpack entry by entry', { skip }, async () => {
  const svc = freshService();
  await svc.pull(ref);
  const dest = join(work.path, 'ours-gzip');
  await svc.unpack(ref, dest, { devices: true });
  const diffs = diffTrees(describeTree(dest, { mtimes: true }), describeTree(await umociRootfs(), { mtimes: true }), ['berth', 'umoci']);
  assert.deepEqual(diffs, []);
  // The fixture really has what the comparison is meant to cover.
  const tree = describeTree(dest);
  assert.equal(tree.get('usr/bin/passwd')?.mode, '4755');
  assert.equal(tree.get('usr/bin/wall')?.mode, '2755');
  assert.equal(tree.get('tmp')?.mode, '1777');
  assert.equal(tree.get('dev/null')?.rdev, '1:3');
  assert.equal(tree.get('dev/loop7')?.type, 'block');
  assert.equal(tree.get('run/fifo')?.type, 'fifo');
  assert.ok(tree.get('usr/bin/ping')?.xattrs?.['security.capability']);
  assert.equal(tree.get('etc/xattr-file')?.xattrs?.['user.berth'], Buffer.from('hello').toString('hex'));
  assert.deepEqual(tree.get('usr/lib/a')?.links, ['usr/lib/a', 'usr/lib/b', 'usr/lib/c']);
  assert.equal(tree.get('etc/localtime')?.target, '/usr/share/zoneinfo/UTC');
  assert.equal(tree.get('home/user/secret')?.owner, '1000:1000');
  assert.ok(!tree.has('etc/motd') && !tree.has('usr/share/doc') && !tree.has('etc/hostname'), 'whiteouts deleted');
  assert.deepEqual(readdirSync(join(dest, 'var/cache')), ['fresh'], 'opaque directory');
  assert.equal(tree.get('opt/thing')?.type, 'dir');
  assert.equal(tree.get('opt/dir')?.type, 'file');
  await assert.rejects(svc.unpack(ref, dest), /not empty/);
});

test('the layer dirs, mounted as overlay lower layers, show the same tree', { skip }, async (t) => {
  const svc = freshService();
  await svc.pull(ref);
  const { lowerDirs } = await svc.rootfsFor(ref);
  const img = await svc.get(ref);
  // Overlay's own formats inside the layers.
  const l2 = svc.store.layerDir(img.layers[1]!.chainId);
  const motd = lstatSync(join(l2, 'etc/motd'));
  assert.ok(motd.isCharacterDevice() && motd.rdev === 0, 'whiteout is a 0/0 char device');
  const l3 = svc.store.layerDir(img.layers[2]!.chainId);
  assert.equal(lstatSync(join(l3, 'usr/lib/c')).ino, lstatSync(join(l3, 'usr/lib/a')).ino, 'hard link into a lower layer was copied up');
  const mnt = join(work.path, 'overlay-mnt');
  mkdirSync(mnt, { recursive: true });
  try {
    await execFileP('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowerDirs.join(':')}`, mnt]);
  } catch (e) {
    t.skip(`overlay mount not possible here: ${(e as Error).message}`);
    return;
  }
  try {
    const dest = join(work.path, 'ours-for-overlay');
    await svc.unpack(ref, dest, { devices: true });
    const diffs = diffTrees(describeTree(mnt, { ignoreXattrs: ['trusted.overlay.'] }), describeTree(dest), ['overlay', 'unpack']);
    assert.deepEqual(diffs, []);
  } finally {
    await execFileP('umount', [mnt]);
  }
});

test('zstd layers (skopeo --dest-compress-format zstd) unpack to the same tree', { skip }, async () => {
  const svc = freshService();
  const zref = `${registry.host}/fixtures/busybox:zstd`;
  const img = await svc.pull(zref);
  const manifest = parseManifest(await svc.store.readBlob(img.digest));
  assert.ok(manifest.kind === 'manifest' && manifest.layers.every((l) => l.mediaType.endsWith('+zstd')), 'layers really are zstd');
  const dest = join(work.path, 'ours-zstd');
  await svc.unpack(zref, dest, { devices: true });
  assert.deepEqual(diffTrees(describeTree(dest, { mtimes: true }), describeTree(await umociRootfs(), { mtimes: true }), ['berth-zstd', 'umoci']), []);
});

test('tag, get, list, remove with reference counts', { skip }, async () => {
  const svc = freshService();
  const base = await svc.pull(ref);
  // A second image sharing every layer but the top ones: the zstd copy has the same diff ids,
  // so the same layers, but different blobs.
  const z = await svc.pull(`${registry.host}/fixtures/busybox:zstd`);
  assert.equal(z.id, base.id, 'same config -> same image id');
  assert.deepEqual(z.layers.map((l) => l.chainId), base.layers.map((l) => l.chainId));
  assert.equal((await svc.store.listLayers()).length, 6, 'layers shared');

  await svc.tag(ref, 'localhost/mine:v2');
  assert.equal((await svc.get('localhost/mine:v2')).digest, base.digest);
  assert.equal((await svc.get(base.id.slice(7, 19))).id, base.id, 'short id (both images have it)');
  assert.equal((await svc.get(base.repoDigests[0]!)).digest, base.digest);
  assert.equal((await svc.list()).length, 2);
  await assert.rejects(svc.get('localhost/nope:1'), NotFoundError);
  await assert.rejects(svc.remove(base.digest), (e: unknown) => e instanceof ConflictError || e instanceof NotFoundError);

  // Untag: the image stays while another tag names it.
  let r = await svc.remove('localhost/mine:v2');
  assert.deepEqual(r.untagged, ['localhost/mine:v2']);
  assert.deepEqual(r.deleted, []);
  // The zstd image goes: its blobs go, the layers stay (the gzip image uses them).
  r = await svc.remove(`${registry.host}/fixtures/busybox:zstd`);
  assert.ok(r.deleted.includes(z.digest));
  for (const l of z.layers) assert.ok(!(await svc.store.hasBlob(l.digest)), 'zstd blob deleted');
  for (const l of base.layers) assert.ok(await svc.store.hasBlob(l.digest), 'gzip blob kept');
  assert.equal((await svc.store.listLayers()).length, 6);
  assert.ok(await svc.store.hasBlob(base.id), 'shared config kept');
  // Removing by id with two tags needs force.
  await svc.tag(ref, 'localhost/other:1');
  await assert.rejects(svc.remove(base.id), ConflictError);
  r = await svc.remove(base.id, { force: true });
  assert.ok(r.untagged.includes(`${registry.host}/fixtures/busybox:1`) && r.untagged.includes('localhost/other:1'));
  assert.deepEqual(await svc.store.listLayers(), []);
  assert.deepEqual(await svc.store.listBlobs(), []);
  assert.deepEqual(await svc.list(), []);
});

test('two processes pulling the same image at once download each blob once', { skip }, async () => {
  const proxy = await startProxy(registry.host);
  try {
    const root = join(work.path, 'shared-state');
    const child = join(import.meta.dirname, 'pull-child.ts');
    const pulls = [0, 1].map(() => execFileP(process.execPath, [...process.execArgv, child, root, `${proxy.host}/fixtures/busybox:1`]));
    const results = (await Promise.all(pulls)).map((r) => JSON.parse(r.stdout) as { manifestDigest: string; states: Record<string, number> });
    assert.equal(results[0]!.manifestDigest, results[1]!.manifestDigest);
    for (const [digest, n] of proxy.blobGets) assert.equal(n, 1, `blob ${digest} downloaded ${n} times`);
    assert.equal(proxy.blobGets.size, 7, 'six layers and the config');
    const svc = new ImageService(root);
    assert.equal((await svc.store.listLayers()).length, 6);
    assert.deepEqual(readdirSync(svc.store.tmpDir), []);
    const dest = join(work.path, 'ours-concurrent');
    await svc.unpack(`${proxy.host}/fixtures/busybox:1`, dest, { devices: true });
    assert.deepEqual(diffTrees(describeTree(dest), describeTree(await umociRootfs()), ['berth', 'umoci']), []);
  } finally {
    await proxy.stop();
  }
});

test('push: blob upload (monolithic and chunked), cross-repo mount, manifest put', { skip }, async () => {
  const svc = freshService();
  const img = await svc.pull(ref);
  const client = new RegistryClient({ domain: registry.host });
  try {
    const read = (digest: string) => async (offset: number, length: number) => readFileSync(svc.store.blobPath(digest)).subarray(offset, offset + length);
    const blobs = [{ digest: img.id, size: (await svc.store.blobSize(img.id))! }, ...img.layers];
    // Same registry, other repository: every blob can be mounted.
    for (const b of blobs) assert.equal(await client.pushBlob('copies/mounted', b, read(b.digest), { mountFrom: 'fixtures/busybox' }), 'mounted');
    // Fresh content is uploaded: in one PUT, or in PATCH chunks.
    const fresh = Buffer.from(`fresh blob ${Date.now()}`.repeat(1000));
    const { createHash } = await import('node:crypto');
    const d1 = { digest: `sha256:${createHash('sha256').update(fresh).digest('hex')}`, size: fresh.length };
    assert.equal(await client.pushBlob('copies/chunked', d1, async (o, l) => fresh.subarray(o, o + l), { chunkSize: 4096 }), 'uploaded');
    assert.equal(await client.pushBlob('copies/chunked', d1, async (o, l) => fresh.subarray(o, o + l)), 'exists');
    assert.equal(await client.blobExists('copies/chunked', d1.digest), fresh.length);
    const manifest = await svc.store.readBlob(img.digest);
    const pushed = await client.putManifest('copies/mounted', 'v1', manifest, (await svc.record(img.digest)).mediaType);
    assert.equal(pushed, img.digest);
    // skopeo, an independent client, reads it back.
    const { stdout } = await execFileP('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/copies/mounted:v1`]);
    assert.equal(stdout, manifest.toString());
  } finally {
    client.close();
  }
});

test('ImageService.push: to another repository (mounted) and to another registry (uploaded)', { skip }, async () => {
  const svc = freshService();
  const img = await svc.pull(ref);
  const digest = await svc.push(ref, { targetRef: `${registry.host}/pushed/busybox:copy` });
  assert.equal(digest, img.digest);
  const other = await startRegistry();
  try {
    assert.equal(await svc.push(ref, { targetRef: `${other.host}/elsewhere/busybox:1` }), img.digest);
    // Pulled back by an independent client and unpacked by umoci: the same tree.
    const oci = join(work.path, 'pushed-oci');
    await execFileP('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${other.host}/elsewhere/busybox:1`, `oci:${oci}:t`]);
    await execFileP('umoci', ['unpack', '--image', `${oci}:t`, join(work.path, 'pushed-bundle')]);
    assert.deepEqual(diffTrees(describeTree(join(work.path, 'pushed-bundle', 'rootfs')), describeTree(await umociRootfs()), ['pushed', 'original']), []);
  } finally {
    await other.stop();
  }
});

test('timing: berth pull + unpack vs skopeo copy + umoci unpack', { skip }, async (t) => {
  const svc = freshService();
  let t0 = performance.now();
  await svc.pull(ref);
  const dest = join(work.path, 'timing-berth');
  await svc.unpack(ref, dest, { devices: true });
  const berth = performance.now() - t0;
  t0 = performance.now();
  const ociDir = join(work.path, 'timing-oci');
  await execFileP('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${ociDir}:t`]);
  await execFileP('umoci', ['unpack', '--image', `${ociDir}:t`, join(work.path, 'timing-umoci')]);
  const theirs = performance.now() - t0;
  t.diagnostic(`berth pull+unpack ${berth.toFixed(0)} ms; skopeo copy + umoci unpack ${theirs.toFixed(0)} ms; ratio ${(berth / theirs).toFixed(2)}`);
});

test('unpack() copies the stored layer dirs without reading a blob, and falls back to the blobs when a layer dir is missing; both equal umoci', { skip }, async () => {
  const svc = freshService();
  const img = await svc.pull(ref);
  const umoci = await umociRootfs();
  const layerBlobs = img.layers.map((l) => svc.store.blobPath(l.digest));
  // Layer blobs moved away: an unpack that reads any of them fails.
  for (const b of layerBlobs) renameSync(b, `${b}.away`);
  const fromDirs = join(work.path, 'unpack-from-dirs');
  await svc.unpack(ref, fromDirs, { devices: true });
  assert.deepEqual(diffTrees(describeTree(fromDirs, { mtimes: true }), describeTree(umoci, { mtimes: true }), ['layer dirs', 'umoci']), []);
  for (const b of layerBlobs) renameSync(`${b}.away`, b);
  // A store whose middle layer dir is gone (damaged, or written before layers were kept).
  const middle = svc.store.layerDir(img.layers[2]!.chainId);
  renameSync(middle, `${middle}.away`);
  try {
    const fromBlobs = join(work.path, 'unpack-from-blobs');
    await svc.unpack(ref, fromBlobs, { devices: true });
    assert.deepEqual(diffTrees(describeTree(fromBlobs, { mtimes: true }), describeTree(umoci, { mtimes: true }), ['blobs', 'umoci']), []);
  } finally {
    renameSync(`${middle}.away`, middle);
  }
});

test('unpack() holds the store\'s gc lock shared: a remove or prune in progress is waited for', { skip }, async () => {
  const svc = freshService();
  await svc.pull(ref);
  // What remove and prune hold while they delete blobs and layer dirs.
  const gc = await svc.store.lock('gc');
  const dest = join(work.path, 'unpack-waits');
  let settled = false;
  const unpacking = svc.unpack(ref, dest, { devices: true }).finally(() => (settled = true));
  for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 2));
  const early = existsSync(dest) ? readdirSync(dest) : [];
  gc.release();
  await unpacking;
  assert.deepEqual(early, [], 'nothing copied while the gc lock was held exclusively');
  assert.ok(settled);
  assert.deepEqual(diffTrees(describeTree(dest, { mtimes: true }), describeTree(await umociRootfs(), { mtimes: true }), ['berth', 'umoci']), []);

});

test('unpack() with an aborted signal rejects with AbortError', { skip }, async () => {
  const svc = freshService();
  await svc.pull(ref);
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await assert.rejects(svc.unpack(ref, join(work.path, 'unpack-aborted'), { signal: ac.signal }), { name: 'AbortError' });
});
