/**
 * The build cache: one entry per step that made (or could have made) a layer, keyed by the
 * step's cache key (see `docs/design/build.md`), stored as `build-cache/<hex>.json` in the
 * state directory. An entry names the layer the step produced (or none, for a step that
 * changed nothing) and its history entry; the layer itself lives in the content store like
 * any image's. Entries are GC roots for the image store: `images.remove()` and
 * `images.prune()` never delete a layer a cache entry holds; {@link BuildCache.prune} drops
 * entries, after which the store's orphan collection frees their layers.
 *
 * Writes are atomic (write-temp + rename); a hit is trusted only when its layer and blob are
 * still in the store, so a torn or stale entry is a miss, never a broken image.
 * @module
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContentStore } from '../image/content-store.js';
import type { HistoryEntry } from '../image/manifest.js';
import type { ImageLayerRecord } from '../image/image-table.js';
import { readJson, writeJsonAtomic } from '../state/atomic-file.js';

/** What a cached step produced. */
export interface CacheEntry {
  key: string;
  /** The layer, or null when the step changed no file (`empty_layer`). */
  layer: ImageLayerRecord | null;
  history: HistoryEntry;
  /** ISO time the entry was made. */
  created: string;
}

/** The digest of a cache key's parts (each part JSON-encoded, so no two part lists collide). */
export function cacheKey(parts: readonly unknown[]): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(parts)).digest('hex')}`;
}

export class BuildCache {
  readonly dir: string;

  constructor(root: string, private readonly store: ContentStore) {
    this.dir = join(root, 'build-cache');
  }

  private path(key: string): string {
    return join(this.dir, `${key.slice('sha256:'.length)}.json`);
  }

  /** The entry of `key` when its layer is still in the store; undefined otherwise. */
  async get(key: string): Promise<CacheEntry | undefined> {
    const entry = await readJson<CacheEntry>(this.path(key)).catch(() => undefined);
    if (!entry || entry.key !== key) return undefined;
    if (entry.layer && !((await this.store.hasLayer(entry.layer.chainId)) && (await this.store.hasBlob(entry.layer.digest)))) return undefined;
    return entry;
  }

  async put(entry: CacheEntry): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeJsonAtomic(this.path(entry.key), entry);
  }

  private async all(): Promise<Array<{ file: string; entry: CacheEntry | undefined }>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out = [];
    for (const n of names.filter((x) => /^[a-f0-9]{64}\.json$/.test(x))) {
      const file = join(this.dir, n);
      out.push({ file, entry: await readJson<CacheEntry>(file).catch(() => undefined) });
    }
    return out;
  }

  /** Layers and blobs the entries hold: roots for the image store's garbage collection. */
  async roots(): Promise<{ layers: Set<string>; blobs: Set<string> }> {
    const layers = new Set<string>();
    const blobs = new Set<string>();
    for (const { entry } of await this.all()) {
      if (!entry?.layer) continue;
      layers.add(entry.layer.chainId);
      blobs.add(entry.layer.digest);
    }
    return { layers, blobs };
  }

  /**
   * Removes entries: all of them, or those `keep` rejects. The caller holds the store's `gc`
   * lock exclusively and collects orphans afterwards.
   * @returns how many entries were removed
   */
  async prune(keep: (entry: CacheEntry) => boolean | Promise<boolean> = () => false): Promise<number> {
    let removed = 0;
    for (const { file, entry } of await this.all()) {
      if (entry && (await keep(entry))) continue;
      await rm(file, { force: true });
      removed++;
    }
    return removed;
  }
}
