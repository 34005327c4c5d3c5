/**
 * Writes a minimal OCI image layout (oci-layout, index.json, blobs/sha256/…) from layer tars,
 * for images no tool makes easily (e.g. 120 layers). Independent of lib/image.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface LayoutImage {
  /** Uncompressed layer tars, base first. */
  layers: Buffer[];
  /** The `config` part of the image config (Cmd, Env, …). */
  config?: Record<string, unknown>;
  /** `org.opencontainers.image.ref.name` of the manifest. */
  tag: string;
  created?: string;
}

/** Creates the layout in `dir`; returns the manifest and config digests. */
export function writeOciLayout(dir: string, image: LayoutImage): { manifestDigest: string; configDigest: string } {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    const d = digestOf(b);
    writeFileSync(join(blobs, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const layers = image.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(l) }));
  const created = image.created ?? '2024-01-01T00:00:00Z';
  const config = Buffer.from(JSON.stringify({
    created,
    architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    os: 'linux',
    config: image.config ?? {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    history: layers.map((_, i) => ({ created, created_by: `layer ${i}` })),
  }));
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers }));
  const manifestDesc = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifestDesc, annotations: { 'org.opencontainers.image.ref.name': image.tag } }],
  }));
  return { manifestDigest: manifestDesc.digest, configDigest: configDesc.digest };
}
