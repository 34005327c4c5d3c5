/**
 * Reading overlay layer directories the way the kernel's merged view shows them, without
 * ever following a symlink: the upper dir is written by the container, so a path in it is
 * hostile (a directory swapped for a symlink to `/etc` mid-walk must not make berth read the
 * host's files). Every lookup goes through the native confined operations (`openat2` with
 * `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`); a symlink met on the way reads as "not there".
 *
 * Overlay's rules: a character device 0/0 is a whiteout (hides the name below); a directory
 * with `trusted.overlay.opaque=y` (`user.overlay.opaque` in a user namespace) hides everything
 * below it in lower layers; a non-directory hides whatever lower layers have under its name.
 * @module
 */
import { closeSync, readlinkSync } from 'node:fs';
import { isSystemError } from '../errors.js';
import { fsOps, type FsStat } from '../image/fs-ops.js';
import { isDir, isOpaqueXattr, isWhiteout } from '../image/overlay-format.js';

export {
  OPAQUE_XATTRS,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  isDir,
  isOverlayXattr,
  isWhiteout,
} from '../image/overlay-format.js';

function join(a: string, b: string): string {
  return a === '' ? b : `${a}/${b}`;
}

/** One layer directory, opened once; every path relative to it. */
export class ConfinedDir {
  readonly dir: string;
  readonly fd: number;

  private constructor(dir: string, fd: number) {
    this.dir = dir;
    this.fd = fd;
  }

  static open(dir: string): ConfinedDir {
    return new ConfinedDir(dir, fsOps().fsOpenRoot(dir));
  }

  /** lstat, or null when the path (or a directory on the way) is missing or a symlink. */
  lstat(rel: string): FsStat | null {
    try {
      return fsOps().fsLstatAt(this.fd, rel);
    } catch (error) {
      if (isSystemError(error) && (error.code === 'ELOOP' || error.code === 'ENOTDIR' || error.code === 'ENOENT' || error.code === 'EXDEV')) return null;
      throw error;
    }
  }

  /** Names in a directory; [] if it vanished or became something else. */
  readdir(rel: string): string[] {
    try {
      return fsOps().fsReadDirAt(this.fd, rel).sort();
    } catch (error) {
      if (isSystemError(error) && (error.code === 'ELOOP' || error.code === 'ENOTDIR' || error.code === 'ENOENT' || error.code === 'EXDEV')) return [];
      throw error;
    }
  }

  xattrs(rel: string): Array<[string, Buffer]> {
    try {
      return fsOps().fsListXattrsAt(this.fd, rel);
    } catch (error) {
      if (isSystemError(error)) return [];
      throw error;
    }
  }

  isOpaque(rel: string): boolean {
    return this.xattrs(rel).some(([n, v]) => isOpaqueXattr(n, v));
  }

  /** A symlink's target, read through the pinned parent directory (never re-resolved by path). */
  readlink(rel: string): string {
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    const base = slash < 0 ? rel : rel.slice(slash + 1);
    const pfd = fsOps().fsOpenAt(this.fd, parent);
    try {
      return readlinkSync(`/proc/self/fd/${pfd}/${base}`);
    } finally {
      closeSync(pfd);
    }
  }

