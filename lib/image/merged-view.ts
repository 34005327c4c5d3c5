/**
 * The merged view of overlay layer directories (top first: a container's upper dir, then the
 * image's layers; a `{ rootfs }` directory is one layer), read without mounting anything, as the
 * kernel's overlay shows it: the topmost layer that has a name wins; a character device 0/0 is
 * a whiteout (hides the name below); a directory with `trusted.overlay.opaque=y`
 * (`user.overlay.opaque` in a user namespace) hides everything below it in lower layers; a
 * non-directory hides whatever lower layers have under its name. diff, export and commit of a
 * container, copy-up into a volume and reading an image's `/etc/passwd` all read through it.
 *
 * Layers are hostile: a container writes its upper dir while berth reads it (a directory swapped
 * for a symlink to `/etc` mid-walk must not make berth read the host's files), and an image's
 * `/etc` may be a symlink to `../../../../etc`. Every lookup goes through the native confined
 * operations (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`); a symlink met on the way
 * reads as "not there". Symlinks are followed only by {@link MergedView.resolve}, which does it
 * in TypeScript the way `RESOLVE_IN_ROOT` does (absolute targets and `..` stay inside).
 * @module
 */
import { closeSync, readlinkSync } from 'node:fs';
import { isSystemError } from '../errors.js';
import { fsOps, type FsOpsBinding, type FsStat } from './fs-ops.js';
import { S_IFLNK, S_IFMT, isDir, isOpaqueXattr, isWhiteout } from './overlay-format.js';

/** Linux's limit on symlinks followed in one path resolution (`MAXSYMLINKS`). */
const MAX_SYMLINKS = 40;

/** What a lookup meets when the path changed under it or runs through a symlink: "not there". */
function isGone(error: unknown): boolean {
  return isSystemError(error) && (error.code === 'ELOOP' || error.code === 'ENOTDIR' || error.code === 'ENOENT' || error.code === 'EXDEV');
}

/** `dir/name`, where `''` is the root. */
export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** One layer directory, opened once; every path relative to it. */
export class ConfinedDir {
  readonly dir: string;
  readonly fd: number;
  readonly #fs: FsOpsBinding;
  /** Opened in a resolution mode of its own (`fsOpenRootAt`, `fsMountOverlay`): closed with `fsCloseRoot`. */
  readonly #adopted: boolean;

  protected constructor(dir: string, fd: number, fs: FsOpsBinding, adopted = false) {
    this.dir = dir;
    this.fd = fd;
    this.#fs = fs;
    this.#adopted = adopted;
  }

  static open(dir: string, fs: FsOpsBinding = fsOps()): ConfinedDir {
    return new ConfinedDir(dir, fs.fsOpenRoot(dir), fs);
  }

  /**
   * Wraps a root fd opened elsewhere (a container's root, a directory in it); `close()` closes
   * it with `fsCloseRoot`. `dir` only names it in messages.
   */
  static adopt(dir: string, fd: number, fs: FsOpsBinding = fsOps()): ConfinedDir {
    return new ConfinedDir(dir, fd, fs, true);
  }

