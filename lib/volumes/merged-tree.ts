/**
 * A read-only view of overlay layer directories (top first) as the merged mount would show
 * them, read without mounting anything: the topmost layer that has a name wins; a whiteout (a
 * 0/0 character device) hides it; a non-directory or an opaque directory
 * (`trusted.overlay.opaque=y`, or `user.overlay.opaque` from a user namespace) ends the merge below it. A `{ rootfs }` directory is one layer.
 *
 * Every access goes through the native confined operations (`fs-ops.ts`): paths are resolved by
 * the kernel beneath each layer's root with no symlink followed, so a layer cannot point a
 * reader outside itself. Symlinks are followed only by {@link MergedTree.resolve}, which does
 * it in TypeScript the way `RESOLVE_IN_ROOT` does (absolute targets and `..` stay inside).
 * @module
 */
import { closeSync, readlinkSync } from 'node:fs';
import { fsOps, type FsOpsBinding, type FsStat } from '../image/fs-ops.js';
import { S_IFLNK, S_IFMT, isDir, isOpaqueXattr, isWhiteout } from '../image/overlay-format.js';

export { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, isDir } from '../image/overlay-format.js';

const MAX_SYMLINKS = 40;

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? '' : path.slice(0, i);
}

export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** One visible entry: which layer it comes from and its lstat there. */
export interface MergedEntry {
  layer: number;
  st: FsStat;
}

export class MergedTree {
  readonly #fs: FsOpsBinding;
  readonly #fds: number[] = [];

  /** Opens every layer directory (top first). Call {@link close} when done. */
  constructor(layerDirs: readonly string[], fs: FsOpsBinding = fsOps()) {
    this.#fs = fs;
    try {
      for (const dir of layerDirs) this.#fds.push(fs.fsOpenRoot(dir));
    } catch (error) {
      this.close();
      throw error;
    }
  }

  close(): void {
    for (const fd of this.#fds.splice(0)) closeSync(fd);
  }

  /** The root fd of layer `i` (for the native calls of a reader). */
  layerFd(i: number): number {
    return this.#fds[i]!;
  }

  private opaque(layer: number, rel: string): boolean {
    return this.#fs.fsListXattrsAt(this.#fds[layer]!, rel).some(([n, v]) => isOpaqueXattr(n, v));
  }

  /**
   * Walks `rel`'s ancestors in one layer: `hidden` when one of them is not a directory (that
   * ends the merge for everything below), `missing` when one is absent, and whether one is opaque.
   */
  private ancestors(layer: number, rel: string): { state: 'ok' | 'missing' | 'hidden'; opaque: boolean } {
    const chain: string[] = [];
    for (let p = parentOf(rel); p !== ''; p = parentOf(p)) chain.unshift(p);
    let opaque = false;
    for (const a of chain) {
      const st = this.#fs.fsLstatAt(this.#fds[layer]!, a);
      if (st === null) return { state: 'missing', opaque };
      if (!isDir(st)) return { state: 'hidden', opaque };
      if (this.opaque(layer, a)) opaque = true;
    }
    return { state: 'ok', opaque };
  }

  /** The entry at `rel` ("" is the root) without following symlinks; null when not visible. */
  lookup(rel: string): MergedEntry | null {
    if (rel === '') {
      const st = this.#fds.length > 0 ? this.#fs.fsLstatAt(this.#fds[0]!, '') : null;
      return st ? { layer: 0, st } : null;
    }
    for (let i = 0; i < this.#fds.length; i++) {
      const a = this.ancestors(i, rel);
      if (a.state === 'hidden') return null;
      if (a.state === 'ok') {
        const st = this.#fs.fsLstatAt(this.#fds[i]!, rel);
        if (st !== null) return isWhiteout(st) ? null : { layer: i, st };
      }
      if (a.opaque) return null;
    }
    return null;
  }

  /** The layers whose copy of directory `rel` make up the merged directory, top first. */
  private dirLayers(rel: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#fds.length; i++) {
      let opaque = false;
      if (rel !== '') {
        const a = this.ancestors(i, rel);
        if (a.state === 'hidden') break;
        opaque = a.opaque;
        if (a.state === 'missing') {
          if (opaque) break;
          continue;
        }
        const st = this.#fs.fsLstatAt(this.#fds[i]!, rel);
        if (st === null) {
          if (opaque) break;
          continue;
        }
        if (!isDir(st)) break;
      }
      out.push(i);
      if (opaque || this.opaque(i, rel)) break;
    }
    return out;
  }

  /** The visible entries of directory `rel`, by name (sorted). */
  list(rel: string): Array<{ name: string } & MergedEntry> {
    const seen = new Set<string>();
    const out: Array<{ name: string } & MergedEntry> = [];
    for (const i of this.dirLayers(rel)) {
      for (const name of this.#fs.fsReadDirAt(this.#fds[i]!, rel)) {
        if (seen.has(name)) continue;
        seen.add(name);
        const st = this.#fs.fsLstatAt(this.#fds[i]!, joinRel(rel, name));
        if (st === null || isWhiteout(st)) continue;
        out.push({ name, layer: i, st });
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A symlink's target, read through its parent's fd (the parent was resolved confined). */
  readlink(layer: number, rel: string): string {
    const parent = parentOf(rel);
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    const fd = parent === '' ? -1 : this.#fs.fsOpenAt(this.#fds[layer]!, parent);
    try {
      return readlinkSync(`/proc/self/fd/${parent === '' ? this.#fds[layer]! : fd}/${base}`);
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  /**
   * Resolves an absolute container path in the merged view, following symlinks as the kernel
   * does with `RESOLVE_IN_ROOT`: an absolute target restarts at the root, `..` never climbs
   * above it. Returns the root-relative path of what it names, or null when a component is
   * missing or there are too many links.
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
      if ((e.st.mode & S_IFMT) === S_IFLNK) {
        if (++links > MAX_SYMLINKS) return null;
        const target = this.readlink(e.layer, rel);
        if (target.startsWith('/')) done.length = 0;
        todo.unshift(...target.split('/'));
        continue;
      }
      if (todo.some((t) => t !== '' && t !== '.') && !isDir(e.st)) return null;
      done.push(c);
    }
    return done.join('/');
  }
}
