/**
 * Extracting a `docker cp` tar into one destination directory: a container's (putArchive,
 * copyTo) or the host's (copyFrom). The archive is hostile either way: a user's tar for a
 * container, and for the host a tar made from files a container controls.
 *
 * The destination is a root fd in the strict mode of the native confined operations
 * (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`, mounts below may be entered): an
 * entry named `../x` or `/x` is refused before any syscall, and no entry can reach through a
 * symlink — one the archive made a moment ago (`link -> /`, then `link/etc/passwd`) or one a
 * container swaps in while the copy runs — because the kernel refuses every symlink on the
 * way. Hard links name their target below the same root. Regular files are written under a
 * temporary name in their directory and renamed over the destination only once complete, so
 * a failed or aborted copy never leaves a half-written file where a whole one was.
 * @module
 */
import { closeSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isSystemError } from '../errors.js';
import type { FsOpsBinding, FsStat } from '../image/fs-ops.js';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../image/overlay-format.js';
import { cleanEntryName } from '../image/unpack.js';
import type { TarHeader, TarSink } from '../image/tar-reader.js';
import { fromNativeError } from '../native.js';
import { ArchiveConflictError, UnsafeArchiveEntryError } from './archive-errors.js';
import { joinRel, parentRel } from './archive-paths.js';

/** How an extraction treats what the archive says. */
export interface ExtractOptions {
  /** Names the destination in errors (`container web:/data`, `host /tmp/out`). */
  where: string;
  /** The owner to give an entry, from the ids in the archive. */
  owner(uid: number, gid: number, entry: string): { uid: number; gid: number };
  /** Device nodes: `create` them, `skip` them, or `refuse` the archive. */
  devices: 'create' | 'skip' | 'refuse';
  /** Which extended attributes to keep. */
  keepXattr(name: string): boolean;
  /** Clear set-user-id and set-group-id bits of files. */
  stripSetId: boolean;
}

const isDirStat = (st: FsStat): boolean => (st.mode & S_IFMT) === S_IFDIR;

/**
 * A {@link TarSink} writing below `rootFd`. Synchronous: its caller feeds it chunk by chunk
 * from a stream, so the stream's backpressure reaches the source and no file sits in memory.
 */
export class ArchiveExtractor implements TarSink {
  readonly #fs: FsOpsBinding;
  readonly #root: number;
  readonly #o: ExtractOptions;
  readonly #knownDirs = new Set<string>(['']);
  readonly #dirTimes = new Map<string, number>();
  readonly #tmpTag = randomBytes(6).toString('hex');
  #tmpCount = 0;
  #file: { fd: number; tmp: string; path: string; entry: string; header: TarHeader } | undefined;
  /** Entries written (for tests and messages). */
  entries = 0;
  /** Device entries left out (`devices: 'skip'`). */
  readonly skipped: string[] = [];

  constructor(fs: FsOpsBinding, rootFd: number, options: ExtractOptions) {
    this.#fs = fs;
    this.#root = rootFd;
    this.#o = options;
  }

