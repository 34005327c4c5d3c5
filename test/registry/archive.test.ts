/**
 * save / load / import against independent tools: archives berth writes are read by skopeo
 * (`docker-archive:` and `oci-archive:`) and umoci (the extracted OCI layout); archives skopeo,
 * umoci and tar write are loaded by berth; every tree is compared with `umoci unpack` of the
 * original image. Malformed archives must fail with typed errors and leave the store as it was.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { ImageService } from '../../lib/image/image-service.js';
import { DigestMismatchError, ImageFormatError, LayerFormatError, UnsafeLayerEntryError } from '../../lib/image/errors.js';
import { NotFoundError, ValidationError, isBerthError } from '../../lib/errors.js';
import { registryToolsMissing, run, tempDir, type TestRegistry } from '../helpers/registry.js';
import { FIXTURE_TAG } from '../helpers/fixture-image.js';
import { serveFixtureImage } from '../helpers/fixture-registry.js';
import { buildTar, type TarEntrySpec } from '../helpers/tar-builder.js';
import { describeTree, diffTrees } from '../helpers/tree-compare.js';
import { storeSnapshot } from '../helpers/store-snapshot.js';

const skip = registryToolsMissing();

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let layout: string;
let ref: string;
let source: ImageService;
let umociRoot: string;

before(async () => {
  if (skip) return;
  work = tempDir('berth-archive-');
  ({ registry, layout, ref } = await serveFixtureImage(work.path, { extraLayers: 2 }));
  source = new ImageService(join(work.path, 'source-state'));
  await source.pull(ref);
  await run('umoci', ['unpack', '--image', `${layout}:${FIXTURE_TAG}`, join(work.path, 'umoci-bundle')]);
  umociRoot = join(work.path, 'umoci-bundle', 'rootfs');
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

let n = 0;
const fresh = () => new ImageService(join(work.path, `state-${n++}`));
const file = (name: string) => join(work.path, name);
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function saveTo(svc: ImageService, refs: string[], path: string): Promise<string> {
  await pipeline(svc.save(refs), createWriteStream(path));
  return path;
}

async function member(tarPath: string, name: string): Promise<string> {
  return (await run('tar', ['-xOf', tarPath, name], { maxBuffer: 64 * 1024 * 1024 })).stdout;
}

/** Extracts a tar, lets `edit` change the tree, and tars it again (in the same member order). */
async function rewriteTar(src: string, dest: string, edit: (dir: string) => void): Promise<string> {
  const dir = file(`rewrite-${n++}`);
  mkdirSync(dir);
  await run('tar', ['-xf', src, '-C', dir]);
  const names = (await run('tar', ['-tf', src])).stdout.split('\n').filter((l) => l !== '');
  edit(dir);
  await run('tar', ['-cf', dest, '-C', dir, '--no-recursion', ...names]);
  return dest;
}

function sameTree(dest: string, label: string): void {
  assert.deepEqual(diffTrees(describeTree(dest), describeTree(umociRoot), [label, 'umoci']), []);
}

