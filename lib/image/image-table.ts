/**
 * The local image table: one record per platform manifest (`images/manifests/<hex>.json`) and
 * the ref table (`images/refs.json`: tags and digest references -> manifest digest). Every
 * change to the ref table happens under the `images` lock, read-modify-write, so several
 * processes may tag, pull and remove at once.
 * @module
 */
import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, NotFoundError } from '../errors.js';
import type { ContentStore } from './content-store.js';
import type { Platform } from './manifest.js';
import { familiarName, formatReference, parseReference } from './reference.js';

export interface ImageLayerRecord {
  /** The blob's digest (compressed, as stored). */
  digest: string;
  /** The blob's size in bytes. */
  size: number;
  mediaType: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  chainId: string;
}

/** What the store knows about one image (one platform manifest). */
export interface ImageRecord {
  /** The image id: the config digest, as Docker reports it. */
  id: string;
  manifestDigest: string;
  /** The index (manifest list) it was selected from, when pulled through one. */
  indexDigest?: string;
  mediaType: string;
  configDigest: string;
  platform: Platform;
  layers: ImageLayerRecord[];
  /** Canonical `name:tag` references pointing at this image. */
  repoTags: string[];
  /** Canonical `name@digest` references. */
  repoDigests: string[];
  /** When the record was written (pull, load, import). */
  pulledAt: string;
}

/** The record as stored: refs live in the ref table, not in the record. */
export interface StoredRecord extends Omit<ImageRecord, 'repoTags' | 'repoDigests'> {}

export interface RefTable {
  tags: Record<string, string>;
  digests: Record<string, string>;
}

/** Chain ids as the OCI image spec defines them: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

const ID_LIKE = /^(sha256:)?([a-f0-9]{4,64})$/;

/** Whether `ref` names an image by id (or id prefix) rather than by repository. */
export function isIdLike(ref: string): boolean {
  return ID_LIKE.test(ref);
}

export class ImageTable {
  constructor(readonly store: ContentStore) {}

  get manifestsDir(): string {
    return join(this.store.imagesDir, 'manifests');
  }

  recordPath(manifestDigest: string): string {
    return join(this.manifestsDir, `${manifestDigest.slice('sha256:'.length)}.json`);
  }

  private get refsPath(): string {
    return join(this.store.imagesDir, 'refs.json');
  }

  async readRefs(): Promise<RefTable> {
    return (await this.store.readJson<RefTable>(this.refsPath)) ?? { tags: {}, digests: {} };
  }

  /** Read-modify-write of the ref table under the `images` lock. */
  async updateRefs<T = void>(fn: (refs: RefTable) => T | Promise<T>): Promise<T> {
    const lock = await this.store.lock('images');
    try {
      const refs = await this.readRefs();
      const out = await fn(refs);
      await this.store.writeJson(this.refsPath, refs);
      return out;
    } finally {
      lock.release();
    }
  }

  async readRecord(manifestDigest: string): Promise<StoredRecord | undefined> {
    return this.store.readJson<StoredRecord>(this.recordPath(manifestDigest));
  }

  async writeRecord(record: StoredRecord): Promise<void> {
    await this.store.writeJson(this.recordPath(record.manifestDigest), record);
  }

  async deleteRecord(manifestDigest: string): Promise<void> {
    await rm(this.recordPath(manifestDigest), { force: true });
  }

  async allRecords(): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    for (const name of await readdir(this.manifestsDir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(name)) continue;
      const r = await this.store.readJson<StoredRecord>(join(this.manifestsDir, name));
      if (r) out.push(r);
    }
    return out;
  }

  withRefs(record: StoredRecord, refs: RefTable): ImageRecord {
    const repoTags = Object.entries(refs.tags).filter(([, d]) => d === record.manifestDigest).map(([t]) => t).sort();
    const repoDigests = Object.entries(refs.digests).filter(([, d]) => d === record.manifestDigest).map(([t]) => t).sort();
    return { ...record, repoTags, repoDigests };
  }

  /**
   * The manifest digest a user's string names: a reference (`busybox`, `name:tag`,
   * `name@sha256:…`), an image id (`sha256:<hex>` or an unambiguous hex prefix of at least 4),
   * or a manifest digest.
   */
  async resolve(ref: string, refs: RefTable): Promise<string> {
    const idLike = ID_LIKE.exec(ref);
    if (idLike) {
      const hex = idLike[2]!;
      const matches = (await this.allRecords()).filter((r) => r.id.slice(7).startsWith(hex) || (hex.length === 64 && r.manifestDigest.slice(7) === hex));
      const ids = new Set(matches.map((m) => m.id));
      if (ids.size > 1) throw new ConflictError(`image id prefix ${ref} is ambiguous (${ids.size} images)`);
      const exact = hex.length === 64 ? matches.find((m) => m.manifestDigest.slice(7) === hex) : undefined;
      if (exact) return exact.manifestDigest;
      // One id, several manifests (e.g. the same image with gzip and zstd layers): the newest.
      if (matches.length > 0) return matches.sort((a, b) => b.pulledAt.localeCompare(a.pulledAt))[0]!.manifestDigest;
      if (idLike[1] || hex.length === 64) throw new NotFoundError(`image ${ref} not found`);
    }
    const parsed = parseReference(ref);
    if (parsed.digest !== undefined) {
      const key = `${parsed.name}@${parsed.digest}`;
      if (refs.digests[key]) return refs.digests[key]!;
      for (const r of await this.allRecords()) if (r.manifestDigest === parsed.digest || r.indexDigest === parsed.digest) return r.manifestDigest;
      throw new NotFoundError(`image ${familiarName(parsed)} not found`);
    }
    const found = refs.tags[formatReference(parsed)];
    if (!found) throw new NotFoundError(`image ${familiarName(parsed)} not found`);
    return found;
  }

  /** The record and its refs, or NotFoundError. */
  async get(ref: string): Promise<ImageRecord> {
    const refs = await this.readRefs();
    const manifestDigest = await this.resolve(ref, refs);
    const record = await this.readRecord(manifestDigest);
    if (!record) throw new NotFoundError(`image ${ref} not found (its record is missing)`);
    return this.withRefs(record, refs);
  }
}
