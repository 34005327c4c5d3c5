/**
 * Deleting what nothing uses. An image record holds its manifest, config, index and layer blobs
 * and its layers (by chain id); a blob or layer is deleted only when no remaining record holds
 * it and (layers) no container uses it (`isLayerInUse`). Callers hold the `gc` lock
 * exclusively, which every pull, load and import holds shared: nothing an unfinished pull has
 * produced but not yet recorded is ever collected.
 * @module
 */
import { rm, stat } from 'node:fs/promises';
import type { ContentStore } from './content-store.js';
import type { ImageTable, StoredRecord } from './image-table.js';

export interface GcContext {
  store: ContentStore;
  table: ImageTable;
  isLayerInUse?: ((chainId: string) => boolean) | undefined;
  /** Layers and blobs held by something other than an image record (the build cache). */
  extraRoots?: (() => Promise<{ layers: Set<string>; blobs: Set<string> }>) | undefined;
}

/** What got deleted, in Docker's terms: image ids and layer (chain) ids; plus bytes freed. */
export interface Collected {
  deleted: string[];
  bytes: number;
}

function blobsOf(r: StoredRecord): string[] {
  return [r.manifestDigest, r.configDigest, ...(r.indexDigest ? [r.indexDigest] : []), ...r.layers.map((l) => l.digest)];
}

async function used(ctx: GcContext, except?: string): Promise<{ blobs: Set<string>; layers: Set<string> }> {
  const { table } = ctx;
  const extra = await ctx.extraRoots?.();
  const blobs = new Set<string>(extra?.blobs);
  const layers = new Set<string>(extra?.layers);
  for (const r of await table.allRecords()) {
    if (r.manifestDigest === except) continue;
    for (const b of blobsOf(r)) blobs.add(b);
    for (const l of r.layers) layers.add(l.chainId);
  }
  return { blobs, layers };
}

async function removeBlob(store: ContentStore, digest: string): Promise<number> {
  const size = (await store.blobSize(digest)) ?? 0;
  await store.removeBlob(digest);
  return size;
}

async function removeLayer(ctx: GcContext, chainId: string): Promise<number> {
  const meta = await ctx.store.layerMeta(chainId);
  const lock = await ctx.store.lock(`layer-${chainId.slice(7)}`);
  try {
    await ctx.store.removeLayer(chainId);
  } finally {
    lock.release();
  }
  return meta?.contentSize ?? meta?.size ?? 0;
}

/** Deletes an image's record, then its blobs and layers that nothing else uses. */
export async function deleteImage(ctx: GcContext, doomed: StoredRecord, out: Collected): Promise<void> {
  await ctx.table.deleteRecord(doomed.manifestDigest);
  const { blobs, layers } = await used(ctx, doomed.manifestDigest);
  out.deleted.push(doomed.id);
  for (const b of new Set(blobsOf(doomed))) {
    if (blobs.has(b)) continue;
    out.bytes += await removeBlob(ctx.store, b);
    out.deleted.push(b);
  }
  for (const l of doomed.layers) {
    if (layers.has(l.chainId) || ctx.isLayerInUse?.(l.chainId) || !(await ctx.store.hasLayer(l.chainId))) continue;
    out.bytes += await removeLayer(ctx, l.chainId);
    out.deleted.push(l.chainId);
  }
}

/**
 * Deletes blobs and layers no record holds (left by an interrupted pull, load or import, or by
 * a crash between steps), and blob partials nobody is resuming.
 */
export async function collectOrphans(ctx: GcContext, out: Collected): Promise<void> {
  const { blobs, layers } = await used(ctx);
  for (const b of await ctx.store.listBlobs()) {
    if (blobs.has(b)) continue;
    out.bytes += await removeBlob(ctx.store, b);
  }
  for (const l of await ctx.store.listLayers()) {
    if (layers.has(l) || ctx.isLayerInUse?.(l)) continue;
    out.bytes += await removeLayer(ctx, l);
    out.deleted.push(l);
  }
  for (const p of await ctx.store.listPartials()) {
    const lock = ctx.store.tryLock(`blob-${p.hex}`);
    if (!lock) continue; // a download is writing it right now
    try {
      out.bytes += (await stat(p.path).catch(() => undefined))?.size ?? 0;
      await rm(p.path, { force: true });
    } finally {
      lock.release();
    }
  }
}
