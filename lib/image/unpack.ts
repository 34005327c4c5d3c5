/**
 * Applying a layer tar to a directory, in one of two modes:
 *
 * - `layer`: the directory is one overlay lower layer of its own. Whiteouts become what overlay
 *   expects (`.wh.x` -> char device 0/0 named `x`; `.wh..wh..opq` -> `trusted.overlay.opaque=y`
 *   on the directory), and a hard link to a file that only exists in a lower layer is resolved
 *   by copying that file up into this layer (overlay would show two unrelated names otherwise).
 * - `flatten`: layers are applied one after another to the same directory, like `umoci unpack`;
 *   whiteouts delete.
 *
 * Every entry goes through the native core's confined operations (see `fs-ops.ts`): a hostile
 * tar can neither name a path outside the root nor reach out through a symlink. Names with `..`
 * or a leading `/`, and paths whose parent is a symlink, are refused outright with an
 * {@link UnsafeLayerEntryError} naming the layer and the entry.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, readSync, writeSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { UnsupportedError, ValidationError, isSystemError } from '../errors.js';
import { fromNativeError } from '../native.js';
import { DigestMismatchError, LayerFormatError, LayerTooLargeError, UnsafeLayerEntryError } from './errors.js';
import { fsOps, type FsOpsBinding, type FsStat, type WritePoolHandle } from './fs-ops.js';
import type { LayerCompression } from './manifest.js';
import { OPAQUE_XATTR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, isOpaqueXattr, isWhiteout } from './overlay-format.js';
import { TarFormatError, TarReader, type TarHeader, type TarSink } from './tar-reader.js';

export type UnpackMode = 'layer' | 'flatten';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** Thrown inside the sink; converted to the public error with the layer digest attached. */
class EntryRefused extends Error {
  constructor(readonly entry: string, readonly reason: string) {
    super(reason);
  }
}

/**
 * @internal
 * Normalises a tar name to a root-relative path ("" for the root itself): drops "./" and
 * repeated slashes; refuses absolute names (except "/" alone, the root) and any ".." component (no legitimate layer writer
 * produces either, and accepting them is how CVE-2019-14271-style escapes start).
 */
export function cleanEntryName(raw: string): string {
  if (raw.includes('\0')) throw new EntryRefused(raw, 'name contains a NUL byte');
  // umoci writes the layer's root directory itself as "/": that names the root, not a host path.
  if (raw === '/') return '';
  if (raw.startsWith('/')) throw new EntryRefused(raw, 'absolute path');
  const parts: string[] = [];
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new EntryRefused(raw, '".." path component');
    parts.push(p);
  }
  return parts.join('/');
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? '' : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Extended attributes a layer may not set: overlay's own metadata would let a layer forge
 * whiteouts, redirects or metacopy origins in the merged view. */
function allowedXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('user.overlay.');
}

/** Options of a {@link LayerApplier}. */
export interface ApplierOptions {
  /**
   * Threads writing new small regular files, out of order among themselves (both modes; below
   * a private root they cache parent directories, below any other root they resolve each one
   * in the root again, see `fsWritePoolCreate`). 0: every entry is written by the calling
   * thread, in order. Default 0.
   */
  parallel?: number;
  /**
   * Create character and block device entries (flatten mode). false: skip them, removing what
   * a lower layer had at that path (the entry replaced it). Layers for overlay always keep
   * them: a container sees them only through its own mount, with `nodev` and the device
   * cgroup in force. Default true.
   */
  devices?: boolean;
  /**
   * The xattr that marks an opaque directory (layer mode). Default `trusted.overlay.opaque`,
   * which only host root may set; a layer unpacked inside a user namespace (rootless) writes
   * `user.overlay.opaque`, the spelling overlay reads when mounted with `userxattr`.
   */
  opaqueXattr?: string;
  /**
   * Owners an entry may have: uids and gids below this. A rootless unpack runs in a user
   * namespace holding only container ids 0..idLimit-1; an owner outside is refused with an
   * {@link UnsupportedError} naming the entry and the fix, before a chown would fail with a
   * bare EINVAL. Default: no limit.
   */
  idLimit?: number;
}

