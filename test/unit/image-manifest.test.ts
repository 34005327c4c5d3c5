import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MediaType, parseManifest, parseImageConfig, selectPlatform, parsePlatform, hostPlatform, layerCompression, platformMatches,
  type ImageIndex,
} from '../../lib/image/manifest.js';
import { ContentTooLargeError, ImageFormatError, PlatformNotFoundError } from '../../lib/image/errors.js';

const dg = (c: string) => 'sha256:' + c.repeat(64);
const desc = (mediaType: string, c: string, size = 10, extra: object = {}) => ({ mediaType, digest: dg(c), size, ...extra });

const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifest,
  config: desc(MediaType.DockerConfig, 'c'),
  layers: [desc(MediaType.DockerLayerGzip, '1'), desc(MediaType.DockerLayerGzip, '2')],
};

function isFormatError(code: string, re?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ImageFormatError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  };
}

test('Docker schema2 manifest', () => {
  const m = parseManifest(JSON.stringify(dockerManifest));
  assert.equal(m.kind, 'manifest');
  assert.equal(m.mediaType, MediaType.DockerManifest);
  if (m.kind !== 'manifest') return;
  assert.equal(m.layers.length, 2);
  assert.equal(m.config.digest, dg('c'));
});

test('OCI manifest without mediaType field uses the header, then the shape', () => {
  const { mediaType: _, ...body } = { ...dockerManifest, mediaType: undefined, config: desc(MediaType.OciConfig, 'c'), layers: [desc(MediaType.OciLayerGzip, '1')] };
  assert.equal(parseManifest(JSON.stringify(body), `${MediaType.OciManifest}; charset=utf-8`).mediaType, MediaType.OciManifest);
  assert.equal(parseManifest(JSON.stringify(body)).mediaType, MediaType.OciManifest);
  const index = { schemaVersion: 2, manifests: [] };
  assert.equal(parseManifest(JSON.stringify(index)).mediaType, MediaType.OciIndex);
});

test('Docker manifest list and OCI index', () => {
  for (const mediaType of [MediaType.DockerManifestList, MediaType.OciIndex]) {
    const idx = parseManifest(JSON.stringify({
      schemaVersion: 2, mediaType,
      manifests: [desc(MediaType.DockerManifest, 'a', 5, { platform: { os: 'linux', architecture: 'amd64' } })],
    }));
    assert.equal(idx.kind, 'index');
    assert.equal(idx.mediaType, mediaType);
  }
});

test('schema1 is rejected with a clear error', () => {
  const s1 = JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] });
  assert.throws(() => parseManifest(s1), isFormatError('ERR_SCHEMA1', /schema 1.*not supported/));
  assert.throws(() => parseManifest('{}', MediaType.DockerSchema1Signed), isFormatError('ERR_SCHEMA1'));
  assert.throws(() => parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerSchema1 })), isFormatError('ERR_SCHEMA1'));
});

test('unknown media types and malformed manifests are typed errors', () => {
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, mediaType: 'application/vnd.example+json' })), isFormatError('ERR_UNSUPPORTED_MEDIA_TYPE', /vnd.example/));
  assert.throws(() => parseManifest('{not json'), isFormatError('ERR_IMAGE_FORMAT', /not valid JSON/));
  assert.throws(() => parseManifest('[]'), isFormatError('ERR_IMAGE_FORMAT', /not a JSON object/));
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, schemaVersion: 3 })), isFormatError('ERR_IMAGE_FORMAT', /schemaVersion/));
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, layers: 'x' })), isFormatError('ERR_IMAGE_FORMAT', /layers/));
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, config: { ...dockerManifest.config, size: -1 } })), isFormatError('ERR_IMAGE_FORMAT', /config.size/));
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, config: { ...dockerManifest.config, size: 2 ** 60 } })), isFormatError('ERR_IMAGE_FORMAT', /size/));
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, config: { ...dockerManifest.config, size: 1.5 } })), isFormatError('ERR_IMAGE_FORMAT', /size/));
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, layers: [{ ...dockerManifest.layers[0], digest: 'sha256:abc' }] })), isFormatError('ERR_IMAGE_FORMAT', /layers\[0\].digest/));
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, layers: [{ ...dockerManifest.layers[0], digest: 'sha512:' + 'a'.repeat(128) }] })), isFormatError('ERR_UNSUPPORTED_MEDIA_TYPE', /algorithm/));
  assert.throws(() => parseManifest(JSON.stringify({ ...dockerManifest, layers: [{ digest: dg('1'), size: 1 }] })), isFormatError('ERR_IMAGE_FORMAT', /mediaType/));
  assert.throws(() => parseManifest(Buffer.alloc(5 * 1024 * 1024, 32)), (e: unknown) => e instanceof ContentTooLargeError && e.code === 'ERR_CONTENT_TOO_LARGE' && e.kind === 'manifest' && e.limit === 4 * 1024 * 1024);
  assert.throws(() => parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ mediaType: 'x', digest: dg('a'), size: 1, platform: { os: 1 } }] })), isFormatError('ERR_IMAGE_FORMAT', /platform/));
});

