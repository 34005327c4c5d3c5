/**
 * A fingerprint of everything visible in a berth store (blobs, layers, records, refs, tmp/),
 * to assert that a failed operation left it exactly as it was.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageService } from '../../lib/image/image-service.js';

export function storeSnapshot(svc: ImageService): string {
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);
  const refs = join(svc.store.imagesDir, 'refs.json');
  return JSON.stringify({
    blobs: list(svc.store.blobsDir),
    layers: list(svc.store.layersDir),
    records: list(join(svc.store.imagesDir, 'manifests')),
    refs: existsSync(refs) ? JSON.parse(readFileSync(refs, 'utf8')) : null,
    tmp: list(svc.store.tmpDir).filter((n) => !n.endsWith('.partial')),
  }, null, 1);
}