/**
 * Files up to this size go to the write pool whole, their pieces joined natively; larger ones
 * are streamed to it piece by piece as they arrive (`{ stream: 'open' }`, `{ append }`, `{
 * stream: 'end' }`), so no file's content is written on the JS thread or held whole.
 */
const POOL_MAX_FILE = 1024 * 1024;

interface PendingLink {
  path: string;
  target: string;
  entry: string;
}

/**
 * A {@link TarSink} that writes entries below `rootFd`. Synchronous: each call does its
 * syscalls and returns, so the caller can feed it decompressed chunks as they arrive.
 */
export class LayerApplier implements TarSink {
  private readonly fs: FsOpsBinding;
  private readonly knownDirs = new Set<string>(['']);
  private readonly createdInLayer = new Set<string>();
  private readonly implicitDirs = new Set<string>();
  private readonly dirTimes = new Map<string, number>();
  private readonly pendingLinks: PendingLink[] = [];
  private currentFd = -1;
  private current: { path: string; header: TarHeader } | undefined;
  /** Bytes of regular-file content written. */
  contentBytes = 0;
  // Parallel writing (see `ApplierOptions.parallel`): the pool, the files queued to it since
  // the last barrier (path -> tar name, for errors), every path this layer has made, and the
  // file being collected for the pool.
  private pool: WritePoolHandle | undefined;
  private readonly pending = new Map<string, string>();
  private readonly made = new Set<string>();
  private collecting: { path: string; header: TarHeader; chunks: Buffer[] } | undefined;
  /** The large file being streamed to the pool (opened there, pieces queued as they arrive). */
  private streaming: string | undefined;
  private readonly devices: boolean;
  private readonly opaqueXattr: string;
  private readonly idLimit: number;
  /** Device entries skipped (see `ApplierOptions.devices`): a hard link to one is skipped too. */
  private readonly skippedDevices = new Set<string>();

  constructor(
    private readonly rootFd: number,
    private readonly mode: UnpackMode,
    private layer: string,
    fs: FsOpsBinding = fsOps(),
    options: ApplierOptions = {},
  ) {
    this.fs = fs;
    this.devices = options.devices ?? true;
    this.opaqueXattr = options.opaqueXattr ?? OPAQUE_XATTR;
    this.idLimit = options.idLimit ?? Infinity;
    const threads = options.parallel ?? 0;
    if (threads > 0) this.pool = fs.fsWritePoolCreate(rootFd, threads);
  }

  /**
   * Waits until every file queued to the pool is written. Called before anything that could
   * depend on one (a hard link to it, a path made before, a parent that is one, lower-layer
   * lookups, directory mtimes) — the only reorderings the pool may do are of new files among
   * themselves.
   */
  private drain(): void {
    if (!this.pool || this.pending.size === 0) return;
    try {
      this.fs.fsWritePoolBarrier(this.pool);
    } catch (e) {
      // The native path is the file's, or `file (xattr.name)` for an xattr that failed.
      const path = isSystemError(e) ? e.path ?? '' : '';
      let entry = this.pending.get(path);
      if (entry === undefined) for (const [p, name] of this.pending) if (path.startsWith(`${p} (`)) entry = name;
      this.pending.clear();
      this.call(entry ?? path, () => {
        throw e;
      });
    }
    this.pending.clear();
  }

