/**
 * A container's changes when its layer is a whole tree (the copying drivers): the tree is
 * compared with the merged view of the image's layers, entry by entry, as Docker's naive diff
 * does. An entry only in the tree is added (`A`), only in the image deleted (`D`); present in
 * both, it is changed (`C`) when its type, mode, owner, size, mtime (whole seconds: the copy
 * keeps what a tar keeps), device numbers or symlink target differ. A directory holding a
 * change is changed too, as overlay reports the directories it copied up to hold one; a
 * directory that replaced a non-directory shows everything in it as added.
 *
 * Both sides are read through confined fds: the tree is written by the container.
 * @module
 */
import type { FsStat } from '../image/fs-ops.js';
import { ConfinedDir, MergedView } from '../image/merged-view.js';
import { S_IFLNK, S_IFMT, S_IFREG, isDir } from '../image/overlay-format.js';
import type { LayerChange } from './driver.js';

function differs(tree: ConfinedDir, rel: string, a: FsStat, below: { stat: FsStat; layer: ConfinedDir }): boolean {
  const b = below.stat;
  if ((a.mode & S_IFMT) !== (b.mode & S_IFMT)) return true;
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return true;
  if (Math.trunc(a.mtime) !== Math.trunc(b.mtime)) return true;
  if (isDir(a)) return false;
  if (a.size !== b.size || a.rdevMajor !== b.rdevMajor || a.rdevMinor !== b.rdevMinor) return true;
  if ((a.mode & S_IFMT) === S_IFLNK) {
    try {
      return tree.readlink(rel) !== below.layer.readlink(rel);
    } catch {
      return true; // replaced meanwhile
    }
  }
  return false;
}

function isEmptyStub(tree: ConfinedDir, rel: string, st: FsStat): boolean {
  if (isDir(st)) return tree.readdir(rel).length === 0;
  return (st.mode & S_IFMT) === S_IFREG && st.size === 0;
}

/** The changes of the whole tree `treeDir` over the merged view of `lowerDirs` (top first). */
export function treeChanges(treeDir: string, lowerDirs: readonly string[]): LayerChange[] {
  const tree = ConfinedDir.open(treeDir);
  const lowers = MergedView.open(lowerDirs);
  const changes: LayerChange[] = [];
  const changedDirs = new Set<string>();
  const added = new Set<string>();
  const holds = (rel: string) => {
    // Every directory above a change, in the image too, holds it.
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) changedDirs.add(rel.slice(0, i));
  };
  try {
    // isNew: nothing of the image shows below `rel` (it is new, or replaced a non-directory).
    const stack: Array<{ rel: string; isNew: boolean }> = [{ rel: '', isNew: false }];
    while (stack.length > 0) {
      const { rel, isNew } = stack.pop()!;
      const names = tree.readdir(rel);
      if (!isNew) {
        const present = new Set(names);
        for (const e of lowers.listDir(rel)) {
          if (present.has(e.name)) continue;
          changes.push({ path: `/${e.path}`, kind: 'D', emptyStub: false });
          holds(e.path);
        }
      }
      for (const name of names) {
        const path = rel === '' ? name : `${rel}/${name}`;
        const st = tree.lstat(path);
        if (st === null) continue;
        const below = isNew ? undefined : lowers.lookup(path);
        if (below === undefined) {
          changes.push({ path: `/${path}`, kind: 'A', emptyStub: isEmptyStub(tree, path, st) });
          added.add(path);
          holds(path);
          if (isDir(st)) stack.push({ rel: path, isNew: true });
          continue;
        }
        if (differs(tree, path, st, below)) {
          if (isDir(st)) changedDirs.add(path);
          else {
            changes.push({ path: `/${path}`, kind: 'C', emptyStub: false });
            holds(path);
          }
        }
        if (isDir(st)) stack.push({ rel: path, isNew: !isDir(below.stat) });
      }
    }
  } finally {
    tree.close();
    lowers.close();
  }
  for (const dir of changedDirs) if (!added.has(dir)) changes.push({ path: `/${dir}`, kind: 'C', emptyStub: false });
  return changes;
}