  /** A read-only fd of a regular file (the caller checks fstat: the path may have changed). */
  openFile(rel: string): number {
    return fsOps().fsOpenAt(this.fd, rel);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** A merged-view entry: where it is visible from. */
export interface MergedEntry {
  path: string;
  stat: FsStat;
  layer: ConfinedDir;
  layerIndex: number;
}

/** Layers top first (a container's upper dir, then the image's layers). */
export class LayerStack {
  readonly layers: ConfinedDir[];

  constructor(layers: ConfinedDir[]) {
    this.layers = layers;
  }

  static open(dirs: string[]): LayerStack {
    const opened: ConfinedDir[] = [];
    try {
      for (const d of dirs) opened.push(ConfinedDir.open(d));
    } catch (error) {
      for (const o of opened) o.close();
      throw error;
    }
    return new LayerStack(opened);
  }

  close(): void {
    for (const l of this.layers) l.close();
  }

  #dirCache = new Map<string, number[] | null>();

  /** The layers (top first) whose entries show in directory `rel`; undefined if `rel` is not a visible directory. */
  resolveDir(rel: string): number[] | undefined {
    const cached = this.#dirCache.get(rel);
    if (cached !== undefined) return cached ?? undefined;
    let result: number[] | undefined;
    if (rel === '') {
      result = this.#visibleBelow('', 0, this.layers.map((_, i) => i));
    } else {
      const slash = rel.lastIndexOf('/');
      const parentVisible = this.resolveDir(slash < 0 ? '' : rel.slice(0, slash));
      if (parentVisible) {
        for (const i of parentVisible) {
          const st = this.layers[i]!.lstat(rel);
          if (st === null) continue;
          if (isDir(st)) result = this.#visibleBelow(rel, i, parentVisible);
          break; // a whiteout or a non-directory hides the layers below
        }
      }
    }
    this.#dirCache.set(rel, result ?? null);
    return result;
  }

  /** Where `rel` is visible in the merged view, or undefined when nothing shows there. */
  lookup(rel: string): MergedEntry | undefined {
    const slash = rel.lastIndexOf('/');
    const parentVisible = this.resolveDir(slash < 0 ? '' : rel.slice(0, slash));
    if (!parentVisible) return undefined;
    for (const i of parentVisible) {
      const st = this.layers[i]!.lstat(rel);
      if (st === null) continue;
      return isWhiteout(st) ? undefined : { path: rel, stat: st, layer: this.layers[i]!, layerIndex: i };
    }
    return undefined;
  }

  /** The merged listing of directory `rel` ([] when it is not a visible directory). */
  listDir(rel: string): MergedEntry[] {
    const visible = this.resolveDir(rel);
    return visible ? this.list(rel, visible) : [];
  }

  /** Layers in which directory `rel`, found first in layer `top`, shows its entries. */
  #visibleBelow(rel: string, top: number, candidates: number[]): number[] {
    const out = [top];
    if (this.layers[top]!.isOpaque(rel)) return out;
    for (const i of candidates) {
      if (i <= top) continue;
      const st = this.layers[i]!.lstat(rel);
      if (st === null) continue;
      if (!isDir(st)) break;
      out.push(i);
      if (this.layers[i]!.isOpaque(rel)) break;
    }
    return out;
  }

  /** The names visible in directory `rel` and where each comes from, sorted. */
  list(rel: string, visible: number[]): MergedEntry[] {
    const found = new Map<string, MergedEntry>();
    const hidden = new Set<string>();
    for (const i of visible) {
      const layer = this.layers[i]!;
      for (const name of layer.readdir(rel)) {
        if (found.has(name) || hidden.has(name)) continue;
        const path = join(rel, name);
        const st = layer.lstat(path);
        if (st === null) continue;
        if (isWhiteout(st)) {
          hidden.add(name);
          continue;
        }
        found.set(name, { path, stat: st, layer, layerIndex: i });
      }
    }
    return [...found.keys()].sort().map((n) => found.get(n)!);
  }

  /** The whole merged tree, depth first, each directory before its contents. */
  *walk(): Generator<MergedEntry> {
    const rootVisible = this.resolveDir('') ?? [];
    const stack: Array<{ rel: string; visible: number[] }> = [{ rel: '', visible: rootVisible }];
    while (stack.length > 0) {
      const { rel, visible } = stack.pop()!;
      const entries = this.list(rel, visible);
      const dirs: Array<{ rel: string; visible: number[] }> = [];
      for (const e of entries) {
        yield e;
        if (isDir(e.stat)) dirs.push({ rel: e.path, visible: this.#visibleBelow(e.path, e.layerIndex, visible) });
      }
      // Reverse so the first directory is walked first (stack order).
      for (let i = dirs.length - 1; i >= 0; i--) stack.push(dirs[i]!);
    }
  }
}