  /**
   * Resolves once the pool has written everything queued, without blocking the event loop:
   * the synchronous drain that follows (lower-layer resolution, directory mtimes) then finds
   * nothing to wait for, and meanwhile the other layers of a pull keep downloading,
   * decompressing and queueing (a profile of the blocking drain: ≈ 0.4 s of a pull's JS
   * thread, docs/benchmarks.md). Failures are reported by that drain. The pool's threads always
   * finish their queue, so this ends; the signal stops the wait.
   */
  async settled(signal?: AbortSignal): Promise<void> {
    while (this.pool && this.pending.size > 0 && !this.fs.fsWritePoolIdle(this.pool)) {
      signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /**
   * Resolves once the pool can take another decompressed piece without `fsWritePoolSubmit`
   * blocking the JS thread (its queue is bounded): meanwhile the other layers of a pull keep
   * downloading, decompressing and queueing to their own pools. In a profile of a single-layer
   * pull the JS thread sat ≈ 350 ms in that blocking submit (docs/benchmarks.md). The workers
   * always make progress, so this ends; the signal stops the wait.
   */
  async room(signal?: AbortSignal): Promise<void> {
    while (this.pool && !this.fs.fsWritePoolHasRoom(this.pool)) {
      signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  private closePool(): void {
    if (!this.pool) return;
    const pool = this.pool;
    this.pool = undefined;
    this.fs.fsWritePoolClose(pool);
  }

  /** Flatten mode applies several layers to one root: start the next one. */
  nextLayer(layer: string): void {
    this.layer = layer;
    this.createdInLayer.clear();
  }

  entry(h: TarHeader): void {
    const path = cleanEntryName(h.name);
    const base = baseOf(path);
    if (path === '') return; // the layer root itself: the directory we were given
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.drain(); // whiteouts look at and replace what is there
      return this.whiteout(h.name, parentOf(path), base);
    }
    this.ensureDir(parentOf(path), h.name);
    const xattrs = h.xattrs.filter(([n]) => allowedXattr(n));
    const meta = { uid: h.uid, gid: h.gid, mode: h.mode, mtime: h.mtime, xattrs };
    if (h.type !== 'link' && (h.uid >= this.idLimit || h.gid >= this.idLimit)) this.unmappedOwner(h);
    this.forget(path);
    if ((h.type === 'char' || h.type === 'block') && !this.devices) {
      if (this.made.has(path)) this.drain(); // what it replaces may still be queued, or hold queued files
      // Not made on the host (a block device here would be the host's disk), but it still
      // replaces whatever a lower layer had at this path.
      this.call(h.name, () => this.fs.fsRemoveAt(this.rootFd, path));
      // In an overlay layer a missing entry would let the lower layer's show through: a
      // whiteout hides it, as the device would have.
      if (this.mode === 'layer') this.call(h.name, () => this.fs.fsMakeEntry(this.rootFd, { path, kind: 'char', major: 0, minor: 0, uid: 0, gid: 0, mode: 0 }));
      this.skippedDevices.add(path);
      this.createdInLayer.add(path);
      return;
    }
    // Replacing something this layer made: it must be on disk first, and the replacement
    // happens here, in order.
    const replacing = this.made.has(path);
    if (this.pool) {
      if (replacing) this.drain();
      this.made.add(path);
    }
    switch (h.type) {
      case 'file': {
        // A new small file goes to the pool with its content; anything else is written here.
        if (this.pool && !replacing && h.size <= POOL_MAX_FILE) {
          this.collecting = { path, header: h, chunks: [] };
          break;
        }
        if (this.pool && !replacing) {
          this.fs.fsWritePoolSubmit(this.pool, path, { uid: h.uid, gid: h.gid, mode: h.mode, mtime: h.mtime, xattrs }, { stream: 'open' });
          this.pending.set(path, h.name);
          this.streaming = path;
          break;
        }
        this.currentFd = this.call(h.name, () => this.fs.fsMakeEntry(this.rootFd, { path, kind: 'file' }));
        this.current = { path, header: h };
        break;
      }
      case 'dir':
        this.call(h.name, () => this.fs.fsMakeEntry(this.rootFd, { path, kind: 'dir', ...meta, mtime: undefined }));
        this.knownDirs.add(path);
        this.implicitDirs.delete(path);
        this.dirTimes.set(path, h.mtime);
        break;
      case 'symlink':
        if (h.linkname === '') throw new EntryRefused(h.name, 'symlink with an empty target');
        // A new symlink is a new inode like a file (a busybox image is hundreds of them): the pool
        // creates it; what could depend on it (a parent, a hard link) drains first, as for files.
        if (this.pool && !replacing) {
          this.fs.fsWritePoolSubmit(this.pool, path, { uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs }, { symlink: h.linkname });
          this.pending.set(path, h.name);
          break;
        }
        this.call(h.name, () => this.fs.fsMakeEntry(this.rootFd, { path, kind: 'symlink', target: h.linkname, uid: h.uid, gid: h.gid, mtime: h.mtime, xattrs }));
        break;
      case 'link':
        this.hardLink(h, path);
        break;
      case 'char':
      case 'block':
      case 'fifo':
        this.call(h.name, () => this.fs.fsMakeEntry(this.rootFd, { path, kind: h.type, major: h.devmajor, minor: h.devminor, ...meta }));
        break;
    }
    this.createdInLayer.add(path);
  }

  data(chunk: Buffer): void {
    if (this.collecting) {
      this.collecting.chunks.push(chunk);
      this.contentBytes += chunk.length;
      return;
    }
    if (this.streaming !== undefined) {
      this.fs.fsWritePoolSubmit(this.pool!, this.streaming, {}, { append: chunk });
      this.contentBytes += chunk.length;
      return;
    }
    let off = 0;
    while (off < chunk.length) off += writeSync(this.currentFd, chunk, off, chunk.length - off);
    this.contentBytes += chunk.length;
  }

  entryEnd(): void {
    if (this.collecting) {
      const { path, header: h, chunks } = this.collecting;
      this.collecting = undefined;
      // The pieces are joined by the native side as it copies them into the job.
      const data = chunks.length === 1 ? chunks[0]! : chunks;
      const xattrs = h.xattrs.filter(([n]) => allowedXattr(n));
      this.fs.fsWritePoolSubmit(this.pool!, path, { uid: h.uid, gid: h.gid, mode: h.mode, mtime: h.mtime, xattrs }, data);
      this.pending.set(path, h.name);
      return;
    }
    if (this.streaming !== undefined) {
      this.fs.fsWritePoolSubmit(this.pool!, this.streaming, {}, { stream: 'end' });
      this.streaming = undefined;
      return;
    }
    if (this.currentFd < 0 || !this.current) return;
    const { path, header: h } = this.current;
    const fd = this.currentFd;
    this.currentFd = -1;
    this.current = undefined;
    const xattrs = h.xattrs.filter(([n]) => allowedXattr(n));
    this.call(h.name, () => this.fs.fsFinishFile(fd, { uid: h.uid, gid: h.gid, mode: h.mode, mtime: h.mtime, xattrs }, path));
  }

  /** Closes a file left open by an entry that failed half-way, and stops the write pool. */
  abort(): void {
    if (this.currentFd >= 0) closeSync(this.currentFd);
    this.currentFd = -1;
    this.collecting = undefined;
    this.streaming = undefined; // the worker closes it: a later job or the pool's end
    this.pending.clear();
    this.closePool();
  }

  /**
   * Work that needs the lower layers complete (layer mode): hard links whose target is in a
   * lower layer are copied up, and directories this layer had to create implicitly take the
   * metadata of the same directory below (overlay shows the upper directory's metadata).
   * @param lowerFds root fds of the lower layers, top first
   */
  resolveAgainstLowers(lowerFds: number[]): void {
    this.publicErrors(() => {
      this.drain();
      this.resolveLowers(lowerFds);
    });
  }

  /** Directory mtimes last: creating children changes them. Stops the write pool. */
  finish(): void {
    try {
      this.publicErrors(() => {
        this.drain();
        for (const [dir, mtime] of this.dirTimes) this.call(dir, () => this.fs.fsSetTimesAt(this.rootFd, dir, mtime));
        this.dirTimes.clear();
      });
    } finally {
      this.closePool();
    }
  }


  private publicErrors(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof EntryRefused) throw new UnsafeLayerEntryError(this.layer, e.entry, e.reason);
      throw e;
    }
  }

  private resolveLowers(lowerFds: number[]): void {
    for (const link of this.pendingLinks) {
      if (this.call(link.entry, () => this.fs.fsLstatAt(this.rootFd, link.path)) !== null) continue; // replaced later in the tar
      if (this.call(link.entry, () => this.fs.fsLstatAt(this.rootFd, link.target)) === null) this.copyUp(link, lowerFds);
      this.ensureDir(parentOf(link.path), link.entry);
      this.call(link.entry, () => this.fs.fsMakeEntry(this.rootFd, { path: link.path, kind: 'link', target: link.target }));
    }
    for (const dir of this.implicitDirs) {
      const found = this.lookupLower(lowerFds, dir);
      if (found === null || (found.st.mode & S_IFMT) !== S_IFDIR) continue;
      const { st } = found;
      this.call(dir, () => this.fs.fsMakeEntry(this.rootFd, { path: dir, kind: 'dir', uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 }));
      this.dirTimes.set(dir, st.mtime);
    }
  }

  /**
   * Overlay's lookup of `path` through the lower layers (top first): the first layer that has
   * it wins, unless a whiteout, a non-directory or an opaque directory on the way hides it.
   */
  private lookupLower(lowerFds: number[], path: string): { fd: number; st: FsStat } | null {
    const ancestors: string[] = [];
    for (let p = parentOf(path); p !== ''; p = parentOf(p)) ancestors.unshift(p);
    for (const fd of lowerFds) {
      let opaque = false;
      let missing = false;
      for (const a of ancestors) {
        const st = this.fs.fsLstatAt(fd, a);
        if (st === null) {
          missing = true;
          break;
        }
        if ((st.mode & S_IFMT) !== S_IFDIR) return null; // a whiteout or a file hides the subtree
        if (this.fs.fsListXattrsAt(fd, a).some(([n, v]) => isOpaqueXattr(n, v))) opaque = true;
      }
      if (!missing) {
        const st = this.fs.fsLstatAt(fd, path);
        if (st !== null) return isWhiteout(st) ? null : { fd, st };
      }
      if (opaque) return null;
    }
    return null;
  }

  /** Paths in one layer dir that share `ino` (hard-link siblings). */
  private findLinks(fd: number, ino: number, count: number): string[] {
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const name of this.fs.fsReadDirAt(fd, dir)) {
        if (found.length >= count) return;
        const path = join(dir, name);
        const st = this.fs.fsLstatAt(fd, path);
        if (st === null) continue;
        if ((st.mode & S_IFMT) === S_IFDIR) walk(path);
        else if (st.ino === ino) found.push(path);
      }
    };
    walk('');
    return found;
  }

  /**
   * Copies a lower layer's file into this layer so that a hard link to it can be made here.
   * Its other names in that layer, where still visible, become links to the copy too: in the
   * merged view the whole hard-link group then stays one inode, as in a flattened unpack.
   */
  private copyUp(link: PendingLink, lowerFds: number[]): void {
    const found = this.lookupLower(lowerFds, link.target);
    if (found === null) throw new LayerFormatError(this.layer, `entry ${JSON.stringify(link.entry)}: hard link target ${JSON.stringify(link.target)} does not exist`);
    const { fd: lower, st } = found;
    if ((st.mode & S_IFMT) !== S_IFREG) {
      throw new LayerFormatError(this.layer, `entry ${JSON.stringify(link.entry)}: hard link to ${JSON.stringify(link.target)}, which is not a regular file in a lower layer`);
    }
    this.ensureDir(parentOf(link.target), link.entry);
    const src = this.call(link.entry, () => this.fs.fsOpenAt(lower, link.target));
    try {
      const dst = this.call(link.entry, () => this.fs.fsMakeEntry(this.rootFd, { path: link.target, kind: 'file' }));
      try {
        const buf = Buffer.allocUnsafe(256 * 1024);
        for (;;) {
          const n = readSync(src, buf, 0, buf.length, null);
          if (n === 0) break;
          let off = 0;
          while (off < n) off += writeSync(dst, buf, off, n - off);
        }
      } catch (e) {
        closeSync(dst);
        throw e;
      }
      const xattrs = this.fs.fsListXattrsAt(lower, link.target).filter(([n]) => allowedXattr(n));
      this.call(link.entry, () => this.fs.fsFinishFile(dst, { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtime, xattrs }, link.target));
    } finally {
      closeSync(src);
    }
    if (st.nlink < 2) return;
    for (const sibling of this.findLinks(lower, st.ino, st.nlink)) {
      if (sibling === link.target || sibling === link.path) continue;
      if (this.call(link.entry, () => this.fs.fsLstatAt(this.rootFd, sibling)) !== null) continue; // this layer replaced it
      const visible = this.lookupLower(lowerFds, sibling);
      if (visible === null || visible.fd !== lower || visible.st.ino !== st.ino) continue;
      this.ensureDir(parentOf(sibling), link.entry);
      this.call(link.entry, () => this.fs.fsMakeEntry(this.rootFd, { path: sibling, kind: 'link', target: link.target }));
    }
  }

  private hardLink(h: TarHeader, path: string): void {
    let target: string;
    try {
      target = cleanEntryName(h.linkname);
    } catch (e) {
      if (e instanceof EntryRefused) throw new EntryRefused(h.name, `hard link target ${JSON.stringify(h.linkname)}: ${e.reason}`);
      throw e;
    }
    if (target === '') throw new EntryRefused(h.name, 'hard link to the layer root');
    if (this.skippedDevices.has(target)) {
      this.call(h.name, () => this.fs.fsRemoveAt(this.rootFd, path));
      this.skippedDevices.add(path);
      return;
    }
    if (this.pending.has(target)) this.drain();
    const st = this.call(h.name, () => this.fs.fsLstatAt(this.rootFd, target));
    if (st === null) {
      if (this.mode === 'layer') {
        this.pendingLinks.push({ path, target, entry: h.name });
        return;
      }
      throw new LayerFormatError(this.layer, `entry ${JSON.stringify(h.name)}: hard link target ${JSON.stringify(h.linkname)} does not exist`);
    }
    if ((st.mode & S_IFMT) === S_IFDIR) throw new EntryRefused(h.name, `hard link to a directory (${JSON.stringify(h.linkname)})`);
    if (target === path) return;
    this.call(h.name, () => this.fs.fsMakeEntry(this.rootFd, { path, kind: 'link', target }));
  }

  private whiteout(entry: string, dir: string, base: string): void {
    if (dir !== '' && !this.knownDirs.has(dir)) {
      const st = this.call(entry, () => this.fs.fsLstatAt(this.rootFd, dir));
      if (st !== null && (st.mode & S_IFMT) === S_IFLNK) throw new EntryRefused(entry, `parent ${JSON.stringify(dir)} is a symlink`);
      // umoci writes `x` (now a file) followed by `x/.wh.child` when a directory became a file:
      // nothing below a non-directory can be visible, so such whiteouts are moot.
      if (st !== null && (st.mode & S_IFMT) !== S_IFDIR) return;
    }
    if (base === OPAQUE_MARKER) {
      this.ensureDir(dir, entry);
      if (this.mode === 'layer') {
        this.call(entry, () => this.fs.fsSetXattrAt(this.rootFd, dir, this.opaqueXattr, Buffer.from('y')));
      } else {
        for (const name of this.call(entry, () => this.fs.fsReadDirAt(this.rootFd, dir))) {
          const child = join(dir, name);
          if (this.createdInLayer.has(child)) continue;
          this.forget(child);
          this.call(entry, () => this.fs.fsRemoveAt(this.rootFd, child));
        }
      }
      return;
    }
    const name = base.slice(WHITEOUT_PREFIX.length);
    // `.wh..wh.*` other than the opaque marker are aufs bookkeeping (e.g. `.wh..wh.plnk`).
    if (name.startsWith(WHITEOUT_PREFIX)) return;
    if (name === '' || name === '.' || name === '..') throw new EntryRefused(entry, 'whiteout that names no file in its directory (would point outside it)');
    const path = join(dir, name);
    if (this.mode === 'layer') {
      this.ensureDir(dir, entry);
      this.forget(path);
      this.call(entry, () => this.fs.fsMakeEntry(this.rootFd, { path, kind: 'char', major: 0, minor: 0, uid: 0, gid: 0, mode: 0 }));
    } else {
      // A parent that does not exist means there is nothing to delete.
      if (dir !== '' && !this.knownDirs.has(dir) && this.call(entry, () => this.fs.fsLstatAt(this.rootFd, dir)) === null) return;
      this.forget(path);
      this.call(entry, () => this.fs.fsRemoveAt(this.rootFd, path));
    }
  }

  private unmappedOwner(h: TarHeader): never {
    const why = this.idLimit <= 1 ? 'only root exists in a single-id map (no subordinate ids for this user)' : `the user namespace maps container ids 0..${this.idLimit - 1}`;
    const fix = this.idLimit <= 1
      ? 'apt-get install uidmap, and as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 <user>'
      : 'an image whose files are owned by ids below 65536';
    throw new UnsupportedError(`layer ${this.layer}: entry ${JSON.stringify(h.name)} is owned by ${h.uid}:${h.gid}, which cannot exist without root: ${why}. Fix: ${fix}`);
  }

  /** Makes sure `dir` exists as a directory, creating missing parents (0755 root:root). */
  private ensureDir(dir: string, entry: string): void {
    if (this.knownDirs.has(dir)) return;
    const parts = dir.split('/');
    let prefix = '';
    for (const part of parts) {
      prefix = join(prefix, part);
      if (this.knownDirs.has(prefix)) continue;
      if (this.pending.has(prefix)) this.drain(); // a queued file: let it exist, then refuse it as a parent
      const st: FsStat | null = this.call(entry, () => this.fs.fsLstatAt(this.rootFd, prefix));
      if (st === null) {
        this.call(entry, () => this.fs.fsMakeEntry(this.rootFd, { path: prefix, kind: 'dir', uid: 0, gid: 0, mode: 0o755 }));
        this.implicitDirs.add(prefix);
        // An entry that later replaces this directory must wait for the files queued into it.
        if (this.pool) this.made.add(prefix);
      } else if ((st.mode & S_IFMT) === S_IFLNK) {
        throw new EntryRefused(entry, `parent ${JSON.stringify(prefix)} is a symlink`);
      } else if ((st.mode & S_IFMT) !== S_IFDIR) {
        throw new LayerFormatError(this.layer, `entry ${JSON.stringify(entry)}: parent ${JSON.stringify(prefix)} is not a directory`);
      }
      this.knownDirs.add(prefix);
    }
  }

  /** Drops cached knowledge about `path` and, if it was a directory, everything below it. */
  private forget(path: string): void {
    this.skippedDevices.delete(path);
    if (!this.knownDirs.has(path)) return;
    const prefix = `${path}/`;
    for (const d of this.knownDirs) if (d === path || d.startsWith(prefix)) this.knownDirs.delete(d);
    for (const d of this.dirTimes.keys()) if (d === path || d.startsWith(prefix)) this.dirTimes.delete(d);
    for (const d of this.implicitDirs) if (d === path || d.startsWith(prefix)) this.implicitDirs.delete(d);
  }

  /** Runs a native call, turning confinement failures into refusals and others into SystemError. */
  private call<T>(entry: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (!isSystemError(e)) throw e;
      if (e.code === 'ELOOP') throw new EntryRefused(entry, `a parent directory is a symlink (${e.path ?? ''})`);
      if (e.code === 'EXDEV') throw new EntryRefused(entry, `path leaves the layer directory or crosses a mount (${e.path ?? ''})`);
      throw fromNativeError(e, { context: `layer ${this.layer}: entry ${JSON.stringify(entry)}` });
    }
  }
}

