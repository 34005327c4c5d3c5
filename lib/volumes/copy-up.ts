/**
 * Docker's copy-up: an empty volume mounted over a directory that holds files in the image
 * receives a copy of them, owners, modes, timestamps, symlinks, hard links, device nodes and
 * extended attributes kept, and its root takes the directory's owner and mode.
 *
 * Reading goes through a {@link MergedView} (confined to each layer, whiteouts applied);
 * writing goes through the native confined operations beneath the volume's `_data`, which
 * refuse to pass through any symlink. A running container sharing the volume can swap a
 * directory for a symlink while the copy runs: the copy then fails (ELOOP/ENOTDIR) instead of
 * writing through it to the host.
 * @module
 */
import { closeSync, read, write } from 'node:fs';
import { promisify } from 'node:util';
import { fsOps, type FsEntryKind, type FsMeta, type FsOpsBinding, type FsStat } from '../image/fs-ops.js';
import { AbortError, SystemError, isSystemError } from '../errors.js';
import { fromNativeError } from '../native.js';
import { ConfinedDir, MergedView, joinRel } from '../image/merged-view.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../image/overlay-format.js';

const readAsync = promisify(read);
const writeAsync = promisify(write);

/** Where copy-up reads from: overlay layer dirs, top first (`{ rootfs }`: the directory alone). */
export interface CopyUpSource {
  layers: readonly string[];
}

/** Overlay's own bookkeeping must never leak into a volume (it would forge whiteouts there). */
function copyableXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('user.overlay.');
}

function toSystemError(error: unknown, what: string): unknown {
  if (isSystemError(error)) return fromNativeError(error, { context: 'copy-up into volume' });
  return error instanceof Error ? error : new SystemError('EIO', `copy-up into volume failed at ${what}`, { cause: error });
}

/**
 * The root-relative directory that copy-up of a mount at `target` reads, or null when the
 * image has nothing there (missing, or not a directory). Symlinks on the way resolve inside
 * the image, as the native core resolves the mount target inside the container root.
 */
export function copyUpDirectory(tree: MergedView, target: string): string | null {
  const rel = tree.resolve(target);
  if (rel === null || rel === '') return null;
  const e = tree.lookup(rel);
  return e && (e.stat.mode & S_IFMT) === S_IFDIR ? rel : null;
}

interface CopyState {
  tree: MergedView;
  fs: FsOpsBinding;
  dst: number;
  /** (layer fd, dev, ino) of multiply-linked files already copied -> their path in the volume. */
  links: Map<string, string>;
  buf: Buffer;
  xattrs: boolean;
  signal: AbortSignal | undefined;
}

function metaOf(state: CopyState, layer: ConfinedDir, rel: string, st: FsStat): FsMeta {
  const meta: FsMeta = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: st.mtime };
  if (state.xattrs) {
    const xattrs = state.fs.fsListXattrsAt(layer.fd, rel).filter(([n]) => copyableXattr(n));
    if (xattrs.length > 0) meta.xattrs = xattrs;
  }
  return meta;
}

async function copyFile(state: CopyState, layer: ConfinedDir, src: string, dst: string, meta: FsMeta): Promise<void> {
  const rfd = state.fs.fsOpenAt(layer.fd, src);
  try {
    const wfd = state.fs.fsMakeEntry(state.dst, { path: dst, kind: 'file' });
    try {
      for (;;) {
        const { bytesRead } = await readAsync(rfd, state.buf, 0, state.buf.length, null);
        if (bytesRead === 0) break;
        let off = 0;
        while (off < bytesRead) off += (await writeAsync(wfd, state.buf, off, bytesRead - off, null)).bytesWritten;
      }
    } catch (error) {
      closeSync(wfd);
      throw error;
    }
    state.fs.fsFinishFile(wfd, meta, dst);
  } finally {
    closeSync(rfd);
  }
}

