/**
 * Tar streams of container file systems:
 *
 * - {@link mergedArchive}: the merged view of a stack of layers (upper dir + image layers),
 *   with whiteouts and opaque directories applied, as `docker export` gives;
 * - {@link layerArchive}: one upper dir as an image layer, overlay whiteouts written the OCI
 *   way (`.wh.<name>` files, `.wh..wh..opq` in opaque directories), for `commit()`.
 *
 * Both read through {@link ConfinedDir}, so a container cannot point the walk at host files.
 * A file that changes size while it is read is cut or zero-padded to the size in its header.
 * @module
 */
import { closeSync, fstatSync, read } from 'node:fs';
import { promisify } from 'node:util';
import type { FsStat } from '../image/fs-ops.js';
import { tarHeader, tarPadding, tarTrailer, type TarEntry, type TarEntryType } from '../image/tar-writer.js';
import { ConfinedDir, MergedView } from '../image/merged-view.js';
import type { ContainerLayerPaths, StorageDriver } from './driver.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, isOverlayXattr, isWhiteout } from '../image/overlay-format.js';

const readAsync = promisify(read);
const CHUNK = 256 * 1024;

function entryType(mode: number): TarEntryType | undefined {
  switch (mode & S_IFMT) {
    case S_IFREG: return 'file';
    case S_IFDIR: return 'dir';
    case S_IFLNK: return 'symlink';
    case S_IFCHR: return 'char';
    case S_IFBLK: return 'block';
    case S_IFIFO: return 'fifo';
    default: return undefined; // sockets are not archived (tar cannot hold them)
  }
}

/**
 * Header and content of one entry; nothing for what a tar cannot hold or what vanished.
 * `name` is the member's name in the archive (default `path`, its path in `layer`).
 */
export async function* entryBytes(layer: ConfinedDir, path: string, st: FsStat, hardlinkTo?: string, name = path): AsyncGenerator<Buffer> {
  const type = entryType(st.mode);
  if (type === undefined) return;
  const base: TarEntry = {
    name,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: st.mtime,
    xattrs: layer.xattrs(path).filter(([n]) => !isOverlayXattr(n)),
  };
  if (hardlinkTo !== undefined) {
    yield tarHeader({ ...base, type: 'link', linkname: hardlinkTo, xattrs: [] });
    return;
  }
  if (type === 'symlink') {
    let target: string;
    try {
      target = layer.readlink(path);
    } catch {
      return; // replaced or removed meanwhile
    }
    yield tarHeader({ ...base, linkname: target });
    return;
  }
  if (type === 'char' || type === 'block') {
    yield tarHeader({ ...base, devmajor: st.rdevMajor, devminor: st.rdevMinor });
    return;
  }
  if (type !== 'file') {
    yield tarHeader(base);
    return;
  }
  let fd: number;
  try {
    fd = layer.openFile(path);
  } catch {
    return;
  }
  try {
    const now = fstatSync(fd);
    if (!now.isFile()) return;
    const size = now.size;
    yield tarHeader({ ...base, size });
    let done = 0;
    while (done < size) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - done));
      const { bytesRead } = await readAsync(fd, buf, 0, buf.length, done);
      if (bytesRead === 0) break;
      done += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
    if (done < size) yield Buffer.alloc(size - done);
    yield tarPadding(size);
  } finally {
    closeSync(fd);
  }
}

/**
 * The merged view of `dirs` (top first) as a tar stream; `skip` names (relative paths) are
 * left out. `dirs` may be a function opening the view (a driver's reader of its own format).
 */
export async function* mergedArchive(dirs: string[] | (() => MergedView), signal?: AbortSignal, skip: ReadonlySet<string> = new Set()): AsyncGenerator<Buffer> {
  const stack = Array.isArray(dirs) ? MergedView.open(dirs) : dirs();
  try {
    const links = new Map<string, string>();
    for (const e of stack.walk()) {
      signal?.throwIfAborted();
      if (skip.has(e.path)) continue;
      let linkTo: string | undefined;
      if ((e.stat.mode & S_IFMT) === S_IFREG && e.stat.nlink > 1) {
        const key = `${e.layerIndex}:${e.stat.ino}`;
        linkTo = links.get(key);
        if (linkTo === undefined) links.set(key, e.path);
      }
      yield* entryBytes(e.layer, e.path, e.stat, linkTo);
    }
    yield tarTrailer();
  } finally {
    stack.close();
  }
}

/** An empty regular file entry (a whiteout `.wh.` marker). */
export function emptyFile(name: string, mtime: number): Buffer {
  return tarHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime });
}

/**
 * One upper dir as an OCI layer tar; `skip` names (relative paths) are left out. `upperDir`
 * may be a function opening it (a driver's reader of its own format).
 */
export async function* layerArchive(upperDir: string | (() => ConfinedDir), signal?: AbortSignal, skip: ReadonlySet<string> = new Set()): AsyncGenerator<Buffer> {
  const upper = typeof upperDir === 'string' ? ConfinedDir.open(upperDir) : upperDir();
  try {
    const links = new Map<number, string>();
    const stack: string[] = [''];
    while (stack.length > 0) {
      const rel = stack.pop()!;
      const sub: string[] = [];
      for (const name of upper.readdir(rel)) {
        signal?.throwIfAborted();
        const path = rel === '' ? name : `${rel}/${name}`;
        if (skip.has(path)) continue;
        const st = upper.lstat(path);
        if (st === null) continue;
        if (isWhiteout(st)) {
          yield emptyFile(rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`, st.mtime);
          continue;
        }
        let linkTo: string | undefined;
        if ((st.mode & S_IFMT) === S_IFREG && st.nlink > 1) {
          linkTo = links.get(st.ino);
          if (linkTo === undefined) links.set(st.ino, path);
        }
        yield* entryBytes(upper, path, st, linkTo);
        if ((st.mode & S_IFMT) === S_IFDIR) {
          if (upper.isOpaque(path)) yield emptyFile(`${path}/.wh..wh..opq`, st.mtime);
          sub.push(path);
        }
      }
      for (let i = sub.length - 1; i >= 0; i--) stack.push(sub[i]!);
    }
    yield tarTrailer();
  } finally {
    upper.close();
  }
}

/**
 * The merged view of a container's root (its layer over `lowerDirs`) as a tar stream, read the
 * way its storage driver lays the layer out.
 */
export function containerMergedArchive(driver: StorageDriver, layer: ContainerLayerPaths, lowerDirs: readonly string[], signal?: AbortSignal, skip?: ReadonlySet<string>): AsyncGenerator<Buffer> {
  const open = driver.openMergedView;
  return mergedArchive(open ? () => open(layer, lowerDirs) : driver.mergedDirs(layer, lowerDirs), signal, skip);
}