/**
 * Default cap on a layer's uncompressed size (`maxLayerSize`): 64 GiB. Far above real image
 * layers (rarely more than a few GiB), and it stops a decompression bomb (zstd expands up to
 * ~32000:1, so 130 KiB become 4 GiB; gzip ~1000:1) before it fills the disk.
 */
export const DEFAULT_MAX_LAYER_SIZE = 64 * 1024 ** 3;

/** Validates a `maxLayerSize` option; returns the limit to use. */
export function maxLayerSizeOption(value: unknown, option = 'maxLayerSize', fallback = DEFAULT_MAX_LAYER_SIZE): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new ValidationError(option, `must be a positive whole number of bytes, got ${String(value)}`);
  return value;
}

/** Options of {@link decompress}. */
export interface DecompressOptions {
  /**
   * Refuse (with {@link LayerTooLargeError}) once the output passes this many bytes. Default
   * {@link DEFAULT_MAX_LAYER_SIZE}.
   */
  limit?: number;
  /** Names the layer in the error: its digest, or the archive member it came from. */
  layer?: string;
}

/** gzip output per step; Node's own default chunk is 16 KiB. */
const GZIP_CHUNK = 128 * 1024;

/**
 * Decompressed chunks of a layer blob, produced in bounded steps (at most 128 KiB each, and
 * only as fast as the consumer takes them), so that memory never depends on how far the input
 * expands. Throws {@link LayerTooLargeError} as soon as the output passes `limit`.
 */
