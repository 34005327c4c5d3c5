/**
 * One layer blob -> one unpacked layer directory under tmp/, verified (diff id) but not yet
 * durable or visible (see `ContentStore.commitLayer`). `load`, `import` and `pull` stage every
 * layer of an image this way first and commit only when all of them verified, so a bad image
 * leaves the store as it was. `pull` uses the two steps of {@link LayerStage} apart: it applies
 * a layer while it downloads, and resolves it against its lower layers once those are complete.
 * @module
 */
import { closeSync, createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import type { OwnerNamespace } from './owner-namespace.js';
import { availableParallelism } from 'node:os';
import type { ContentStore, LayerMeta } from './content-store.js';
import { closePrivateRoot, openPrivateRoot, type FsOpsBinding } from './fs-ops.js';
import { layerCompression } from './manifest.js';
import { applyLayer, DEFAULT_MAX_LAYER_SIZE, LayerApplier } from './unpack.js';

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
 * A layer being unpacked into a fresh temp dir in layer mode: whiteouts as overlay expects, hard
 * links into lower layers copied up, implicit directories with the metadata of the directory
 * below. First {@link LayerStage.applier} takes the blob (`applyLayer`), then
 * {@link LayerStage.finish} resolves it against the lower layers. {@link LayerStage.close}
 * always follows; the directory stays for the caller to publish or remove.
 */
export class LayerStage {
  readonly dir: string;
  readonly applier: LayerApplier;
  readonly #fs: FsOpsBinding;
  #rootFd: number;

  private constructor(dir: string, rootFd: number, applier: LayerApplier, fs: FsOpsBinding) {
    this.dir = dir;
    this.#rootFd = rootFd;
    this.applier = applier;
    this.#fs = fs;
  }

  /** A temp dir for `layer` with its applier; nothing is left behind when this throws. */
  static async open(store: ContentStore, layer: { digest: string; chainId: string }): Promise<LayerStage> {
    const dir = await store.layerTempDir(layer.chainId);
    const fs = store.fs;
    let rootFd = -1;
    try {
      rootFd = openPrivateRoot(dir, fs);
      return new LayerStage(dir, rootFd, new LayerApplier(rootFd, 'layer', layer.digest, fs, { parallel: WRITE_THREADS }), fs);
    } catch (e) {
      if (rootFd >= 0) closePrivateRoot(rootFd, fs);
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Completes the applied layer against `lowerDirs` (the layers below it, top first, committed
   * or staged) and closes its root.
   */
  finish(chainId: string, applied: { diffId: string; size: number }, lowerDirs: readonly string[]): LayerMeta {
    const lowerFds: number[] = [];
    try {
      for (const d of lowerDirs) lowerFds.push(this.#fs.fsOpenRoot(d));
      this.applier.resolveAgainstLowers(lowerFds);
    } finally {
      for (const fd of lowerFds) closeSync(fd);
    }
    this.applier.finish();
    this.close();
    return { chainId, diffId: applied.diffId, size: applied.size, contentSize: this.applier.contentBytes };
  }

  /** Stops the write pool (a no-op after {@link finish}) and closes the root; idempotent. */
  close(): void {
    this.applier.abort();
    if (this.#rootFd >= 0) closePrivateRoot(this.#rootFd, this.#fs);
    this.#rootFd = -1;
  }
}

/**
 * Stages `source` (a layer blob of `layer.mediaType`) in one go, see {@link LayerStage}. Throws
 * when the uncompressed content does not hash to `layer.diffId` (when given), or grows past
 * `maxSize` bytes uncompressed (`LayerTooLargeError`); the temp dir is then gone.
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
  if (store.ownerNamespace) return stageInNamespace(store, store.ownerNamespace, layer, source, lowerDirs, maxSize);
  const stage = await LayerStage.open(store, layer);
  try {
    const result = await applyLayer(source, stage.applier, { layer: layer.digest, compression: layerCompression(layer.mediaType), ...(layer.diffId ? { diffId: layer.diffId } : {}), ...(signal ? { signal } : {}), ...(maxSize !== undefined ? { maxSize } : {}) });
    return { dir: stage.dir, meta: stage.finish(layer.chainId, result, lowerDirs) };
  } catch (e) {
    stage.close();
    await rm(stage.dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Rootless {@link stageLayer}: the blob is written to tmp/ first (the helper in the user
 * namespace reads it from there), then unpacked by the helper.
 */
async function stageInNamespace(
  store: ContentStore,
  ns: OwnerNamespace,
  layer: { digest: string; mediaType: string; diffId?: string; chainId: string },
  source: AsyncIterable<Buffer>,
  lowerDirs: string[],
  maxSize: number = DEFAULT_MAX_LAYER_SIZE,
): Promise<StagedLayer> {
  const dir = await store.layerTempDir(layer.chainId);
  const blob = `${dir}.blob`;
  try {
    const out = await open(blob, 'wx', 0o600);
    try {
      for await (const chunk of source) await out.write(chunk);
    } finally {
      await out.close();
    }
    const meta = await ns.stageLayer({ blob, mediaType: layer.mediaType, digest: layer.digest, ...(layer.diffId ? { diffId: layer.diffId } : {}), chainId: layer.chainId, dir, lowerDirs, maxSize });
    return { dir, meta };
  } catch (e) {
    await store.removeTree(dir);
    throw e;
  } finally {
    await rm(blob, { force: true });
  }
}
