/**
 * The on-disk store under the state root:
 *
 *   blobs/sha256/<hex>    verified content (manifests, configs, layer blobs)
 *   layers/<chainhex>/    one unpacked layer, an overlay lower dir; `<chainhex>.json` beside it
 *   images/               image records and the ref table
 *   tmp/                  everything in progress; renamed into place only once verified
 *   locks/                flock(2) lock files (kept: deleting a lock file under a waiter races)
 *
 * Nothing unverified is ever visible: blobs are written to tmp/, hashed while streaming,
 * fsynced and renamed; layers are unpacked into tmp/ and renamed when complete. Several
 * processes may share a root: per-blob and per-layer locks make each piece of work happen once.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as FS, openSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortError, NotFoundError } from '../errors.js';
import { removeTree } from '../host/remove-tree.js';
import type { OwnerNamespace } from './owner-namespace.js';
import { writeFileAtomic as replaceFile } from '../state/atomic-file.js';
import { acquireFileLock, tryFileLock, type HeldLock } from '../state/lock.js';
import { DigestMismatchError, SizeMismatchError } from './errors.js';
import { fsOps, setTopDir, type FsOpsBinding } from './fs-ops.js';
import { isSha256Digest } from './reference.js';

/** Where a blob's bytes come from; `open(offset)` may ignore the offset (then `offset` is 0). */
export interface BlobSource {
  open(offset: number, signal?: AbortSignal): Promise<{ body: AsyncIterable<Buffer>; offset: number }>;
}

export interface IngestOptions {
  source: BlobSource;
  /** Receives every byte of the blob exactly once, in order, before it is verified. */
  onData?: (chunk: Buffer) => void | Promise<void>;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** How many times an interrupted download is resumed with a Range request. Default 3. */
  retries?: number;
  /**
   * Leave the verified blob in tmp/ (`partialPath`) instead of making it durable and renaming
   * it; the caller batches `durable()` and then calls {@link ContentStore.commitPartial}. Another
   * process that wants the blob meanwhile finds the complete partial, re-hashes it and commits
   * it itself: nothing is downloaded twice.
   */
  defer?: boolean;
  /** Whether an error from `source` is worth resuming after (network errors, not 4xx). */
  isRetryable?: (error: unknown) => boolean;
}

export type StoreLock = HeldLock;

export interface LayerMeta {
  chainId: string;
  diffId: string;
  /** Bytes of the uncompressed layer tar. */
  size: number;
  /** Bytes of regular-file content in the layer (Docker's layer `Size`); absent in old stores. */
  contentSize?: number;
}

function hexOf(digest: string): string {
  if (!isSha256Digest(digest)) throw new TypeError(`not a sha256 digest: ${digest}`);
  return digest.slice('sha256:'.length);
}

