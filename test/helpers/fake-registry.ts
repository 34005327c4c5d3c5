/**
 * A scriptable registry for what a real one will not serve: malformed or schema-1 manifests,
 * lying descriptors, multi-platform indexes, and the Bearer token flow (Docker Hub style).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface FakeRegistry {
  host: string;
  manifests: Map<string, { body: Buffer; contentType: string; digestHeader?: string }>;
  blobs: Map<string, Buffer>;
  tokenRequests: string[];
  blobGets: string[];
  stop(): Promise<void>;
}

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function startFakeRegistry({ bearer, listen = '127.0.0.1' }: { bearer?: { username: string; password: string }; listen?: string } = {}): Promise<FakeRegistry> {
  const manifests = new Map<string, { body: Buffer; contentType: string; digestHeader?: string }>();
  const blobs = new Map<string, Buffer>();
  const tokenRequests: string[] = [];
  const blobGets: string[] = [];
  let host = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, `http://${req.headers.host}`);
    if (url.pathname === '/token') {
      tokenRequests.push(url.search);
      const expected = bearer ? `Basic ${Buffer.from(`${bearer.username}:${bearer.password}`).toString('base64')}` : undefined;
      if (expected && req.headers.authorization !== expected) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `token:${url.searchParams.getAll('scope').join(' ')}`, expires_in: 300 }));
      return;
    }
    if (bearer) {
      const repo = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(url.pathname)?.[1];
      const scope = repo ? `repository:${repo}:pull` : '';
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Bearer token:') || (repo && !auth.includes(scope))) {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${host}/token",service="fake-registry"${scope ? `,scope="${scope}"` : ''}`,
          'content-type': 'application/json',
        }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
    }
    if (url.pathname === '/v2/') {
      res.writeHead(200).end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(url.pathname);
    if (m) {
      const entry = manifests.get(`${m[1]}:${m[2]}`) ?? [...manifests.entries()].find(([k, v]) => k.startsWith(`${m[1]}:`) && sha256(v.body) === m[2])?.[1];
      if (!entry) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
        return;
      }
      res.writeHead(200, { 'content-type': entry.contentType, 'docker-content-digest': entry.digestHeader ?? sha256(entry.body), 'content-length': entry.body.length });
      res.end(req.method === 'HEAD' ? undefined : entry.body);
      return;
    }
    const b = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
    if (b) {
      blobGets.push(b[2]!);
      const blob = blobs.get(b[2]!);
      if (!blob) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length }).end(blob);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, listen, resolve));
  const port = (server.address() as AddressInfo).port;
  host = `${listen === '0.0.0.0' ? '127.0.0.1' : listen}:${port}`;
  return {
    get host() {
      return host;
    },
    set host(h: string) {
      host = h;
    },
    manifests,
    blobs,
    tokenRequests,
    blobGets,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  } as FakeRegistry;
}

export interface FakeImageOptions {
  layers: Buffer[];
  architecture?: string;
  variant?: string;
  layerMediaType?: string;
  manifestMediaType?: string;
  /** Override parts of the config JSON. */
  config?: Record<string, unknown>;
  /** Lie about the config's size in the manifest. */
  configSizeDelta?: number;
}

/** Adds blobs for an image and returns its manifest bytes (not yet published under a tag). */
export function addImage(reg: FakeRegistry, o: FakeImageOptions): { manifest: Buffer; mediaType: string; configDigest: string; layerDigests: string[] } {
  const layerBlobs = o.layers.map((tar) => gzipSync(tar));
  const config = Buffer.from(JSON.stringify({
    architecture: o.architecture ?? 'amd64',
    ...(o.variant ? { variant: o.variant } : {}),
    os: 'linux',
    config: { Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: o.layers.map((t) => sha256(t)) },
    ...(o.config ?? {}),
  }));
  reg.blobs.set(sha256(config), config);
  for (const b of layerBlobs) reg.blobs.set(sha256(b), b);
  const mediaType = o.manifestMediaType ?? 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length + (o.configSizeDelta ?? 0) },
    layers: layerBlobs.map((b) => ({ mediaType: o.layerMediaType ?? 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(b), size: b.length })),
  }));
  return { manifest, mediaType, configDigest: sha256(config), layerDigests: layerBlobs.map((b) => sha256(b)) };
}

export function publish(reg: FakeRegistry, repoTag: string, body: Buffer, contentType: string, digestHeader?: string): void {
  reg.manifests.set(repoTag, { body, contentType, ...(digestHeader ? { digestHeader } : {}) });
}
