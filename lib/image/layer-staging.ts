/**
 * One layer blob -> one unpacked layer directory under tmp/, verified (diff id) but not yet
 * durable or visible (see `ContentStore.commitLayer`). `load` and `import` stage every layer of an archive this way first and
 * commit only when all of them verified, so a bad archive leaves the store as it was.
 * (`pull` does the same steps inline, overlapped with the download.)
 * @module
 */
import { closeSync, createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { ContentStore, LayerMeta } from './content-store.js';
import { closePrivateRoot, fsOps, openPrivateRoot } from './fs-ops.js';
import { layerCompression } from './manifest.js';
import { applyLayer, LayerApplier } from './unpack.js';

/**
 * Threads writing a layer's small files (see `ApplierOptions.parallel`): one per core, at most
 * 4. Creating a file is kernel CPU work on most file systems; more threads than cores only
 * contend (measured: see docs/design/images.md, Timing).
 */
export const WRITE_THREADS = Math.max(1, Math.min(4, availableParallelism()));

export interface StagedLayer {
  /** The directory under tmp/ holding the unpacked layer. */
  dir: string;
  meta: LayerMeta;
}

/** Reads a file in chunks. */
export async function* readFileChunks(path: string): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) yield chunk as Buffer;
}

/**
 * Unpacks `source` (a layer blob of `layer.mediaType`) into a fresh temp dir in layer mode:
 * whiteouts as overlay expects, hard links into lower layers copied up, implicit directories
 * with the metadata of the directory below. Throws when the uncompressed content does not
 * hash to `layer.diffId` (when given), or grows past `maxSize` bytes uncompressed
 * (`LayerTooLargeError`); the temp dir is then gone.
 * @param lowerDirs the layer directories below this one, top first (committed or staged)
 */
export async function stageLayer(
  store: ContentStore,
  layer: { digest: string; mediaType: string; diffId?: string; chainId: string },
  source: AsyncIterable<Buffer>,
  lowerDirs: string[],
  signal?: AbortSignal,
  maxSize?: number,
): Promise<StagedLayer> {
  const native = fsOps();
  const dir = await store.layerTempDir(layer.chainId);
  let rootFd = -1;
  let applier: LayerApplier | undefined;
  try {
    rootFd = openPrivateRoot(dir);
    applier = new LayerApplier(rootFd, 'layer', layer.digest, native, { parallel: WRITE_THREADS });
    const result = await applyLayer(source, applier, { layer: layer.digest, compression: layerCompression(layer.mediaType), ...(layer.diffId ? { diffId: layer.diffId } : {}), ...(signal ? { signal } : {}), ...(maxSize !== undefined ? { maxSize } : {}) });
    const lowerFds: number[] = [];
    try {
      for (const d of lowerDirs) lowerFds.push(native.fsOpenRoot(d));
      applier.resolveAgainstLowers(lowerFds);
    } finally {
      for (const fd of lowerFds) closeSync(fd);
    }
    applier.finish();
    closePrivateRoot(rootFd);
    rootFd = -1;
    return { dir, meta: { chainId: layer.chainId, diffId: result.diffId, size: result.size, contentSize: applier.contentBytes } };
  } catch (e) {
    applier?.abort();
    if (rootFd >= 0) closePrivateRoot(rootFd);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