/** Writes a file so that readers see the old content or the new, never a mix or nothing. */
export async function writeFileAtomic(path: string, data: string | Buffer, tmpDir: string): Promise<void> {
  // The temp file lives in tmp/ under a `w-<pid>-` name, so cleanTmp removes a dead writer's leftovers.
  await replaceFile(path, data, { mode: 0o644, tempPath: join(tmpDir, `w-${process.pid}-${Math.random().toString(36).slice(2)}`) });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ContentStoreOptions {
  /** The native file-system calls (default: the addon's); tests pass the recording fake. */
  native?: FsOpsBinding;
  /** Rootless: unpack and remove layer trees inside the containers' user namespace (see owner-namespace.ts). */
  ownerNamespace?: OwnerNamespace;
}

export class ContentStore {
  readonly #native: FsOpsBinding | undefined;
  /** @internal Where layer trees are written and removed without root; absent as root. */
  readonly ownerNamespace: OwnerNamespace | undefined;
  private runningSync: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;
  readonly root: string;
  readonly blobsDir: string;
  readonly layersDir: string;
  readonly imagesDir: string;
  readonly tmpDir: string;
  readonly locksDir: string;

  constructor(root: string, options: ContentStoreOptions = {}) {
    this.#native = options.native;
    this.ownerNamespace = options.ownerNamespace;
    this.root = root;
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.layersDir = join(root, 'layers');
    this.imagesDir = join(root, 'images');
    this.tmpDir = join(root, 'tmp');
    this.locksDir = join(root, 'locks');
  }

  /**
   * Removes a tree of the store. Rootless, a layer holds directories of other container ids
   * (a 0700 one of id 33) that this user cannot empty: what `rm` leaves goes through the
   * user namespace, where those ids are the helper's to delete.
   */
  async removeTree(path: string): Promise<void> {
    try {
      await rm(path, { recursive: true, force: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!this.ownerNamespace || (code !== 'EACCES' && code !== 'EPERM')) throw e;
      await this.ownerNamespace.removeTrees([path]);
    }
  }

  /** @internal The native file-system calls of this store (what layers are staged with). */
  get fs(): FsOpsBinding {
    return this.#native ?? fsOps();
  }

  async init(): Promise<void> {
    for (const d of [this.blobsDir, this.layersDir, this.imagesDir, this.tmpDir, this.locksDir]) await mkdir(d, { recursive: true, mode: 0o700 });
    this.spreadLayerDirs();
  }

  /**
   * Marks tmp/ — where every layer dir, unpack stage and build stage is created before its
   * rename — as the top of directory hierarchies (`chattr +T`). ext4 then picks a group for
   * each new layer dir as it does for directories in `/` (Orlov: a group with few directories
   * and free room), instead of the group of tmp/ itself, and a layer's files follow their dir.
   * Why it matters: ext4 without a journal will not reuse an inode freed in the last minute
   * (six while its inode table block is dirty), and finds that out by looking up every such
   * inode from the start of the group on every create; in a group where trees were just
   * deleted (a previous pull's, a prune's, a container's), each new inode cost a scan of
   * thousands — 40 % of a pull's CPU in `perf` here (docs/benchmarks.md, fifth round). A hint
   * only: where the file system has no such flag, or refuses it, nothing changes.
   */
  private spreadLayerDirs(): void {
    let fd: number;
    try {
      fd = openSync(this.tmpDir, FS.O_RDONLY | FS.O_DIRECTORY);
    } catch {
      return;
    }
    try {
      setTopDir(fd, true, this.fs);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Removes what crashed processes left in tmp/ (names carry the owner's pid). Blob partials
   * stay: the next pull of that blob resumes from them, under the blob's lock.
   */
  async cleanTmp(): Promise<void> {
    for (const name of await readdir(this.tmpDir)) {
      const m = /^(?:layer-[a-f0-9]+|w|rm-[a-f0-9]+|stage)-(\d+)-/.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid === process.pid || processAlive(pid)) continue;
      await this.removeTree(join(this.tmpDir, name));
    }
  }

  blobPath(digest: string): string {
    return join(this.blobsDir, hexOf(digest));
  }

  async blobSize(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.blobSize(digest)) !== undefined;
  }

  /** Reads a (small) blob and checks it still hashes to its name. */
  async readBlob(digest: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`blob ${digest} is not in the store`, { path: this.blobPath(digest) });
      throw e;
    }
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== digest) throw new DigestMismatchError(digest, actual, `stored blob ${this.blobPath(digest)}`);
    return bytes;
  }

  /** Verifies and stores a blob held in memory (manifests, configs). */
  async putBlob(bytes: Buffer, expected?: { digest: string; size?: number }): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (expected?.size !== undefined && expected.size !== bytes.length) throw new SizeMismatchError(expected.size, bytes.length, `blob ${expected.digest}`);
    if (expected && expected.digest !== digest) throw new DigestMismatchError(expected.digest, digest, `blob ${expected.digest}`);
    if (!(await this.hasBlob(digest))) await writeFileAtomic(this.blobPath(digest), bytes, this.tmpDir);
    return digest;
  }

  /**
   * Downloads a blob into the store unless it is there. Holds the blob's lock, so a second
   * process pulling the same blob waits and then finds it present ('cached', and `onData` is
   * never called). An interrupted download resumes from the bytes already in tmp/, also
   * across processes and runs.
   */
  async ingest(desc: { digest: string; size: number }, options: IngestOptions): Promise<'cached' | 'fetched'> {
    const hex = hexOf(desc.digest);
    if (await this.hasBlob(desc.digest)) return 'cached';
    const lock = await this.lock(`blob-${hex}`, { signal: options.signal });
    try {
      if (await this.hasBlob(desc.digest)) return 'cached';
      await this.fetchLocked(desc, hex, options);
      return 'fetched';
    } finally {
      lock.release();
    }
  }

  private async fetchLocked(desc: { digest: string; size: number }, hex: string, options: IngestOptions): Promise<void> {
    const partial = this.partialPath(desc.digest);
    const what = `blob ${desc.digest}`;
    const hash = createHash('sha256');
    let done = 0;
    const fh = await open(partial, FS.O_RDWR | FS.O_CREAT, 0o600);
    let keepPartial = false;
    try {
      // Bytes a previous (interrupted) attempt left behind are re-hashed and re-delivered, then
      // the download resumes after them.
      const existing = (await fh.stat()).size;
      if (existing > desc.size) {
        await fh.truncate(0);
      } else if (existing > 0) {
        const buf = Buffer.allocUnsafe(Math.min(existing, 1024 * 1024));
        while (done < existing) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, existing - done), done);
          if (bytesRead === 0) break;
          const chunk = Buffer.from(buf.subarray(0, bytesRead));
          hash.update(chunk);
          await options.onData?.(chunk);
          done += bytesRead;
        }
        options.onProgress?.(done, desc.size);
      }
      let attemptsLeft = options.retries ?? 3;
      while (done < desc.size || desc.size === 0) {
        options.signal?.throwIfAborted();
        try {
          const { body, offset } = await options.source.open(done, options.signal);
          let skip = done - offset; // the server ignored our Range: drop what we already have
          for await (const raw of body) {
            let chunk = raw;
            if (skip > 0) {
              if (chunk.length <= skip) {
                skip -= chunk.length;
                continue;
              }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            if (done + chunk.length > desc.size) throw new SizeMismatchError(desc.size, done + chunk.length, what);
            await fh.write(chunk, 0, chunk.length, done);
            hash.update(chunk);
            done += chunk.length;
            await options.onData?.(chunk);
            options.onProgress?.(done, desc.size);
          }
          if (done === desc.size) break;
          throw Object.assign(new Error(`connection closed after ${done} of ${desc.size} bytes`), { code: 'ERR_SHORT_BODY' });
        } catch (e) {
          if (e instanceof SizeMismatchError || e instanceof AbortError || options.signal?.aborted) throw e;
          const retryable = (e as { code?: string }).code === 'ERR_SHORT_BODY' || (options.isRetryable?.(e) ?? false);
          if (!retryable || attemptsLeft-- <= 0) {
            if ((e as { code?: string }).code === 'ERR_SHORT_BODY') throw new SizeMismatchError(desc.size, done, what, { cause: e });
            keepPartial = retryable;
            throw e;
          }
        }
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual, what);
      await fh.close();
      if (options.defer) {
        keepPartial = true;
        return;
      }
      // Durable before visible. One syncfs shared with the layers being committed at the same
      // time costs less than an fsync per blob; the rename itself is made durable by the
      // `durable()` the caller does before it records an image that names this blob.
      await this.durable();
      await rename(partial, join(this.blobsDir, hex));
      keepPartial = true; // renamed: nothing left to remove
    } finally {
      await fh.close().catch(() => {});
      if (!keepPartial) await rm(partial, { force: true });
    }
  }

  /**
   * Moves a file whose content was hashed while it was written (under tmp/) into the store as
   * the blob `digest`. The caller vouches for the hash and has made the file durable
   * ({@link ContentStore.durable}) first. When the blob is already there the file is removed.
   */
  async commitBlobFile(path: string, digest: string): Promise<void> {
    if (await this.hasBlob(digest)) {
      await rm(path, { force: true });
      return;
    }
    await rename(path, this.blobPath(digest));
  }

  /**
   * Makes everything written under the root so far durable: syncfs(2) on a thread-pool thread.
   * Callers that ask while a call is running share the next one (they may have written after
   * the running one started), so N layers finishing together cost one or two calls, not N.
   */
  durable(): Promise<void> {
    if (this.nextSync) return this.nextSync;
    if (this.runningSync) {
      const next = this.runningSync.catch(() => {}).then(() => {
        this.nextSync = undefined;
        return this.startSync();
      });
      this.nextSync = next;
      return next;
    }
    return this.startSync();
  }

  private startSync(): Promise<void> {
    const run = (async () => {
      const fd = openSync(this.root, FS.O_RDONLY | FS.O_DIRECTORY);
      try {
        await this.fs.fsSyncAsync(fd);
      } finally {
        closeSync(fd);
      }
    })();
    this.runningSync = run;
    const clear = () => {
      if (this.runningSync === run) this.runningSync = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /** Where a blob's download in progress (or a deferred, verified one) lives. */
  partialPath(digest: string): string {
    return join(this.tmpDir, `blob-${hexOf(digest)}.partial`);
  }

  /** The verified content of a deferred blob (small blobs: configs), re-hashed. */
  async readPartial(digest: string): Promise<Buffer> {
    if (await this.hasBlob(digest)) return this.readBlob(digest);
    const bytes = await readFile(this.partialPath(digest));
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== digest) throw new DigestMismatchError(digest, actual, `downloaded blob ${digest}`);
    return bytes;
  }

  /**
   * Renames a deferred blob (see `IngestOptions.defer`) into the store, under its lock. The
   * caller made it durable first. Nothing to do when another process committed it meanwhile.
   */
  async commitPartial(desc: { digest: string; size: number }): Promise<void> {
    if (await this.hasBlob(desc.digest)) return;
    const lock = await this.lock(`blob-${hexOf(desc.digest)}`);
    try {
      if (await this.hasBlob(desc.digest)) return;
      const partial = this.partialPath(desc.digest);
      const size = (await stat(partial)).size;
      // Only a process holding this lock ever writes the partial, and only up to its size.
      if (size !== desc.size) throw new SizeMismatchError(desc.size, size, `blob ${desc.digest} (deferred download)`);
      await rename(partial, this.blobPath(desc.digest));
    } finally {
      lock.release();
    }
  }

  /** Drops a deferred blob whose content turned out unusable (its layer was refused). */
  async discardPartial(digest: string): Promise<void> {
    const lock = await this.lock(`blob-${hexOf(digest)}`);
    try {
      await rm(this.partialPath(digest), { force: true });
    } finally {
      lock.release();
    }
  }

  /** Writes bytes to a file under tmp/ (not durable, not visible); commit with {@link ContentStore.commitBlobFile}. */
  async stageBytes(bytes: Buffer): Promise<string> {
    const path = join(this.tmpDir, `w-${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(path, bytes, { mode: 0o644, flag: 'wx' });
    return path;
  }

  /** A fresh directory under tmp/ for staged work (load, import); removed by cleanTmp once its owner is dead. */
  async stagingDir(): Promise<string> {
    const dir = join(this.tmpDir, `stage-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  /** Takes `locks/<name>.lock` without waiting; undefined when someone else holds it. */
  tryLock(name: string): StoreLock | undefined {
    return tryFileLock(join(this.locksDir, `${name}.lock`));
  }

  /** Blob partials (`tmp/blob-<hex>.partial`) left by interrupted downloads. */
  async listPartials(): Promise<Array<{ hex: string; path: string }>> {
    return (await readdir(this.tmpDir))
      .map((n) => /^blob-([a-f0-9]{64})\.partial$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ hex: m[1]!, path: join(this.tmpDir, m[0]) }));
  }

  /**
   * Takes `locks/<name>.lock` with flock(2) (see state/lock.ts). No timeout: a layer's lock is
   * held for a whole download and unpack, which can take any time.
   */
  lock(name: string, { signal, mode = 'exclusive' }: { signal?: AbortSignal | undefined; mode?: 'exclusive' | 'shared' } = {}): Promise<StoreLock> {
    return acquireFileLock(join(this.locksDir, `${name}.lock`), { signal, mode, what: 'a store lock', firstDelayMs: 2, maxDelayMs: 50 });
  }

  layerDir(chainId: string): string {
    return join(this.layersDir, hexOf(chainId));
  }

  async hasLayer(chainId: string): Promise<boolean> {
    try {
      return (await stat(this.layerDir(chainId))).isDirectory();
    } catch {
      return false;
    }
  }

  async layerMeta(chainId: string): Promise<LayerMeta | undefined> {
    try {
      return JSON.parse(await readFile(`${this.layerDir(chainId)}.json`, 'utf8')) as LayerMeta;
    } catch {
      return undefined;
    }
  }

  /** A fresh directory under tmp/ for a layer being unpacked. */
  async layerTempDir(chainId: string): Promise<string> {
    const dir = join(this.tmpDir, `layer-${hexOf(chainId).slice(0, 16)}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    await mkdir(dir, { mode: 0o755 });
    return dir;
  }

  /**
   * Makes an unpacked layer visible: metadata first, then the directory, each atomically.
   * Equivalent to {@link ContentStore.stageLayerMeta}, {@link ContentStore.durable},
   * {@link ContentStore.publishLayer}; callers committing several layers do those steps
   * themselves, to share one `durable()`.
   */
  async commitLayer(tmp: string, meta: LayerMeta): Promise<void> {
    const metaTmp = await this.stageLayerMeta(meta);
    await this.durable();
    await this.publishLayer(tmp, metaTmp, meta);
  }

  /** Writes a layer's metadata into tmp/ (not yet durable, not yet visible). */
  async stageLayerMeta(meta: LayerMeta): Promise<string> {
    const path = join(this.tmpDir, `w-${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(path, JSON.stringify(meta), { mode: 0o644, flag: 'wx' });
    return path;
  }

  /**
   * Renames a staged layer and its metadata into place. Both must be durable already (the
   * caller's `durable()` after staging them). The renames become durable with the next
   * `durable()` (or fsync on the same file system), which must happen before an image record
   * names the layer.
   */
  async publishLayer(tmp: string, metaTmp: string, meta: LayerMeta): Promise<void> {
    await rename(metaTmp, `${this.layerDir(meta.chainId)}.json`);
    try {
      await rename(tmp, this.layerDir(meta.chainId));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      await this.removeTree(tmp); // someone else committed it first
    }
  }

  async removeLayer(chainId: string): Promise<void> {
    // Rename first so a half-deleted tree is never visible under the layer's name.
    const doomed = join(this.tmpDir, `rm-${hexOf(chainId).slice(0, 16)}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    try {
      await rename(this.layerDir(chainId), doomed);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    await rm(`${this.layerDir(chainId)}.json`, { force: true });
    await this.removeTree(doomed);
    // The btrfs storage driver's subvolume of the layer's merged tree (lib/storage/btrfs-layers.ts).
    await removeTree(`${this.layerDir(chainId)}.btrfs`);
  }

  async removeBlob(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async listBlobs(): Promise<string[]> {
    return (await readdir(this.blobsDir)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  async listLayers(): Promise<string[]> {
    return (await readdir(this.layersDir)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  async readJson<T>(path: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as T;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async writeJson(path: string, value: unknown): Promise<void> {
    await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, this.tmpDir);
  }
}