test('layer compression from media type', () => {
  assert.equal(layerCompression(MediaType.DockerLayerGzip), 'gzip');
  assert.equal(layerCompression(MediaType.OciLayerGzip), 'gzip');
  assert.equal(layerCompression(MediaType.OciLayerZstd), 'zstd');
  assert.equal(layerCompression(MediaType.OciLayer), 'none');
  assert.throws(() => layerCompression('application/vnd.oci.image.layer.v1.tar+bzip2'), isFormatError('ERR_UNSUPPORTED_MEDIA_TYPE'));
});

test('image config validation', () => {
  const cfg = { os: 'linux', architecture: 'amd64', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [dg('1'), dg('2')] } };
  assert.equal(parseImageConfig(JSON.stringify(cfg), MediaType.OciConfig, 2).config?.Cmd?.[0], 'sh');
  assert.throws(() => parseImageConfig(JSON.stringify(cfg), MediaType.OciConfig, 3), isFormatError('ERR_IMAGE_FORMAT', /2 diff ids for 3/));
  const huge = JSON.stringify({ ...cfg, padding: 'x'.repeat(8 * 1024 * 1024) });
  assert.throws(() => parseImageConfig(huge, MediaType.OciConfig, 2), (e: unknown) => e instanceof ContentTooLargeError && e.kind === 'config' && e.limit === 8 * 1024 * 1024);
  assert.throws(() => parseImageConfig(JSON.stringify(cfg), 'application/vnd.example.config+json', 2), isFormatError('ERR_UNSUPPORTED_MEDIA_TYPE'));
  assert.throws(() => parseImageConfig(JSON.stringify({ ...cfg, rootfs: { type: 'x', diff_ids: [] } }), MediaType.DockerConfig, 0), isFormatError('ERR_IMAGE_FORMAT', /rootfs/));
  assert.throws(() => parseImageConfig(JSON.stringify({ ...cfg, config: { Cmd: 'sh' } }), MediaType.DockerConfig, 2), isFormatError('ERR_IMAGE_FORMAT', /Cmd/));
  assert.throws(() => parseImageConfig('nope', MediaType.DockerConfig, 2), isFormatError('ERR_IMAGE_FORMAT', /JSON/));
});

const plat = (os: string, architecture: string, variant?: string) => ({ os, architecture, ...(variant ? { variant } : {}) });
const index: ImageIndex = {
  kind: 'index',
  mediaType: MediaType.OciIndex,
  manifests: [
    { ...desc(MediaType.OciManifest, '1'), platform: plat('linux', 'arm', 'v6') },
    { ...desc(MediaType.OciManifest, '2'), platform: plat('linux', 'arm', 'v7') },
    { ...desc(MediaType.OciManifest, '3'), platform: plat('linux', 'arm64', 'v8') },
    { ...desc(MediaType.OciManifest, '4'), platform: plat('linux', 'amd64') },
    { ...desc(MediaType.OciManifest, '5'), platform: plat('windows', 'amd64') },
    { ...desc(MediaType.OciManifest, '6'), platform: plat('unknown', 'unknown'), annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
  ],
};

test('platform selection', () => {
  assert.equal(selectPlatform(index, plat('linux', 'amd64')).digest, dg('4'));
  assert.equal(selectPlatform(index, parsePlatform('linux/x86_64')).digest, dg('4'));
  assert.equal(selectPlatform(index, plat('windows', 'amd64')).digest, dg('5'));
  assert.equal(selectPlatform(index, plat('linux', 'arm64')).digest, dg('3'));
  assert.equal(selectPlatform(index, parsePlatform('linux/aarch64')).digest, dg('3'));
  assert.equal(selectPlatform(index, plat('linux', 'arm', 'v6')).digest, dg('1'));
  assert.equal(selectPlatform(index, plat('linux', 'arm')).digest, dg('2'), 'no variant asked: v7 is arm\'s default');
  assert.throws(() => selectPlatform(index, plat('linux', 'arm', 'v5')), (e: unknown) => e instanceof PlatformNotFoundError && /linux\/arm\/v5.*available: linux\/arm\/v6/.test(e.message));
  assert.throws(() => selectPlatform(index, plat('linux', 's390x')), PlatformNotFoundError);
  // arm64 with no variant written means v8
  const noVariant: ImageIndex = { ...index, manifests: [{ ...desc(MediaType.OciManifest, '7'), platform: plat('linux', 'arm64') }] };
  assert.equal(selectPlatform(noVariant, plat('linux', 'arm64', 'v8')).digest, dg('7'));
  // The default is the host platform.
  const host = hostPlatform();
  if (host.os === 'linux' && host.architecture === 'amd64') assert.equal(selectPlatform(index).digest, dg('4'));
});

test('parsePlatform and platformMatches', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), plat('linux', 'arm64', 'v8'));
  assert.deepEqual(parsePlatform('Linux/AMD64'), plat('linux', 'amd64'));
  for (const bad of ['linux', 'linux/', '/amd64', 'a/b/c/d', 'linux/am d64']) assert.throws(() => parsePlatform(bad), ImageFormatError, bad);
  assert.ok(platformMatches(plat('linux', 'arm64'), plat('linux', 'arm64', 'v8')));
  assert.ok(!platformMatches(plat('linux', 'arm64'), plat('linux', 'amd64')));
});
