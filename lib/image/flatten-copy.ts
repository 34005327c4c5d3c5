/**
 * `images.unpack()` from the layer directories a pull already wrote: the merged view of the
 * image's layers (whiteouts and opaque directories applied, see {@link MergedView}) copied into
 * the destination. The result is the flattened tree `umoci unpack` gives, without reading a
 * blob again: no decompression, no sha256 (the layers were verified against their diff ids
 * when they were stored), no tar parsing, and every visible file is written once instead of
 * once per layer that touches it.
 *
 * The destination is a user's directory that another process may change while we write, so
 * every write goes through the native confined calls with the root resolved again on every
 * call (no cached parents, also on the write pool's threads). The layer dirs are the store's
 * own (0700, written only by berth), read through confined lookups all the same.
 * @module
 */
import { closeSync, read, write } from 'node:fs';
import { promisify } from 'node:util';
import { AbortError, isSystemError } from '../errors.js';
import { fromNativeError } from '../native.js';
import type { FsEntryKind, FsMeta, FsOpsBinding, WritePoolContent, WritePoolHandle } from './fs-ops.js';
import { MergedView, type MergedEntry } from './merged-view.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, isOverlayXattr } from './overlay-format.js';

const readAsync = promisify(read);
const writeAsync = promisify(write);

/** Chunk of a larger file's copy, read and written on libuv's threads. */
const COPY_CHUNK = 1024 * 1024;
/** Longest run of synchronous copying between two turns of the event loop. */
const YIELD_AFTER_MS = 10;

/** Options of {@link copyMergedLayers}. */
export interface MergedCopyOptions {
  /** Create character and block devices; false skips them (and hard links to them). */
  devices: boolean;
  /** Threads creating small files (0: all on the calling thread). */
  threads: number;
  signal?: AbortSignal;
  /** Names the image in errors. */
  image: string;
  /**
   * The destination carries FS_TOPDIR_FL for the copy (see `unpack()`): each top-level
   * directory is made under a random name and renamed at once, so that ext4 picks its group
   * from a random point instead of from its fixed name (`usr`, `bin`, …).
   */
  spreadTopDirs?: boolean;
}

/**
 * Copies the merged view of `layerDirs` (top first) into the directory open as `destFd` (an
 * empty root opened with `fsOpenRoot`, not private). The root's own metadata is left alone, as
 * the tar-applying unpack leaves it (the caller made it 0700).
 */
export async function copyMergedLayers(fs: FsOpsBinding, layerDirs: readonly string[], destFd: number, options: MergedCopyOptions): Promise<void> {
  const view = MergedView.open(layerDirs, fs);
  const pool = options.threads > 0 ? fs.fsWritePoolCreate(destFd, options.threads) : undefined;
  const copier = new MergedCopier(fs, view, destFd, pool, options);
  try {
    await copier.run();
  } finally {
    if (pool) fs.fsWritePoolClose(pool);
    view.close();
  }
}

class MergedCopier {
  /** Directories and their mtimes, set last: creating children changes them. */
  private readonly dirTimes: Array<[string, number]> = [];
  /** `layer:ino` of a multiply-linked entry already written -> its path in the destination. */
  private readonly links = new Map<string, string>();
  /** Small files queued to the pool since the last barrier (a failure shows at the barrier, with its path). */
  private queued = 0;
  private buf: Buffer | undefined;

  constructor(
    private readonly fs: FsOpsBinding,
    private readonly view: MergedView,
    private readonly dest: number,
    private readonly pool: WritePoolHandle | undefined,
    private readonly options: MergedCopyOptions,
  ) {}

  async run(): Promise<void> {
    const { signal } = this.options;
    let slice = performance.now();
    for (const e of this.view.walk()) {
      if (signal?.aborted) throw new AbortError(`unpack of ${this.options.image} aborted`, { cause: signal.reason });
      await this.call(e.path, () => this.entry(e));
      // Walking and queueing small files is synchronous work: give the event loop a turn every
      // few milliseconds, so a tree of a million files does not hold it for its whole length.
      if (performance.now() - slice > YIELD_AFTER_MS) {
        await new Promise((r) => setImmediate(r));
        slice = performance.now();
      }
    }
    await this.call('', async () => {
      if (this.pool && this.queued > 0) this.fs.fsWritePoolBarrier(this.pool);
      this.queued = 0;
      for (const [dir, mtime] of this.dirTimes) this.fs.fsSetTimesAt(this.dest, dir, mtime);
    });
  }