  entry(h: TarHeader): void {
    const path = this.#clean(h.name, h.name);
    if (path === '') return; // the destination itself: it exists, and its metadata stays
    this.#ensureDir(parentRel(path), h.name);
    const existing = this.#call(h.name, path, () => this.#fs.fsLstatAt(this.#root, path));
    if (existing && isDirStat(existing) && h.type !== 'dir') {
      throw new ArchiveConflictError(`${this.#o.where}: cannot overwrite directory ${JSON.stringify(path)} with a non-directory (entry ${JSON.stringify(h.name)})`, path);
    }
    if (existing && !isDirStat(existing) && h.type === 'dir') {
      throw new ArchiveConflictError(`${this.#o.where}: cannot overwrite non-directory ${JSON.stringify(path)} with a directory (entry ${JSON.stringify(h.name)})`, path);
    }
    const { uid, gid } = this.#o.owner(h.uid, h.gid, h.name);
    const xattrs = h.xattrs.filter(([n]) => this.#o.keepXattr(n));
    const mode = this.#o.stripSetId && h.type !== 'dir' ? h.mode & ~0o6000 : h.mode;
    const meta = { uid, gid, mode, mtime: h.mtime, xattrs };
    switch (h.type) {
      case 'file': {
        const tmp = joinRel(parentRel(path), `.berth-cp-${this.#tmpTag}-${this.#tmpCount++}`);
        const fd = this.#call(h.name, path, () => this.#fs.fsMakeEntry(this.#root, { path: tmp, kind: 'file' }));
        this.#file = { fd, tmp, path, entry: h.name, header: { ...h, mode } };
        break;
      }
      case 'dir':
        this.#call(h.name, path, () => this.#fs.fsMakeEntry(this.#root, { path, kind: 'dir', ...meta, mtime: undefined }));
        this.#knownDirs.add(path);
        this.#dirTimes.set(path, h.mtime);
        break;
      case 'symlink':
        if (h.linkname === '') throw new UnsafeArchiveEntryError(this.#o.where, h.name, 'symlink with an empty target');
        this.#call(h.name, path, () => this.#fs.fsMakeEntry(this.#root, { path, kind: 'symlink', target: h.linkname, uid, gid, mtime: h.mtime, xattrs }));
        break;
      case 'link': {
        const target = this.#clean(h.linkname, h.name);
        if (target === '') throw new UnsafeArchiveEntryError(this.#o.where, h.name, 'hard link to the destination directory');
        const st = this.#call(h.name, target, () => this.#fs.fsLstatAt(this.#root, target));
        if (st === null) throw new UnsafeArchiveEntryError(this.#o.where, h.name, `hard link target ${JSON.stringify(h.linkname)} is not in the archive's destination`);
        if (isDirStat(st)) throw new UnsafeArchiveEntryError(this.#o.where, h.name, `hard link to a directory (${JSON.stringify(h.linkname)})`);
        if (target !== path) this.#call(h.name, path, () => this.#fs.fsMakeEntry(this.#root, { path, kind: 'link', target }));
        break;
      }
      case 'char':
      case 'block':
        if (this.#o.devices === 'refuse') {
          throw new UnsafeArchiveEntryError(this.#o.where, h.name, `${h.type} device ${h.devmajor}:${h.devminor} (device nodes are only copied into privileged containers)`);
        }
        if (this.#o.devices === 'skip') {
          this.skipped.push(h.name);
          return;
        }
        this.#call(h.name, path, () => this.#fs.fsMakeEntry(this.#root, { path, kind: h.type, major: h.devmajor, minor: h.devminor, ...meta }));
        break;
      case 'fifo':
        this.#call(h.name, path, () => this.#fs.fsMakeEntry(this.#root, { path, kind: 'fifo', ...meta }));
        break;
    }
    this.entries++;
  }

  data(chunk: Buffer): void {
    const f = this.#file;
    if (!f) return;
    let off = 0;
    try {
      while (off < chunk.length) off += writeSync(f.fd, chunk, off, chunk.length - off);
    } catch (error) {
      throw fromNativeError(error, { context: `${this.#o.where}: writing ${JSON.stringify(f.entry)}`, path: f.path });
    }
  }

  entryEnd(): void {
    const f = this.#file;
    if (!f) return;
    this.#file = undefined;
    const h = f.header;
    const { uid, gid } = this.#o.owner(h.uid, h.gid, h.name);
    const xattrs = h.xattrs.filter(([n]) => this.#o.keepXattr(n));
    try {
      this.#call(f.entry, f.path, () => this.#fs.fsFinishFile(f.fd, { uid, gid, mode: h.mode, mtime: h.mtime, xattrs }, f.tmp));
      this.#call(f.entry, f.path, () => this.#fs.fsRenameAt(this.#root, f.tmp, f.path));
    } catch (error) {
      this.#removeQuietly(f.tmp);
      throw error;
    }
  }

  /** Directory mtimes last: creating their children changed them. */
  finish(): void {
    for (const [dir, mtime] of this.#dirTimes) this.#call(dir, dir, () => this.#fs.fsSetTimesAt(this.#root, dir, mtime));
    this.#dirTimes.clear();
  }

  /** After a failure: the file being written is closed and its temporary name removed. */
  abort(): void {
    const f = this.#file;
    this.#file = undefined;
    if (!f) return;
    try {
      closeSync(f.fd);
    } catch {
      // already closed by a failed fsFinishFile
    }
    this.#removeQuietly(f.tmp);
  }

  #removeQuietly(rel: string): void {
    try {
      this.#fs.fsRemoveAt(this.#root, rel);
    } catch {
      // the directory itself went away; nothing of ours is left to remove
    }
  }

  #clean(name: string, entry: string): string {
    try {
      return cleanEntryName(name);
    } catch (error) {
      const reason = (error as { reason?: string }).reason ?? (error as Error).message;
      throw new UnsafeArchiveEntryError(this.#o.where, entry, name === entry ? reason : `link target ${JSON.stringify(name)}: ${reason}`);
    }
  }

  /** Makes the parents of an entry that the archive did not list (0755, owned by root). */
  #ensureDir(dir: string, entry: string): void {
    if (this.#knownDirs.has(dir)) return;
    let prefix = '';
    for (const part of dir.split('/')) {
      prefix = joinRel(prefix, part);
      if (this.#knownDirs.has(prefix)) continue;
      const at = prefix;
      const st = this.#call(entry, at, () => this.#fs.fsLstatAt(this.#root, at));
      if (st === null) {
        const { uid, gid } = this.#o.owner(0, 0, entry);
        this.#call(entry, at, () => this.#fs.fsMakeEntry(this.#root, { path: at, kind: 'dir', uid, gid, mode: 0o755 }));
      } else if ((st.mode & S_IFMT) === S_IFLNK) {
        throw new UnsafeArchiveEntryError(this.#o.where, entry, `its parent ${JSON.stringify(at)} is a symlink`);
      } else if (!isDirStat(st)) {
        throw new ArchiveConflictError(`${this.#o.where}: entry ${JSON.stringify(entry)}: parent ${JSON.stringify(at)} is not a directory`, at);
      }
      this.#knownDirs.add(at);
    }
  }

  /** A native call; confinement refusals become {@link UnsafeArchiveEntryError}s, the rest SystemErrors naming the path. */
  #call<T>(entry: string, path: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (!isSystemError(error)) throw error;
      if (error.code === 'ELOOP') throw new UnsafeArchiveEntryError(this.#o.where, entry, `a directory on its way is a symlink (${error.path ?? path})`);
      if (error.code === 'EXDEV') throw new UnsafeArchiveEntryError(this.#o.where, entry, `its path leaves the destination (${error.path ?? path})`);
      throw fromNativeError(error, { context: `${this.#o.where}: entry ${JSON.stringify(entry)}`, path });
    }
  }
}
