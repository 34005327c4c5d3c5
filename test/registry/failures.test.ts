/**
 * Auth and failure paths against a real registry: basic auth (right, wrong, missing, from a
 * Docker config.json), 404s, a tampered blob, a truncated blob, a connection cut mid-blob
 * (resumed with Range), a registry that stays down, and a layer that tries to escape.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ImageService } from '../../lib/image/image-service.js';
import { DigestMismatchError, RegistryError, SizeMismatchError, UnauthorizedError, UnsafeLayerEntryError } from '../../lib/image/errors.js';
import { NotFoundError, isBerthError } from '../../lib/errors.js';
import { registryToolsMissing, run, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { buildTar, type TarEntrySpec } from '../helpers/tar-builder.js';
import { startProxy } from '../helpers/registry-proxy.js';

const skip = registryToolsMissing();

let plain: TestRegistry;
let secured: TestRegistry;
let work: { path: string; remove: () => void };
const creds = { username: 'berth', password: 'correct horse' };

/** A one-layer image (plus a busybox base when `base`) from a crafted tar, pushed as `repo`. */
async function pushTarImage(name: string, entries: TarEntrySpec[], registry: TestRegistry, repo: string): Promise<{ layerDigests: string[] }> {
  const layout = join(work.path, `layout-${name}`);
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:t`]);
  const tarPath = join(work.path, `${name}.tar`);
  writeFileSync(tarPath, buildTar(entries));
  await run('umoci', ['raw', 'add-layer', '--image', `${layout}:t`, tarPath]);
  await skopeoPush(layout, 't', registry, repo);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  return { layerDigests: manifest.layers.map((l: { digest: string }) => l.digest) };
}

before(async () => {
  if (skip) return;
  work = tempDir('berth-fail-');
  [plain, secured] = await Promise.all([startRegistry(), startRegistry({ auth: creds })]);
  await pushTarImage('private', [{ name: 'secret', content: 'behind basic auth' }], secured, 'private/img:1');
});

after(async () => {
  await Promise.all([plain?.stop(), secured?.stop()]);
  work?.remove();
});

let n = 0;
const fresh = (options = {}) => new ImageService(join(work.path, `state-${n++}`), options);

function storeIsClean(svc: ImageService): void {
  assert.deepEqual(readdirSync(svc.store.tmpDir), [], 'nothing left in tmp/');
  assert.deepEqual(readdirSync(svc.store.layersDir), [], 'no layer made visible');
}

test('basic auth: right password pulls, wrong password and no password are UnauthorizedError', { skip }, async () => {
  const ref = `${secured.host}/private/img:1`;
  const img = await fresh().pull(ref, { auth: creds });
  assert.equal(img.layers.length, 1);
  await assert.rejects(fresh().pull(ref, { auth: { ...creds, password: 'wrong' } }), (e: unknown) => {
    assert.ok(e instanceof UnauthorizedError, String(e));
    assert.equal(e.code, 'ERR_UNAUTHORIZED');
    assert.match(e.message, /credentials for user "berth" were rejected/);
    return true;
  });
  const svc = fresh();
  await assert.rejects(svc.pull(ref), (e: unknown) => e instanceof UnauthorizedError && /requires a username and password/.test(e.message));
  storeIsClean(svc);
});

test('basic auth from a Docker config.json (auths.<host>.auth)', { skip }, async () => {
  const dir = join(work.path, 'docker-config');
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } } }));
  const img = await fresh({ dockerConfigPath: configPath }).pull(`${secured.host}/private/img:1`);
  assert.equal(img.layers.length, 1);
  writeFileSync(configPath, JSON.stringify({ auths: { [`https://${secured.host}`]: { auth: Buffer.from('berth:nope').toString('base64') } } }));
  await assert.rejects(fresh({ dockerConfigPath: configPath }).pull(`${secured.host}/private/img:1`), UnauthorizedError);
});

test('unknown tag and unknown repository are NotFoundError', { skip }, async () => {
  await pushTarImage('known', [{ name: 'f', content: 'known' }], plain, 'known/img:1');
  const svc = fresh();
  await assert.rejects(svc.pull(`${plain.host}/known/img:nope`), (e: unknown) => e instanceof NotFoundError && e.code === 'ERR_NOT_FOUND' && /known\/img:nope/.test(e.message));
  await assert.rejects(svc.pull(`${plain.host}/unknown/repo:1`), NotFoundError);
  await assert.rejects(svc.pull(`${plain.host}/known/img@sha256:${'0'.repeat(64)}`), NotFoundError);
  storeIsClean(svc);
});

test('a tampered blob is a DigestMismatchError and leaves the store intact', { skip }, async () => {
  const svc = fresh();
  // An image pulled before must survive the failed pull untouched.
  await pushTarImage('good', [{ name: 'good', content: 'good content' }], plain, 'good/img:1');
  const good = await svc.pull(`${plain.host}/good/img:1`);
  const { layerDigests } = await pushTarImage('tamper', [{ name: 'tampered', content: 'x'.repeat(100_000) }], plain, 'tamper/img:1');
  const file = plain.blobFile(layerDigests[0]!);
  const bytes = readFileSync(file);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  writeFileSync(file, bytes);
  await assert.rejects(svc.pull(`${plain.host}/tamper/img:1`), (e: unknown) => {
    assert.ok(e instanceof DigestMismatchError, String(e));
    assert.equal(e.expected, layerDigests[0]);
    return true;
  });
  assert.ok(!(await svc.store.hasBlob(layerDigests[0]!)));
  assert.deepEqual(readdirSync(svc.store.tmpDir), []);
  assert.deepEqual(await svc.store.listLayers(), good.layers.map((l) => l.chainId));
  await svc.unpack(`${plain.host}/good/img:1`, join(work.path, 'good-after-tamper'));
  assert.equal(readFileSync(join(work.path, 'good-after-tamper', 'good'), 'utf8'), 'good content');
  await assert.rejects(svc.get(`${plain.host}/tamper/img:1`), NotFoundError);
});