export async function* decompress(source: AsyncIterable<Buffer> | Iterable<Buffer>, compression: LayerCompression, options: DecompressOptions = {}, fs: () => FsOpsBinding = fsOps): AsyncGenerator<Buffer> {
  const limit = options.limit ?? DEFAULT_MAX_LAYER_SIZE;
  let total = 0;
  const count = (chunk: Buffer): Buffer => {
    total += chunk.length;
    if (total > limit) throw new LayerTooLargeError(options.layer ?? 'content', limit);
    return chunk;
  };
  if (compression === 'none') {
    for await (const chunk of source) yield count(chunk);
    return;
  }
  if (compression === 'zstd') {
    const native = fs();
    const handle = native.zstdCreate();
    for await (const chunk of source) {
      // One native step yields at most one zstd block; the loop hands each to the consumer
      // before decoding the next, so a chunk that expands a millionfold costs no memory.
      let offset = 0;
      for (;;) {
        const step = native.zstdDecompress(handle, chunk, offset);
        offset = step.offset;
        if (step.output.length > 0) yield count(step.output);
        if (offset >= chunk.length && !step.more) break;
      }
    }
    native.zstdEnd(handle);
    return;
  }
  // ISA-L's inflater where it is installed: on the JS thread, in bounded steps like zstd, at
  // a fraction of zlib's CPU (docs/design/images.md, "Decompression").
  const native = fs();
  const gz = native.gzipCreate();
  if (gz !== null) {
    for await (const chunk of source) {
      let offset = 0;
      for (;;) {
        const step = native.gzipInflate(gz, chunk, offset);
        offset = step.offset;
        if (step.output.length > 0) yield count(step.output);
        if (offset >= chunk.length && !step.more) break;
      }
    }
    native.gzipEnd(gz);
    return;
  }
  // Node's zlib stream honours backpressure: with the output pulled one chunk at a time it
  // inflates no further than its readable buffer (one highWaterMark) ahead of us.
  const input = Readable.from(source, { objectMode: false });
  const gunzip = createGunzip({ chunkSize: GZIP_CHUNK });
  input.on('error', (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  try {
    for await (const chunk of gunzip) yield count(chunk as Buffer);
  } finally {
    input.destroy();
    gunzip.destroy();
  }
}

export interface ApplyLayerOptions {
  /** The layer's (compressed) digest, for error messages. */
  layer: string;
  compression: LayerCompression;
  /** Expected sha256 of the uncompressed tar; checked after the last byte. */
  diffId?: string;
  signal?: AbortSignal;
  /** Uncompressed bytes allowed; past them {@link LayerTooLargeError}. Default {@link DEFAULT_MAX_LAYER_SIZE}. */
  maxSize?: number;
}

/**
 * Streams a (compressed) layer blob through decompression and the tar parser into `applier`.
 * Returns the uncompressed digest and size. Throws {@link UnsafeLayerEntryError},
 * {@link LayerFormatError}, {@link LayerTooLargeError} or {@link DigestMismatchError}; on failure the caller removes the
 * partly written directory.
 */
export async function applyLayer(source: AsyncIterable<Buffer> | Iterable<Buffer>, applier: LayerApplier, options: ApplyLayerOptions): Promise<{ diffId: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const reader = new TarReader(applier);
  try {
    for await (const chunk of decompress(source, options.compression, { layer: options.layer, ...(options.maxSize !== undefined ? { limit: options.maxSize } : {}) })) {
      options.signal?.throwIfAborted();
      hash.update(chunk);
      size += chunk.length;
      await applier.room(options.signal);
      reader.write(chunk);
    }
    reader.end();
  } catch (e) {
    applier.abort();
    if (e instanceof EntryRefused) throw new UnsafeLayerEntryError(options.layer, e.entry, e.reason);
    if (e instanceof TarFormatError) throw new LayerFormatError(options.layer, e.message, { cause: e });
    if ((isSystemError(e) && (e.syscall === 'zstd' || e.syscall === 'gzip')) || (e as { code?: string }).code === 'Z_DATA_ERROR' || (e as { code?: string }).code === 'Z_BUF_ERROR') {
      throw new LayerFormatError(options.layer, `decompression failed: ${(e as Error).message}`, { cause: e });
    }
    throw e;
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  if (options.diffId !== undefined && diffId !== options.diffId) {
    applier.abort();
    throw new DigestMismatchError(options.diffId, diffId, `layer ${options.layer}: uncompressed content (diff id)`);
  }
  return { diffId, size };
}