  /** lstat, or null when the path (or a directory on the way) is missing or a symlink. */
  lstat(rel: string): FsStat | null {
    try {
      return this.#fs.fsLstatAt(this.fd, rel);
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
  }

  /** Names in a directory, sorted; [] if it vanished or became something else. */
  readdir(rel: string): string[] {
    try {
      return this.#fs.fsReadDirAt(this.fd, rel).sort();
    } catch (error) {
      if (isGone(error)) return [];
      throw error;
    }
  }

  xattrs(rel: string): Array<[string, Buffer]> {
    try {
      return this.#fs.fsListXattrsAt(this.fd, rel);
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
    const pfd = this.#fs.fsOpenAt(this.fd, parentOf(rel));
    try {
      return readlinkSync(`/proc/self/fd/${pfd}/${rel.slice(rel.lastIndexOf('/') + 1)}`);
    } finally {
      closeSync(pfd);
    }
  }

  /** A read-only fd of a regular file or directory (the caller checks fstat: the path may have changed). */
  openFile(rel: string): number {
    return this.#fs.fsOpenAt(this.fd, rel);
  }

  close(): void {
    if (this.#adopted) this.#fs.fsCloseRoot(this.fd);
    else closeSync(this.fd);
  }
}

/** A name visible in the merged view, and the layer it is visible from. */
export interface MergedEntry {
  /** Root-relative path (`''` is the root). */
  path: string;
  /** The last component of `path`. */
  name: string;
  /** lstat in `layer`. */
  stat: FsStat;
  layer: ConfinedDir;
  /** `layer`'s position, 0 = top. */
  layerIndex: number;
}

/** Layers top first, opened once; {@link MergedView.close} when done. */
export class MergedView {
  readonly layers: ConfinedDir[];
  #dirCache = new Map<string, number[] | null>();

  constructor(layers: ConfinedDir[]) {
    this.layers = layers;
  }

  static open(dirs: readonly string[], fs: FsOpsBinding = fsOps()): MergedView {
    const opened: ConfinedDir[] = [];
    try {
      for (const d of dirs) opened.push(ConfinedDir.open(d, fs));
    } catch (error) {
      for (const o of opened) o.close();
      throw error;
    }
    return new MergedView(opened);
  }

  close(): void {
    for (const l of this.layers.splice(0)) l.close();
  }

  #entry(path: string, stat: FsStat, layerIndex: number): MergedEntry {
    return { path, name: path.slice(path.lastIndexOf('/') + 1), stat, layer: this.layers[layerIndex]!, layerIndex };
  }

  /** The layers (top first) whose entries show in directory `rel`; undefined if `rel` is not a visible directory. */
  resolveDir(rel: string): number[] | undefined {
    const cached = this.#dirCache.get(rel);
    if (cached !== undefined) return cached ?? undefined;
    let result: number[] | undefined;
    if (rel === '') {
      result = this.#visibleBelow('', 0, this.layers.map((_, i) => i));
    } else {
      const parentVisible = this.resolveDir(parentOf(rel));
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

  /** Where `rel` is visible, without following a final symlink; undefined when nothing shows there. */
  lookup(rel: string): MergedEntry | undefined {
    if (this.layers.length === 0) return undefined;
    const parentVisible = this.resolveDir(parentOf(rel));
    if (!parentVisible) return undefined;
    for (const i of parentVisible) {
      const st = this.layers[i]!.lstat(rel);
      if (st === null) continue;
      return isWhiteout(st) ? undefined : this.#entry(rel, st, i);
    }
    return undefined;
  }

  /** The merged listing of directory `rel`, sorted by name ([] when it is not a visible directory). */
  listDir(rel: string): MergedEntry[] {
    const visible = this.resolveDir(rel);
    return visible ? this.#list(rel, visible) : [];
  }

  /** The whole merged tree, depth first, each directory before its contents. */
  *walk(): Generator<MergedEntry> {
    const stack: Array<{ rel: string; visible: number[] }> = [{ rel: '', visible: this.resolveDir('') ?? [] }];
    while (stack.length > 0) {
      const { rel, visible } = stack.pop()!;
      const dirs: Array<{ rel: string; visible: number[] }> = [];
      for (const e of this.#list(rel, visible)) {
        yield e;
        if (isDir(e.stat)) dirs.push({ rel: e.path, visible: this.#visibleBelow(e.path, e.layerIndex, visible) });
      }
      // Reverse so the first directory is walked first (stack order).
      for (let i = dirs.length - 1; i >= 0; i--) stack.push(dirs[i]!);
    }
  }

  /**
   * Resolves an absolute container path, following symlinks as the kernel does with
   * `RESOLVE_IN_ROOT`: an absolute target restarts at the root, `..` never climbs above it.
   * Returns the root-relative path of what it names, or null when a component is missing or
   * there are too many links.
   */
  resolve(path: string): string | null {
    const todo = path.split('/');
    const done: string[] = [];
    let links = 0;
    while (todo.length > 0) {
      const c = todo.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        done.pop();
        continue;
      }
      const rel = [...done, c].join('/');
      const e = this.lookup(rel);
      if (!e) return null;
      if ((e.stat.mode & S_IFMT) === S_IFLNK) {
        if (++links > MAX_SYMLINKS) return null;
        const target = e.layer.readlink(rel);
        if (target.startsWith('/')) done.length = 0;
        todo.unshift(...target.split('/'));
        continue;
      }
      if (todo.some((t) => t !== '' && t !== '.') && !isDir(e.stat)) return null;
      done.push(c);
    }
    return done.join('/');
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

  /** The names visible in directory `rel` from the layers `visible`, sorted. */
  #list(rel: string, visible: number[]): MergedEntry[] {
    const found = new Map<string, MergedEntry>();
    const hidden = new Set<string>();
    for (const i of visible) {
      const layer = this.layers[i]!;
      for (const name of layer.readdir(rel)) {
        if (found.has(name) || hidden.has(name)) continue;
        const path = joinRel(rel, name);
        const st = layer.lstat(path);
        if (st === null) continue;
        if (isWhiteout(st)) {
          hidden.add(name);
          continue;
        }
        found.set(name, this.#entry(path, st, i));
      }
    }
    return [...found.keys()].sort().map((n) => found.get(n)!);
  }
}
