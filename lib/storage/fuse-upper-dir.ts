/**
 * A fuse-overlayfs upper dir read as kernel overlay's format, so that diff, commit, export and
 * the merged view read it with the overlay driver's code.
 *
 * fuse-overlayfs writes kernel overlay's markers where the backing filesystem lets it (a
 * whiteout as a character device 0/0, `trusted.overlay.opaque`), and OCI-style files where it
 * does not: on an overlay-backed state directory (berth inside a container, the case this
 * driver is for) mknod(2) of a whiteout is refused and a deletion is an empty `.wh.<name>`
 * file. It also marks every directory it makes opaque with a `.wh..wh..opq` file (and, beside
 * it, a `.wh..opq` device), and keeps its own `user.fuseoverlayfs.*` xattrs. A container
 * cannot make a name starting with `.wh.` through fuse-overlayfs (EINVAL), so every such name
 * in the upper dir is fuse-overlayfs's own bookkeeping and never a file of the container.
 * @module
 */
import { fsOps, type FsOpsBinding, type FsStat } from '../image/fs-ops.js';
import { ConfinedDir, joinRel } from '../image/merged-view.js';
import { S_IFCHR, S_IFMT, S_IFREG } from '../image/overlay-format.js';

const WH = '.wh.';
const OPAQUE_FILE = '.wh..wh..opq';
const OWN_XATTRS = 'user.fuseoverlayfs.';

function split(rel: string): { parent: string; name: string } {
  const i = rel.lastIndexOf('/');
  return i < 0 ? { parent: '', name: rel } : { parent: rel.slice(0, i), name: rel.slice(i + 1) };
}

function isRegular(st: FsStat | null): st is FsStat {
  return st !== null && (st.mode & S_IFMT) === S_IFREG;
}

/** A fuse-overlayfs upper dir, shown in kernel overlay's format (see the module comment). */
export class FuseUpperDir extends ConfinedDir {
  static openUpper(dir: string, fs: FsOpsBinding = fsOps()): FuseUpperDir {
    return new FuseUpperDir(dir, fs.fsOpenRoot(dir), fs);
  }

  override readdir(rel: string): string[] {
    const names = new Set<string>();
    for (const name of super.readdir(rel)) {
      if (!name.startsWith(WH)) {
        names.add(name);
        continue;
      }
      const target = name.slice(WH.length);
      // `.wh.<name>` (a regular file) is the whiteout of <name>; the opaque markers are not names.
      if (target !== '' && !target.startsWith(WH) && isRegular(super.lstat(joinRel(rel, name)))) names.add(target);
    }
    return [...names].sort();
  }

  override lstat(rel: string): FsStat | null {
    const { parent, name } = split(rel);
    if (name.startsWith(WH)) return null;
    const st = super.lstat(rel);
    if (st !== null) return st;
    const marker = super.lstat(joinRel(parent, `${WH}${name}`));
    // As kernel overlay writes it: a character device 0/0.
    return isRegular(marker) ? { ...marker, mode: S_IFCHR, rdevMajor: 0, rdevMinor: 0, size: 0, nlink: 1 } : null;
  }

  override xattrs(rel: string): Array<[string, Buffer]> {
    return super.xattrs(rel).filter(([n]) => !n.startsWith(OWN_XATTRS));
  }

  override isOpaque(rel: string): boolean {
    if (super.isOpaque(rel)) return true;
    if (super.xattrs(rel).some(([n, v]) => n === `${OWN_XATTRS}opaque` && v.toString() === 'y')) return true;
    return isRegular(super.lstat(joinRel(rel, OPAQUE_FILE)));
  }
}
