/**
 * Protocol edges against a scriptable registry: the Bearer token flow, platform selection from
 * an OCI index, and manifests and descriptors that lie or are malformed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { ImageService } from '../../lib/image/image-service.js';
import { DigestMismatchError, ImageFormatError, PlatformNotFoundError, RegistryError, SizeMismatchError, UnauthorizedError } from '../../lib/image/errors.js';
import { tempDir } from '../helpers/registry.js';
import { addImage, publish, sha256, startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { buildTar } from '../helpers/tar-builder.js';

let work: { path: string; remove: () => void };
let fake: FakeRegistry;
let bearer: FakeRegistry;
const creds = { username: 'hub-user', password: 'hub-pass' };

before(async () => {
  work = tempDir('berth-fake-');
  [fake, bearer] = await Promise.all([startFakeRegistry(), startFakeRegistry({ bearer: creds })]);
});
after(async () => {
  await Promise.all([fake?.stop(), bearer?.stop()]);
  work?.remove();
});

let n = 0;
const fresh = () => new ImageService(join(work.path, `state-${n++}`));
const tar = (name: string, content: string) => buildTar([{ name, content }]);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function clean(svc: ImageService): void {
  assert.deepEqual(readdirSync(svc.store.tmpDir), []);
  assert.deepEqual(readdirSync(svc.store.layersDir), []);
}

test('Bearer token flow: realm, service and scope; credentials sent to the realm only', async () => {
  const img = addImage(bearer, { layers: [tar('hello', 'token world')] });
  publish(bearer, 'team/app:1', img.manifest, img.mediaType);
  const svc = fresh();
  await svc.pull(`${bearer.host}/team/app:1`, { auth: creds });
  assert.ok(bearer.tokenRequests.length >= 1);
  const q = new URLSearchParams(bearer.tokenRequests[0]!);
  assert.equal(q.get('service'), 'fake-registry');
  assert.deepEqual(q.getAll('scope'), ['repository:team/app:pull']);
  const dest = join(work.path, 'bearer-unpacked');
  await svc.unpack(`${bearer.host}/team/app:1`, dest);
  assert.equal(readFileSync(join(dest, 'hello'), 'utf8'), 'token world');
  await assert.rejects(fresh().pull(`${bearer.host}/team/app:1`, { auth: { ...creds, password: 'bad' } }), (e: unknown) => e instanceof UnauthorizedError && /rejected the credentials/.test(e.message));
  await assert.rejects(fresh().pull(`${bearer.host}/team/app:1`), (e: unknown) => e instanceof UnauthorizedError && /anonymous/.test(e.message));
});

test('an OCI index: the host platform by default, another on request, none that is absent', async () => {
  const amd = addImage(fake, { layers: [tar('arch', 'amd64')] });
  const arm = addImage(fake, { layers: [tar('arch', 'arm64')], architecture: 'arm64', variant: 'v8' });
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: OCI_MANIFEST, digest: sha256(arm.manifest), size: arm.manifest.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: OCI_MANIFEST, digest: sha256(amd.manifest), size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  }));
  publish(fake, 'multi/app:arm', arm.manifest, OCI_MANIFEST);
  publish(fake, 'multi/app:amd', amd.manifest, OCI_MANIFEST);
  publish(fake, 'multi/app:1', index, 'application/vnd.oci.image.index.v1+json');
  const svc = fresh();
  const host = await svc.pull(`${fake.host}/multi/app:1`, { platform: 'linux/amd64' });
  assert.equal(host.digest, sha256(amd.manifest));
  assert.equal((await svc.record(host.digest)).indexDigest, sha256(index));
  assert.deepEqual(host.repoDigests, [`${fake.host}/multi/app@${sha256(index)}`], 'RepoDigest names the index, as Docker does');
  const armImg = await svc.pull(`${fake.host}/multi/app:1`, { platform: 'linux/arm64' });
  assert.equal(armImg.digest, sha256(arm.manifest));
  assert.deepEqual(armImg.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  await assert.rejects(svc.pull(`${fake.host}/multi/app:1`, { platform: 'linux/s390x' }), (e: unknown) => e instanceof PlatformNotFoundError && /available: linux\/arm64\/v8, linux\/amd64/.test(e.message));
  // A single-platform manifest of the wrong architecture, asked for explicitly.
  await assert.rejects(fresh().pull(`${fake.host}/multi/app:arm`, { platform: 'linux/amd64' }), PlatformNotFoundError);
});

const bad: Array<[string, () => void, (e: unknown) => boolean]> = [
  ['schema 1', () => publish(fake, 'bad/app:schema1', Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'bad/app', tag: 'schema1', fsLayers: [] })), 'application/vnd.docker.distribution.manifest.v1+prettyjws'),
    (e) => e instanceof ImageFormatError && e.code === 'ERR_SCHEMA1'],
  ['bad JSON', () => publish(fake, 'bad/app:json', Buffer.from('{"schemaVersion": 2, "layers": ['), OCI_MANIFEST),
    (e) => e instanceof ImageFormatError && e.code === 'ERR_IMAGE_FORMAT' && /JSON/.test(e.message)],
  ['unknown manifest media type', () => publish(fake, 'bad/app:mt', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing+json' })), 'application/vnd.example.thing+json'),
    (e) => e instanceof ImageFormatError && e.code === 'ERR_UNSUPPORTED_MEDIA_TYPE'],
  ['unknown layer media type', () => {
    const img = addImage(fake, { layers: [tar('x', 'y')], layerMediaType: 'application/vnd.example.layer.v1.tar+lz4' });
    publish(fake, 'bad/app:layermt', img.manifest, OCI_MANIFEST);
  }, (e) => e instanceof ImageFormatError && e.code === 'ERR_UNSUPPORTED_MEDIA_TYPE' && /lz4/.test(e.message)],
  ['config size lies', () => {
    const img = addImage(fake, { layers: [tar('x', 'size')], configSizeDelta: 100 });
    publish(fake, 'bad/app:size', img.manifest, OCI_MANIFEST);
  }, (e) => e instanceof SizeMismatchError],
  ['diff id lies', () => {
    const img = addImage(fake, { layers: [tar('x', 'diff')], config: { rootfs: { type: 'layers', diff_ids: [sha256('something else')] } } });
    publish(fake, 'bad/app:diffid', img.manifest, OCI_MANIFEST);
  }, (e) => e instanceof DigestMismatchError && /diff id/.test(e.message)],
  ['Docker-Content-Digest lies', () => {
    const img = addImage(fake, { layers: [tar('x', 'dcd')] });
    publish(fake, 'bad/app:dcd', img.manifest, OCI_MANIFEST, sha256('another manifest'));
  }, (e) => e instanceof DigestMismatchError],
  ['config is not an image config', () => {
    const img = addImage(fake, { layers: [tar('x', 'cfg')], config: { rootfs: { type: 'layers', diff_ids: [] } } });
    publish(fake, 'bad/app:cfg', img.manifest, OCI_MANIFEST);
  }, (e) => e instanceof ImageFormatError && /diff ids for 1/.test(e.message)],
];

for (const [what, setup, check] of bad) {
  test(`typed error, clean store: ${what}`, async () => {
    setup();
    const tag = [...fake.manifests.keys()].at(-1)!;
    const svc = fresh();
    await assert.rejects(svc.pull(`${fake.host}/${tag}`), (e: unknown) => {
      assert.ok(check(e), `${(e as Error).name}: ${(e as Error).message}`);
      return true;
    });
    clean(svc);
  });
}

test('pulling by digest verifies the manifest against it', async () => {
  const img = addImage(fake, { layers: [tar('x', 'by-digest')] });
  publish(fake, 'digest/app:1', img.manifest, OCI_MANIFEST);
  const svc = fresh();
  const pulled = await svc.pull(`${fake.host}/digest/app@${sha256(img.manifest)}`);
  assert.equal(pulled.digest, sha256(img.manifest));
  assert.deepEqual(pulled.repoTags, []);
  // The registry answers a digest request with other bytes.
  const other = addImage(fake, { layers: [tar('x', 'impostor')] });
  fake.manifests.set(`digest/app:${sha256(img.manifest)}`, { body: other.manifest, contentType: OCI_MANIFEST, digestHeader: sha256(img.manifest) });
  await assert.rejects(fresh().pull(`${fake.host}/digest/app@${sha256(img.manifest)}`), DigestMismatchError);
});

test('plain http to a non-loopback registry needs insecure: true', async (t) => {
  const ip = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  if (!ip) {
    t.skip('no non-loopback IPv4 address on this machine');
    return;
  }
  const remote = await startFakeRegistry({ listen: ip });
  try {
    const img = addImage(remote, { layers: [tar('x', 'remote')] });
    publish(remote, 'app:1', img.manifest, OCI_MANIFEST);
    await assert.rejects(fresh().pull(`${remote.host}/app:1`), (e: unknown) => e instanceof RegistryError && e.code === 'ERR_REGISTRY_UNREACHABLE' && /insecure: true/.test(e.message));
    const pulled = await fresh().pull(`${remote.host}/app:1`, { insecure: true });
    assert.equal(pulled.layers.length, 1);
  } finally {
    await remote.stop();
  }
});
