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
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, NotFoundError } from '../errors.js';
import { DigestMismatchError, SizeMismatchError } from './errors.js';
import { fsOps } from './fs-ops.js';
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
  /** Whether an error from `source` is worth resuming after (network errors, not 4xx). */
  isRetryable?: (error: unknown) => boolean;
}

export interface StoreLock {
  release(): void;
}

export interface LayerMeta {
  chainId: string;
  diffId: string;
  /** Bytes of the uncompressed layer tar. */
  size: number;
}

function hexOf(digest: string): string {
  if (!isSha256Digest(digest)) throw new TypeError(`not a sha256 digest: ${digest}`);
  return digest.slice('sha256:'.length);
}

/** Writes a file so that readers see the old content or the new, never a mix or nothing. */
export async function writeFileAtomic(path: string, data: string | Buffer, tmpDir: string): Promise<void> {
  const tmp = join(tmpDir, `w-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(join(path, '..'));
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, FS.O_RDONLY | FS.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class ContentStore {
  readonly root: string;
  readonly blobsDir: string;
  readonly layersDir: string;
  readonly imagesDir: string;
  readonly tmpDir: string;
  readonly locksDir: string;

  constructor(root: string) {
    this.root = root;
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.layersDir = join(root, 'layers');
    this.imagesDir = join(root, 'images');
    this.tmpDir = join(root, 'tmp');
    this.locksDir = join(root, 'locks');
  }

  async init(): Promise<void> {
    for (const d of [this.blobsDir, this.layersDir, this.imagesDir, this.tmpDir, this.locksDir]) await mkdir(d, { recursive: true, mode: 0o700 });
  }

  /**
   * Removes what crashed processes left in tmp/ (names carry the owner's pid). Blob partials
   * stay: the next pull of that blob resumes from them, under the blob's lock.
   */
  async cleanTmp(): Promise<void> {
    for (const name of await readdir(this.tmpDir)) {
      const m = /^(?:layer-[a-f0-9]+|w|rm-[a-f0-9]+)-(\d+)-/.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid === process.pid || processAlive(pid)) continue;
      await rm(join(this.tmpDir, name), { recursive: true, force: true });
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
    const partial = join(this.tmpDir, `blob-${hex}.partial`);
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
      await fh.sync();
      await fh.close();
      await rename(partial, join(this.blobsDir, hex));
      await syncDir(this.blobsDir);
      keepPartial = true; // renamed: nothing left to remove
    } finally {
      await fh.close().catch(() => {});
      if (!keepPartial) await rm(partial, { force: true });
    }
  }

  /**
   * Takes `locks/<name>.lock` with flock(2), polling without blocking the event loop. The
   * kernel drops the lock when the process dies, so there are no stale locks to detect.
   */
  async lock(name: string, { signal, mode = 'exclusive' }: { signal?: AbortSignal | undefined; mode?: 'exclusive' | 'shared' } = {}): Promise<StoreLock> {
    const fd = openSync(join(this.locksDir, `${name}.lock`), FS.O_RDWR | FS.O_CREAT, 0o600);
    const native = fsOps();
    let delay = 2;
    try {
      while (!native.fsFlock(fd, mode)) {
        if (signal?.aborted) throw new AbortError('aborted while waiting for a store lock', { cause: signal.reason });
        await sleep(delay);
        delay = Math.min(delay * 2, 50);
      }
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        closeSync(fd);
      },
    };
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

  /** Makes an unpacked layer visible: metadata first, then the directory, atomically. */
  async commitLayer(tmp: string, meta: LayerMeta): Promise<void> {
    await writeFileAtomic(`${this.layerDir(meta.chainId)}.json`, JSON.stringify(meta), this.tmpDir);
    try {
      await rename(tmp, this.layerDir(meta.chainId));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      await rm(tmp, { recursive: true, force: true }); // someone else committed it first
      return;
    }
    await syncDir(this.layersDir);
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
    await rm(doomed, { recursive: true, force: true });
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