test('a truncated blob is a SizeMismatchError', { skip }, async () => {
  const { layerDigests } = await pushTarImage('trunc', [{ name: 'truncated', content: Buffer.alloc(300_000, 1) }], plain, 'trunc/img:1');
  const file = plain.blobFile(layerDigests[0]!);
  writeFileSync(file, readFileSync(file).subarray(0, 100));
  const svc = fresh();
  await assert.rejects(svc.pull(`${plain.host}/trunc/img:1`), (e: unknown) => e instanceof SizeMismatchError && e.code === 'ERR_SIZE_MISMATCH');
  storeIsClean(svc);
});

test('a connection cut mid-blob is resumed with a Range request', { skip }, async () => {
  const content = randomBytes(2_000_000); // incompressible: the cut lands inside the blob
  const { layerDigests } = await pushTarImage('resume', [{ name: 'big', content }], plain, 'resume/img:1');
  const proxy = await startProxy(plain.host, { cutBlobAfter: 300_000, cuts: 1 });
  try {
    const svc = fresh();
    await svc.pull(`${proxy.host}/resume/img:1`);
    // The client resumes after the bytes it really received (some were in flight at the cut).
    assert.equal(proxy.ranges.length, 1);
    const [digest, range] = proxy.ranges[0]!.split(' ');
    assert.equal(digest, layerDigests[0]);
    const from = Number(/^bytes=(\d+)-$/.exec(range!)![1]);
    assert.ok(from > 0 && from <= 300_000, range);
    const dest = join(work.path, 'resumed');
    await svc.unpack(`${proxy.host}/resume/img:1`, dest);
    assert.ok(readFileSync(join(dest, 'big')).equals(content));
  } finally {
    await proxy.stop();
  }
});

test('a registry that goes down mid-pull: typed error, store intact, the next pull resumes', { skip }, async () => {
  const content = randomBytes(1_000_000);
  const { layerDigests } = await pushTarImage('down', [{ name: 'big', content }], plain, 'down/img:1');
  const proxy = await startProxy(plain.host, { cutBlobAfter: 200_000, cuts: Infinity });
  try {
    const svc = fresh();
    await assert.rejects(svc.pull(`${proxy.host}/down/img:1`), (e: unknown) => {
      assert.ok(isBerthError(e) && e instanceof RegistryError, String(e));
      assert.equal(e.code, 'ERR_REGISTRY_UNREACHABLE');
      return true;
    });
    assert.deepEqual(readdirSync(svc.store.layersDir), []);
    assert.ok(!(await svc.store.hasBlob(layerDigests[0]!)));
    // The verified prefix stays in tmp/ (never visible as a blob) for the next attempt.
    assert.deepEqual(readdirSync(svc.store.tmpDir), [`blob-${layerDigests[0]!.slice(7)}.partial`]);
    proxy.behaviour.cuts = 0;
    proxy.ranges.length = 0;
    await svc.pull(`${proxy.host}/down/img:1`);
    assert.equal(proxy.ranges.length, 1);
    assert.match(proxy.ranges[0]!, new RegExp(`^${layerDigests[0]} bytes=[1-9][0-9]*-$`));
    assert.deepEqual(readdirSync(svc.store.tmpDir), []);
    const dest = join(work.path, 'after-down');
    await svc.unpack(`${proxy.host}/down/img:1`, dest);
    assert.ok(readFileSync(join(dest, 'big')).equals(content));
  } finally {
    await proxy.stop();
  }
});

test('blob redirects are followed', { skip }, async () => {
  await pushTarImage('redir', [{ name: 'r', content: 'redirected' }], plain, 'redir/img:1');
  const proxy = await startProxy(plain.host, { redirectBlobs: true });
  try {
    const svc = fresh();
    await svc.pull(`${proxy.host}/redir/img:1`);
    const dest = join(work.path, 'redirected');
    await svc.unpack(`${proxy.host}/redir/img:1`, dest);
    assert.equal(readFileSync(join(dest, 'r'), 'utf8'), 'redirected');
  } finally {
    await proxy.stop();
  }
});

test('a layer that escapes its directory is refused, naming the layer and the entry', { skip }, async () => {
  const outside = join(work.path, 'outside');
  mkdirSync(outside, { recursive: true });
  const { layerDigests } = await pushTarImage('evil', [
    { name: 'ok', content: 'fine' },
    { name: 'link', type: 'symlink', linkname: outside },
    { name: 'link/pwned', content: 'escaped' },
  ], plain, 'evil/img:1');
  const svc = fresh();
  await assert.rejects(svc.pull(`${plain.host}/evil/img:1`), (e: unknown) => {
    assert.ok(e instanceof UnsafeLayerEntryError, String(e));
    assert.equal(e.layer, layerDigests[0]);
    assert.equal(e.entry, 'link/pwned');
    return true;
  });
  assert.ok(!existsSync(join(outside, 'pwned')));
  storeIsClean(svc);
});

test('aborting a pull with an AbortSignal', { skip }, async () => {
  const content = Buffer.alloc(1_000_000, 3);
  await pushTarImage('abort', [{ name: 'big', content }], plain, 'abort/img:1');
  const svc = fresh();
  const ac = new AbortController();
  ac.abort(new Error('user cancelled'));
  await assert.rejects(svc.pull(`${plain.host}/abort/img:1`, { signal: ac.signal }), (e: unknown) => isBerthError(e) && e.code === 'ABORT_ERR');
  storeIsClean(svc);
});