  private meta(e: MergedEntry, withXattrs = true): FsMeta {
    const st = e.stat;
    const meta: FsMeta = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtime };
    if (!withXattrs) return meta;
    // Overlay's own markers (opaque) are how the layers store a deletion, not the image's content.
    const xattrs = this.fs.fsListXattrsAt(e.layer.fd, e.path).filter(([n]) => !isOverlayXattr(n));
    if (xattrs.length > 0) meta.xattrs = xattrs;
    return meta;
  }

  private async entry(e: MergedEntry): Promise<void> {
    const st = e.stat;
    const type = st.mode & S_IFMT;
    if (type === S_IFDIR) {
      if (this.options.spreadTopDirs && !e.path.includes('/')) {
        // Empty and just made: the rename moves a name, and the mtime is set at the end anyway.
        const made = `.berth-dir-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
        this.fs.fsMakeEntry(this.dest, { path: made, kind: 'dir', ...this.meta(e), mtime: undefined });
        this.fs.fsRenameAt(this.dest, made, e.path);
      } else {
        this.fs.fsMakeEntry(this.dest, { path: e.path, kind: 'dir', ...this.meta(e), mtime: undefined });
      }
      this.dirTimes.push([e.path, st.mtime]);
      return;
    }
    if ((type === S_IFCHR || type === S_IFBLK) && !this.options.devices) return; // a host device: never on the host
    if (type !== S_IFREG && type !== S_IFLNK && type !== S_IFCHR && type !== S_IFBLK && type !== S_IFIFO) return; // sockets mean nothing without their process
    if (st.nlink > 1) {
      // One inode in a layer dir is one hard-link group of the image (the pull copied groups
      // that span layers up into one layer), so the group stays one inode here too.
      const key = `${e.layerIndex}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        this.fs.fsMakeEntry(this.dest, { path: e.path, kind: 'link', target: first });
        return;
      }
      this.links.set(key, e.path);
    }
    // A file others will link to must exist before the link: not through the pool. The pool
    // thread reads the xattrs from the file it copies.
    if (type === S_IFREG && this.pool && st.nlink === 1) return this.queue(e.path, this.meta(e, false), { copyFrom: e.layer.fd, path: e.path });
    const meta = this.meta(e);
    switch (type) {
      case S_IFREG:
        return this.copyFile(e, meta);
      case S_IFLNK: {
        // Symlinks get owner, xattrs and times; their mode means nothing on Linux.
        const target = e.layer.readlink(e.path);
        if (this.pool && st.nlink === 1) return this.queue(e.path, { ...meta, mode: undefined }, { symlink: target });
        this.fs.fsMakeEntry(this.dest, { path: e.path, kind: 'symlink', target, ...meta, mode: undefined });
        return;
      }
      default: {
        const kind: FsEntryKind = type === S_IFCHR ? 'char' : type === S_IFBLK ? 'block' : 'fifo';
        this.fs.fsMakeEntry(this.dest, { path: e.path, kind, major: st.rdevMajor, minor: st.rdevMinor, ...meta });
      }
    }
  }

  /**
   * Hands a new file or symlink to a pool thread, which creates it (the expensive part on most
   * file systems) and, for a file, copies the layer's content in the kernel: the JS thread
   * neither reads nor copies a byte of it.
   */
  private queue(path: string, meta: FsMeta, content: WritePoolContent): void {
    this.fs.fsWritePoolSubmit(this.pool!, path, meta, content);
    this.queued++;
  }

  /**
   * Copies a file on libuv's threads (the first name of a hard-link group, or every file without
   * a pool), so the event loop is never held for its length.
   */
  private async copyFile(e: MergedEntry, meta: FsMeta): Promise<void> {
    const buf = (this.buf ??= Buffer.allocUnsafe(COPY_CHUNK));
    const src = this.fs.fsOpenAt(e.layer.fd, e.path);
    try {
      const dst = this.fs.fsMakeEntry(this.dest, { path: e.path, kind: 'file' });
      try {
        for (;;) {
          const { bytesRead } = await readAsync(src, buf, 0, buf.length, null);
          if (bytesRead === 0) break;
          let off = 0;
          while (off < bytesRead) off += (await writeAsync(dst, buf, off, bytesRead - off, null)).bytesWritten;
        }
      } catch (err) {
        closeSync(dst);
        throw err;
      }
      this.fs.fsFinishFile(dst, meta, e.path);
    } finally {
      closeSync(src);
    }
  }

  /** Native failures become typed errors naming the image and the path. */
  private async call(path: string, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (!isSystemError(err)) throw err;
      throw fromNativeError(err, { context: `unpack of ${this.options.image}: ${JSON.stringify(path)}` });
    }
  }
}