async function copyEntry(state: CopyState, layer: ConfinedDir, src: string, dst: string, st: FsStat): Promise<void> {
  const type = st.mode & S_IFMT;
  const meta = metaOf(state, layer, src, st);
  switch (type) {
    case S_IFDIR:
      state.fs.fsMakeEntry(state.dst, { path: dst, kind: 'dir', ...meta, mtime: undefined });
      await copyChildren(state, src, dst);
      // After the children: creating them touched the directory's mtime.
      state.fs.fsSetTimesAt(state.dst, dst, st.mtime);
      return;
    case S_IFREG: {
      if (st.nlink > 1) {
        const key = `${layer.fd}:${st.dev}:${st.ino}`;
        const first = state.links.get(key);
        if (first !== undefined) {
          state.fs.fsMakeEntry(state.dst, { path: dst, kind: 'link', target: first });
          return;
        }
        state.links.set(key, dst);
      }
      await copyFile(state, layer, src, dst, meta);
      return;
    }
    case S_IFLNK: {
      const target = layer.readlink(src);
      // Symlinks get owner, xattrs and times; their mode is meaningless on Linux.
      state.fs.fsMakeEntry(state.dst, { path: dst, kind: 'symlink', target, ...meta, mode: undefined });
      return;
    }
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO: {
      const kind: FsEntryKind = type === S_IFCHR ? 'char' : type === S_IFBLK ? 'block' : 'fifo';
      state.fs.fsMakeEntry(state.dst, { path: dst, kind, major: st.rdevMajor, minor: st.rdevMinor, ...meta });
      return;
    }
    default:
      // Sockets are skipped, as Docker does: they mean nothing without their process.
      return;
  }
}

async function copyChildren(state: CopyState, src: string, dst: string): Promise<void> {
  for (const e of state.tree.listDir(src)) {
    if (state.signal?.aborted) throw new AbortError('copy-up aborted', { cause: state.signal.reason });
    await copyEntry(state, e.layer, e.path, joinRel(dst, e.name), e.stat);
  }
}

/** Whether the file system under `dstRootFd` takes the xattrs we would copy (tmpfs before 6.6 refuses `user.*`). */
function probeXattrs(fs: FsOpsBinding, dstRootFd: number, wanted: Array<[string, Buffer]>): boolean {
  try {
    for (const [name, value] of wanted) fs.fsSetXattrAt(dstRootFd, '', name, value);
    return true;
  } catch (error) {
    if (isSystemError(error) && (error.code === 'ENOTSUP' || error.code === 'EOPNOTSUPP')) return false;
    throw error;
  }
}

/**
 * Copies the image's directory at container path `target` into the volume's data directory
 * `dataDir` (which the caller checked is empty, under the volume's lock). Returns false when
 * the image has nothing there.
 */
export async function copyUp(source: CopyUpSource, target: string, dataDir: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
  const fs = fsOps();
  const tree = MergedView.open(source.layers, fs);
  let dst = -1;
  try {
    const rel = copyUpDirectory(tree, target);
    if (rel === null) return false;
    const root = tree.lookup(rel)!;
    dst = fs.fsOpenRoot(dataDir);
    const rootXattrs = fs.fsListXattrsAt(root.layer.fd, rel).filter(([n]) => copyableXattr(n));
    const state: CopyState = {
      tree,
      fs,
      dst,
      links: new Map(),
      buf: Buffer.allocUnsafe(1 << 20),
      xattrs: probeXattrs(fs, dst, rootXattrs),
      signal: options.signal,
    };
    try {
      await copyChildren(state, rel, '');
      // The volume root takes the image directory's owner and mode (Docker's copyOwnership).
      fs.fsFinishFile(fs.fsOpenAt(dst, ''), { uid: root.stat.uid, gid: root.stat.gid, mode: root.stat.mode & 0o7777 }, '.');
      fs.fsSetTimesAt(dst, '', root.stat.mtime);
      fs.fsSync(dst);
    } catch (error) {
      throw toSystemError(error, target);
    }
    return true;
  } finally {
    if (dst >= 0) closeSync(dst);
    tree.close();
  }
}