test('save writes the docker-save format and an OCI layout in one tar', { skip }, async () => {
  const img = await source.get(ref);
  const tar = await saveTo(source, [ref], file('saved.tar'));
  const names = (await run('tar', ['-tf', tar])).stdout.split('\n').filter((l) => l !== '');
  for (const m of ['manifest.json', 'repositories', 'index.json', 'oci-layout', `blobs/sha256/${img.id.slice(7)}`]) assert.ok(names.includes(m), `${m} in ${names.join(' ')}`);
  for (const l of img.layers) assert.ok(names.includes(`blobs/sha256/${l.diffId.slice(7)}`), 'layers stored uncompressed, named by diff id');

  const manifestJson = JSON.parse(await member(tar, 'manifest.json'));
  assert.deepEqual(manifestJson, [{
    Config: `blobs/sha256/${img.id.slice(7)}`,
    RepoTags: [ref],
    Layers: img.layers.map((l) => `blobs/sha256/${l.diffId.slice(7)}`),
  }]);
  assert.deepEqual(JSON.parse(await member(tar, 'repositories')), { [`${registry.host}/fixtures/busybox`]: { '1': img.layers.at(-1)!.diffId.slice(7) } });
  assert.equal(sha256(await member(tar, `blobs/sha256/${img.id.slice(7)}`)), img.id, 'config byte for byte');
  const index = JSON.parse(await member(tar, 'index.json'));
  assert.equal(index.manifests.length, 1);
  assert.deepEqual(index.manifests[0].annotations, { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': '1' });
  const manifest = JSON.parse(await member(tar, `blobs/sha256/${index.manifests[0].digest.slice(7)}`));
  assert.equal(manifest.config.digest, img.id);
  assert.deepEqual(manifest.layers.map((l: { digest: string }) => l.digest), img.layers.map((l) => l.diffId));
  // Deterministic: the same image saves to the same bytes.
  const again = await saveTo(source, [ref], file('saved-again.tar'));
  assert.ok(readFileSync(again).equals(readFileSync(tar)));
});

test('skopeo reads the saved tar as docker-archive: and as oci-archive:; umoci unpacks the layout', { skip }, async () => {
  const img = await source.get(ref);
  const tar = await saveTo(source, [ref], file('for-skopeo.tar'));
  const { stdout: rawConfig } = await run('skopeo', ['inspect', '--raw', '--config', `docker-archive:${tar}`]);
  assert.equal(sha256(rawConfig), img.id, 'skopeo sees the same config (image id)');
  for (const [transport, label] of [[`docker-archive:${tar}`, 'docker-archive'], [`oci-archive:${tar}:1`, 'oci-archive']] as const) {
    const oci = file(`skopeo-from-${label}`);
    await run('skopeo', ['copy', '--quiet', transport, `oci:${oci}:t`]);
    const bundle = file(`bundle-from-${label}`);
    await run('umoci', ['unpack', '--image', `${oci}:t`, bundle]);
    sameTree(join(bundle, 'rootfs'), label);
  }
  // The archive, extracted, is itself an OCI image layout umoci can unpack.
  const extracted = file('saved-extracted');
  mkdirSync(extracted);
  await run('tar', ['-xf', tar, '-C', extracted]);
  await run('umoci', ['unpack', '--image', `${extracted}:1`, file('bundle-from-layout')]);
  sameTree(join(file('bundle-from-layout'), 'rootfs'), 'extracted layout');
});

test('save -> load: same id, layers and tag; loading again changes nothing; gzip archives load', { skip }, async () => {
  const img = await source.get(ref);
  const tar = await saveTo(source, [ref], file('roundtrip.tar'));
  const svc = fresh();
  const loaded = await svc.load(createReadStream(tar));
  assert.equal(loaded.length, 1);
  const [l] = loaded as [typeof img];
  assert.equal(l.id, img.id);
  assert.deepEqual(l.repoTags, [ref]);
  assert.deepEqual(l.repoDigests, [], 'a loaded image has no registry digest, as in Docker');
  assert.deepEqual(l.layers.map((x) => x.chainId), img.layers.map((x) => x.chainId));
  assert.deepEqual(l.layers.map((x) => x.mediaType), img.layers.map(() => 'application/vnd.oci.image.layer.v1.tar'));
  const index = JSON.parse(await member(tar, 'index.json'));
  assert.equal(l.digest, index.manifests[0].digest, 'the manifest is the one in the archive');
  assert.equal(l.size, img.size);
  assert.deepEqual(readdirSync(svc.store.tmpDir), []);
  const dest = file('loaded-unpack');
  await svc.unpack(ref, dest, { devices: true });
  sameTree(dest, 'loaded');

  const before = storeSnapshot(svc);
  const again = await svc.load(tar); // a path this time
  assert.equal(again[0]!.digest, l.digest);
  assert.equal(storeSnapshot(svc), before);

  const gz = file('roundtrip.tar.gz');
  writeFileSync(gz, gzipSync(readFileSync(tar)));
  const fromGz = await fresh().load(gz);
  assert.equal(fromGz[0]!.id, img.id);
});

test('archives written by skopeo (docker-archive:, oci-archive:) and by tar from an umoci layout load', { skip }, async () => {
  const img = await source.get(ref);
  const dockerArchive = file('skopeo-docker.tar');
  await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `docker-archive:${dockerArchive}:localhost/from/skopeo:da`]);
  const ociArchive = file('skopeo-oci.tar');
  await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci-archive:${ociArchive}:localhost/from/skopeo:oci`]);
  const layoutTar = file('umoci-layout.tar');
  await run('tar', ['-cf', layoutTar, '-C', layout, '.']);

  const svc = fresh();
  const [a] = await svc.load(dockerArchive);
  assert.equal(a!.id, img.id);
  assert.deepEqual(a!.repoTags, ['localhost/from/skopeo:da']);
  const [b] = await svc.load(ociArchive);
  assert.equal(b!.id, img.id);
  assert.deepEqual(b!.repoTags, ['localhost/from/skopeo:oci']);
  assert.deepEqual(b!.layers.map((x) => x.digest), img.layers.map((x) => x.digest), 'oci-archive keeps the gzip blobs');
  const [c] = await svc.load(layoutTar);
  assert.equal(c!.id, img.id);
  assert.equal(c!.digest, img.digest, 'the layout\'s own manifest is kept');
  const [alone] = await fresh().load(layoutTar);
  assert.deepEqual(alone!.repoTags, [], 'a bare ref.name ("fixture") is a tag without a repository: untagged');
  assert.equal((await svc.store.listLayers()).length, img.layers.length, 'layers shared by all three');
  for (const [name, r] of [['da', 'localhost/from/skopeo:da'], ['oci', 'localhost/from/skopeo:oci'], ['layout', c!.digest]] as const) {
    const dest = file(`loaded-${name}`);
    await svc.unpack(r, dest, { devices: true });
    sameTree(dest, name);
  }
});

test('save by repository saves every tag; by id, untagged; an unknown name errors the stream', { skip }, async () => {
  const img = await source.get(ref);
  await source.tag(ref, `${registry.host}/fixtures/busybox:2`);
  await source.tag(ref, 'localhost/other:1');
  try {
    const byRepo = await saveTo(source, [`${registry.host}/fixtures/busybox`], file('by-repo.tar'));
    const m = JSON.parse(await member(byRepo, 'manifest.json'));
    assert.deepEqual(m[0].RepoTags.sort(), [`${registry.host}/fixtures/busybox:1`, `${registry.host}/fixtures/busybox:2`]);
    assert.equal(JSON.parse(await member(byRepo, 'index.json')).manifests.length, 2);

    const byId = await saveTo(source, [img.id], file('by-id.tar'));
    assert.equal(JSON.parse(await member(byId, 'manifest.json'))[0].RepoTags, null);
    const idx = JSON.parse(await member(byId, 'index.json'));
    assert.equal(idx.manifests.length, 1);
    assert.equal(idx.manifests[0].annotations, undefined);
    const [loaded] = await fresh().load(byId);
    assert.deepEqual(loaded!.repoTags, []);

    await assert.rejects(saveTo(source, ['localhost/nope:1'], file('nope.tar')), NotFoundError);
    assert.throws(() => source.save([]), ValidationError);
  } finally {
    await source.remove(`${registry.host}/fixtures/busybox:2`);
    await source.remove('localhost/other:1');
  }
});

/** A one-layer docker-save archive made by hand. */
function handmadeArchive(path: string, layer: TarEntrySpec[], { repoTag = 'localhost/hand:1' } = {}): void {
  const layerTar = buildTar(layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] } }));
  writeFileSync(path, buildTar([
    { name: 'layer.tar', content: layerTar },
    { name: 'config.json', content: config },
    { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: [repoTag], Layers: ['layer.tar'] }]) },
  ]));
}

test('malformed and tampered archives: typed errors, the store exactly as before', { skip }, async () => {
  const good = await saveTo(source, [ref], file('good.tar'));
  const skopeoArchive = file('skopeo-legacy.tar');
  await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `docker-archive:${skopeoArchive}:localhost/legacy:1`]);
  const img = await source.get(ref);
  const bigLayer = img.layers[0]!.diffId.slice(7);

  const cases: Array<[string, () => Promise<string>, (e: unknown) => boolean]> = [
    ['manifest.json is not JSON', () => rewriteTar(good, file('bad-json.tar'), (d) => writeFileSync(join(d, 'manifest.json'), '{not json')),
      (e) => e instanceof ImageFormatError && /manifest\.json is not valid JSON/.test(e.message)],
    ['manifest.json has the wrong shape', () => rewriteTar(good, file('bad-shape.tar'), (d) => writeFileSync(join(d, 'manifest.json'), '[{"Config": 5}]')),
      (e) => e instanceof ImageFormatError && /Config is not a string/.test(e.message)],
    ['manifest.json names a missing layer', () => rewriteTar(good, file('missing.tar'), (d) => {
      const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
      m[0].Layers[1] = 'blobs/sha256/nothing';
      writeFileSync(join(d, 'manifest.json'), JSON.stringify(m));
    }), (e) => e instanceof ImageFormatError && /not in the archive/.test(e.message)],
    ['a blob that does not hash to its name', () => rewriteTar(good, file('bad-blob.tar'), (d) => {
      const p = join(d, 'blobs/sha256', bigLayer);
      const b = readFileSync(p);
      b[b.length >> 1]! ^= 1;
      writeFileSync(p, b);
    }), (e) => e instanceof DigestMismatchError && e.expected === `sha256:${bigLayer}`],
    ['a legacy-layout layer (skopeo docker-archive) whose content changed', () => rewriteTar(skopeoArchive, file('bad-legacy.tar'), (d) => {
      const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
      const p = join(d, m[0].Layers[0]);
      const b = readFileSync(p);
      b[b.length >> 1]! ^= 1;
      writeFileSync(p, b);
    }), (e) => e instanceof DigestMismatchError || e instanceof LayerFormatError],
    ['a truncated archive', async () => {
      const p = file('truncated.tar');
      writeFileSync(p, readFileSync(good).subarray(0, 700_000));
      return p;
    }, (e) => e instanceof ImageFormatError && /truncated/.test(e.message)],
    ['a member outside the archive', async () => {
      const p = file('dotdot.tar');
      writeFileSync(p, buildTar([{ name: '../escape', content: 'x' }]));
      return p;
    }, (e) => e instanceof ImageFormatError && /unsafe name/.test(e.message)],
    ['a layer entry that escapes through a symlink', async () => {
      const p = file('evil-layer.tar');
      handmadeArchive(p, [{ name: 'link', type: 'symlink', linkname: '/tmp' }, { name: 'link/pwned', content: 'x' }]);
      return p;
    }, (e) => e instanceof UnsafeLayerEntryError && e.entry === 'link/pwned'],
    ['neither manifest.json nor index.json', async () => {
      const p = file('empty.tar');
      writeFileSync(p, buildTar([{ name: 'hello', content: 'x' }]));
      return p;
    }, (e) => e instanceof ImageFormatError && /neither manifest\.json/.test(e.message)],
    ['a bad tag in RepoTags', async () => {
      const p = file('bad-tag.tar');
      handmadeArchive(p, [{ name: 'f', content: 'x' }], { repoTag: 'localhost/Bad:tag' });
      return p;
    }, (e) => e instanceof ImageFormatError && /RepoTags/.test(e.message)],
  ];
  // Against an empty store and one that already has the image's layers (other code paths).
  for (const svc of [fresh(), source]) {
    const snapshot = storeSnapshot(svc);
    for (const [what, make, check] of cases) {
      const path = await make();
      await assert.rejects(svc.load(path), (e: unknown) => {
        assert.ok(isBerthError(e), `${what}: ${String(e)}`);
        assert.ok(check(e), `${what}: ${String(e)}`);
        return true;
      }, what);
      assert.equal(storeSnapshot(svc), snapshot, `${what}: store changed`);
    }
  }
  // The handmade format itself is fine when the layer is.
  const ok = file('hand-ok.tar');
  handmadeArchive(ok, [{ name: 'hello', content: 'handmade\n' }]);
  const svc = fresh();
  const [img2] = await svc.load(ok);
  assert.deepEqual(img2!.repoTags, ['localhost/hand:1']);
  await svc.unpack('localhost/hand:1', file('hand-unpacked'), { devices: true });
  assert.equal(readFileSync(join(file('hand-unpacked'), 'hello'), 'utf8'), 'handmade\n');
});

function busyboxRootfsTar(): Buffer {
  return buildTar([
    { name: 'bin/', type: 'dir' },
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
    { name: 'etc/', type: 'dir' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { name: 'srv/', type: 'dir', mode: 0o750, uid: 33, gid: 33 },
    { name: 'srv/data', content: 'data\n', uid: 33, gid: 33, mode: 0o640 },
  ]);
}

test('import: a rootfs tarball (plain path, gzip stream) with config and changes, pushed and read back by skopeo + umoci', { skip }, async () => {
  const svc = fresh();
  const plain = file('rootfs.tar');
  writeFileSync(plain, busyboxRootfsTar());
  const img = await svc.import(plain, {
    ref: 'localhost/imported:1',
    config: { Env: ['PATH=/bin'], User: 'root' },
    changes: ['CMD ["sh", "-c", "echo hi"]', 'ENV A=1 B="two words"', 'WORKDIR /srv', 'WORKDIR sub', 'LABEL org.example.x=y', 'EXPOSE 8080 53/udp'],
  });
  assert.deepEqual(img.repoTags, ['localhost/imported:1']);
  assert.equal(img.layers.length, 1);
  assert.equal(img.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  assert.equal(img.layers[0]!.diffId, sha256(readFileSync(plain)));
  assert.deepEqual(img.config.Cmd, ['sh', '-c', 'echo hi']);
  assert.deepEqual(img.config.Env, ['PATH=/bin', 'A=1', 'B=two words']);
  assert.equal(img.config.WorkingDir, '/srv/sub');
  assert.equal(img.config.User, 'root');
  assert.deepEqual(img.config.Labels, { 'org.example.x': 'y' });
  assert.deepEqual(img.config.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
  assert.ok(img.created instanceof Date && Math.abs(img.created.getTime() - Date.now()) < 60_000);
  const history = await img.history();
  assert.equal(history.length, 1);
  assert.equal(history[0]!.Comment, `Imported from ${plain}`);
  assert.equal(history[0]!.Id, img.id);
  const dest = file('imported-unpack');
  await svc.unpack(img.id, dest, { devices: true });
  const tree = describeTree(dest);
  assert.equal(tree.get('srv/data')?.owner, '33:33');
  assert.equal(tree.get('bin/sh')?.target, 'busybox');

  // gzip, from a stream: same diff id, so the same shared layer; another blob.
  const gz = file('rootfs.tar.gz');
  writeFileSync(gz, gzipSync(readFileSync(plain)));
  const z = await svc.import(createReadStream(gz), { ref: 'localhost/imported:gz', message: 'from gzip' });
  assert.equal(z.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.equal(z.layers[0]!.diffId, img.layers[0]!.diffId);
  assert.equal(z.layers[0]!.digest, sha256(readFileSync(gz)));
  assert.deepEqual(await svc.store.listLayers(), [img.layers[0]!.chainId]);
  assert.equal((await z.history())[0]!.Comment, 'from gzip');

  // A registry and two independent tools accept what import made.
  await svc.push('localhost/imported:gz', { targetRef: `${registry.host}/imported/rootfs:1` });
  const oci = file('imported-oci');
  await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${registry.host}/imported/rootfs:1`, `oci:${oci}:t`]);
  await run('umoci', ['unpack', '--image', `${oci}:t`, file('imported-bundle')]);
  assert.deepEqual(diffTrees(describeTree(join(file('imported-bundle'), 'rootfs')), tree, ['umoci', 'berth']), []);

  // Errors: options before the tarball is read, content errors with the store untouched.
  const snapshot = storeSnapshot(svc);
  await assert.rejects(svc.import(plain, { changes: ['RUN make'] }), (e: unknown) => e instanceof ValidationError && e.option === 'changes[0]');
  await assert.rejects(svc.import(plain, { ref: 'x@sha256:' + '0'.repeat(64) }), ValidationError);
  await assert.rejects(svc.import(file('no-such.tar')), NotFoundError);
  const junk = file('junk.tar');
  writeFileSync(junk, Buffer.alloc(4096, 7));
  await assert.rejects(svc.import(junk), LayerFormatError);
  const evil = file('evil-rootfs.tar');
  writeFileSync(evil, buildTar([{ name: '../../etc/evil', content: 'x' }]));
  await assert.rejects(svc.import(evil), UnsafeLayerEntryError);
  assert.equal(storeSnapshot(svc), snapshot);
});
