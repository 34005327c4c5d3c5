/**
 * Registry trust (issue 10, item 5), against a hostile registry on 127.0.0.1 and a second
 * origin (another loopback address, or another port) that records every request:
 *
 * - credentials (Basic, or the Bearer token they buy) go to the registry's own origin only:
 *   not to an upload `Location` on another host, not to where a blob GET is redirected;
 * - manifests over 4 MiB and configs over 8 MiB are refused with ContentTooLargeError, by
 *   their declared size (descriptor, Content-Length) and by the bytes that really arrive.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageService } from '../../lib/image/image-service.js';
import { ContentTooLargeError, SizeMismatchError } from '../../lib/image/errors.js';
import { tempDir } from '../helpers/registry.js';
import { sha256 } from '../helpers/fake-registry.js';
import { buildTar } from '../helpers/tar-builder.js';

const MiB = 1024 * 1024;
const creds = { username: 'owner', password: 's3cret-registry-password' };
const BASIC = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;

/** A listener that records each request's method, path and Authorization header. */
interface Recorder {
  origin: string;
  seen: Array<{ method: string; url: string; authorization?: string }>;
  stop(): Promise<void>;
}

async function listen(host: string, handler: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void): Promise<{ origin: string; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    origin: `http://${host}:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The second origin: takes uploads (201) and serves blobs it is given, recording everything. */
async function startOtherOrigin(host: string, blobs: Map<string, Buffer>): Promise<Recorder> {
  const seen: Recorder['seen'] = [];
  const l = await listen(host, (req, res) => {
    seen.push({ method: req.method!, url: req.url!, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const digest = /sha256:[a-f0-9]{64}/.exec(req.url!)?.[0];
    if (req.method === 'PUT') return void res.writeHead(201, { 'docker-content-digest': digest ?? '' }).end();
    const blob = digest ? blobs.get(digest) : undefined;
    if (!blob) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': blob.length }).end(blob);
  });
  return { ...l, seen };
}

interface Hostile {
  host: string;
  origin: string;
  manifests: Map<string, { body: Buffer; headers?: Record<string, string>; chunked?: boolean }>;
  blobs: Map<string, Buffer>;
  /** Where blob uploads (POST) and blob GETs are sent; undefined: this registry itself. */
  elsewhere: string | undefined;
  /** Paths requested, e.g. `GET /v2/app/blobs/sha256:…`. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * A registry that wants credentials (Basic, or Bearer from its own /token) and then sends
 * uploads and blob downloads to `elsewhere`.
 */
async function startHostile(scheme: 'basic' | 'bearer'): Promise<Hostile> {
  const h: Partial<Hostile> = { manifests: new Map(), blobs: new Map(), requests: [], elsewhere: undefined };
  const l = await listen('127.0.0.1', (req, res, body) => {
    const url = new URL(req.url!, 'http://x');
    h.requests!.push(`${req.method} ${url.pathname}`);
    if (url.pathname === '/token') {
      if (req.headers.authorization !== BASIC) return void res.writeHead(401).end();
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'registry-bearer-token', expires_in: 300 }));
    }
    const ok = scheme === 'basic' ? req.headers.authorization === BASIC : req.headers.authorization === 'Bearer registry-bearer-token';
    if (!ok) {
      const challenge = scheme === 'basic' ? 'Basic realm="hostile"' : `Bearer realm="${h.origin}/token",service="hostile"`;
      return void res.writeHead(401, { 'www-authenticate': challenge }).end();
    }
    if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
    const m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(url.pathname);
    if (m) {
      const entry = h.manifests!.get(m[2]!);
      if (req.method === 'PUT') return void res.writeHead(201, { 'docker-content-digest': sha256(body) }).end();
      if (!entry) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...(entry.chunked ? {} : { 'content-length': String(entry.body.length) }), ...entry.headers });
      if (entry.chunked) {
        // No Content-Length: the client has only the bytes themselves to count.
        for (let off = 0; off < entry.body.length; off += 64 * 1024) res.write(entry.body.subarray(off, off + 64 * 1024));
        return void res.end();
      }
      return void res.end(entry.body);
    }
    const b = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
    if (b) {
      const blob = h.blobs!.get(b[2]!);
      if (req.method === 'HEAD') return void res.writeHead(blob ? 200 : 404, blob ? { 'content-length': blob.length } : {}).end();
      if (h.elsewhere) return void res.writeHead(307, { location: `${h.elsewhere}/cdn/${b[2]}` }).end();
      if (!blob) return void res.writeHead(404).end();
      return void res.writeHead(200, { 'content-length': blob.length }).end(blob);
    }
    if (req.method === 'POST' && /^\/v2\/(.+)\/blobs\/uploads\/$/.test(url.pathname)) {
      return void res.writeHead(202, { location: `${h.elsewhere ?? h.origin}/upload/${Math.random().toString(36).slice(2)}` }).end();
    }
    res.writeHead(404).end();
  });
  h.origin = l.origin;
  h.host = l.origin.slice('http://'.length);
  h.stop = l.stop;
  return h as Hostile;
}

let work: { path: string; remove: () => void };
let source: ImageService;
const LOCAL = 'localhost/trust:1';

before(async () => {
  work = tempDir('berth-trust-');
  source = new ImageService(join(work.path, 'source'));
  const tar = join(work.path, 'rootfs.tar');
  writeFileSync(tar, buildTar([{ name: 'hello', content: 'world' }]));
  await source.import(tar, { ref: LOCAL });
});
after(() => work?.remove());

let n = 0;
const fresh = () => new ImageService(join(work.path, `state-${n++}`));

for (const scheme of ['basic', 'bearer'] as const) {
  for (const [label, otherHost] of [['another loopback address', '127.0.0.2'], ['another port', '127.0.0.1']] as const) {
    test(`push (${scheme}): an upload Location on ${label} gets the blobs but not the credentials`, async () => {
      const registry = await startHostile(scheme);
      const other = await startOtherOrigin(otherHost, new Map());
      registry.elsewhere = other.origin;
      try {
        await source.push(LOCAL, { targetRef: `${registry.host}/app:1`, auth: creds });
        const puts = other.seen.filter((r) => r.method === 'PUT');
        assert.equal(puts.length, 2, 'the attack happened: both blobs (layer, config) were uploaded to the other origin');
        assert.deepEqual(other.seen.filter((r) => r.authorization !== undefined), [], 'no Authorization header reached the other origin');
      } finally {
        await Promise.all([registry.stop(), other.stop()]);
      }
    });
  }

  test(`pull (${scheme}): blob GETs redirected to another origin (a CDN) are followed without credentials`, async () => {
    const registry = await startHostile(scheme);
    const layer = buildTar([{ name: 'file', content: 'from the cdn' }]);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
    const cdnBlobs = new Map([[sha256(layer), layer], [sha256(config), config]]);
    const cdn = await startOtherOrigin('127.0.0.2', cdnBlobs);
    registry.elsewhere = cdn.origin;
    registry.manifests.set('1', {
      body: Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      })),
    });
    try {
      const img = await fresh().pull(`${registry.host}/app:1`, { auth: creds, platform: 'linux/amd64' });
      assert.equal(img.layers.length, 1);
      assert.equal(cdn.seen.filter((r) => r.method === 'GET').length, 2, 'both blobs came from the CDN');
      assert.deepEqual(cdn.seen.filter((r) => r.authorization !== undefined), []);
    } finally {
      await Promise.all([registry.stop(), cdn.stop()]);
    }
  });
}

function clean(svc: ImageService): void {
  assert.deepEqual(readdirSync(svc.store.tmpDir).filter((f) => !f.endsWith('.partial')), []);
  assert.deepEqual(readdirSync(svc.store.layersDir), []);
}

test('a manifest over 4 MiB is refused: by Content-Length, and by the bytes of a chunked body', async () => {
  const registry = await startHostile('basic');
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', padding: 'x'.repeat(5 * MiB) }));
  registry.manifests.set('declared', { body });
  registry.manifests.set('chunked', { body, chunked: true });
  try {
    for (const tag of ['declared', 'chunked']) {
      const svc = fresh();
      await assert.rejects(svc.pull(`${registry.host}/app:${tag}`, { auth: creds }), (e: unknown) => {
        assert.ok(e instanceof ContentTooLargeError, String(e));
        assert.equal(e.code, 'ERR_CONTENT_TOO_LARGE');
        assert.equal(e.kind, 'manifest');
        assert.equal(e.limit, 4 * MiB);
        return true;
      });
      clean(svc);
    }
  } finally {
    await registry.stop();
  }
});

test('an index entry declaring a manifest over 4 MiB is refused before it is fetched', async () => {
  const registry = await startHostile('basic');
  const big = `sha256:${'ab'.repeat(32)}`;
  registry.manifests.set('1', {
    body: Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: big, size: 64 * MiB, platform: { os: 'linux', architecture: 'amd64' } }],
    })),
    headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
  });
  try {
    await assert.rejects(fresh().pull(`${registry.host}/app:1`, { auth: creds, platform: 'linux/amd64' }), (e: unknown) => e instanceof ContentTooLargeError && e.kind === 'manifest' && e.size === 64 * MiB);
    assert.ok(!registry.requests.includes(`GET /v2/app/manifests/${big}`));
  } finally {
    await registry.stop();
  }
});

test('a config over 8 MiB is refused by its declared size, before a byte of it is downloaded', async () => {
  const registry = await startHostile('basic');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, padding: 'x'.repeat(9 * MiB) }));
  registry.blobs.set(sha256(config), config);
  registry.manifests.set('1', {
    body: Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [],
    })),
  });
  try {
    const svc = fresh();
    await assert.rejects(svc.pull(`${registry.host}/app:1`, { auth: creds }), (e: unknown) => {
      assert.ok(e instanceof ContentTooLargeError, String(e));
      assert.equal(e.kind, 'config');
      assert.equal(e.what, sha256(config));
      assert.equal(e.size, config.length);
      assert.equal(e.limit, 8 * MiB);
      return true;
    });
    assert.ok(!registry.requests.includes(`GET /v2/app/blobs/${sha256(config)}`), 'the config was not downloaded');
    clean(svc);
  } finally {
    await registry.stop();
  }
});

test('a config that declares a small size but streams more is cut off at the declared size', async () => {
  const registry = await startHostile('basic');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, padding: 'x'.repeat(32 * MiB) }));
  registry.blobs.set(sha256(config), config);
  registry.manifests.set('1', {
    body: Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: 1024 },
      layers: [],
    })),
  });
  try {
    const svc = fresh();
    await assert.rejects(svc.pull(`${registry.host}/app:1`, { auth: creds }), (e: unknown) => e instanceof SizeMismatchError && e.expected === 1024);
    clean(svc);
  } finally {
    await registry.stop();
  }
});
