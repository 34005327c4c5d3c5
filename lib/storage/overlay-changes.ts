/**
 * A container's changes read from an overlay upper dir over its lower layers, without
 * mounting anything: `A` added, `C` changed (a file rewritten, or a directory something below
 * changed in), `D` deleted.
 *
 * A whiteout (char device 0/0) in the upper dir is a deletion of what the image had there. An
 * opaque directory (the container removed a directory and made a new one with the same name)
 * deletes everything the image had inside it: each such entry is reported `D`, the new content
 * `A`. Redirect and metacopy directories are not used by berth's overlay mounts.
 * @module
 */
import { ConfinedDir, MergedView } from '../image/merged-view.js';
import { isDir, isWhiteout } from '../image/overlay-format.js';
import type { LayerChange } from './driver.js';

/**
 * The changes of `upperDir` over `lowerDirs` (top first), in walk order. An upper dir already
 * opened (a driver's own reader of its format) is closed here.
 */
export function overlayChanges(upperDir: string | ConfinedDir, lowerDirs: readonly string[]): LayerChange[] {
  const upper = typeof upperDir === 'string' ? ConfinedDir.open(upperDir) : upperDir;
  let lowers: MergedView;
  try {
    lowers = MergedView.open(lowerDirs);
  } catch (error) {
    upper.close();
    throw error;
  }
  const changes: LayerChange[] = [];
  try {
    // shadowed: nothing of the image shows inside `rel` (it is new, replaced a file, or sits
    // below an opaque directory). deletes: `rel` is opaque over an image directory.
    const rootOpaque = upper.isOpaque('');
    const stack: Array<{ rel: string; shadowed: boolean; deletes: boolean }> = [{ rel: '', shadowed: rootOpaque, deletes: rootOpaque }];
    while (stack.length > 0) {
      const { rel, shadowed, deletes } = stack.pop()!;
      const names = upper.readdir(rel);
      if (deletes) {
        const present = new Set(names);
        for (const e of lowers.listDir(rel)) {
          const name = rel === '' ? e.path : e.path.slice(rel.length + 1);
          if (!present.has(name)) changes.push({ path: `/${e.path}`, kind: 'D', emptyStub: false });
        }
      }
      for (const name of names) {
        const path = rel === '' ? name : `${rel}/${name}`;
        const st = upper.lstat(path);
        if (st === null) continue;
        const below = shadowed ? undefined : lowers.lookup(path);
        if (isWhiteout(st)) {
          if (below) changes.push({ path: `/${path}`, kind: 'D', emptyStub: false });
          continue;
        }
        changes.push({ path: `/${path}`, kind: below ? 'C' : 'A', emptyStub: !below && isEmptyStub(upper, path, st) });
        if (isDir(st)) {
          const belowIsDir = below !== undefined && isDir(below.stat);
          const opaque = belowIsDir && upper.isOpaque(path);
          stack.push({ rel: path, shadowed: !belowIsDir || opaque, deletes: opaque });
        }
      }
    }
  } finally {
    upper.close();
    lowers.close();
  }
  return changes;
}

/** An empty directory or an empty regular file: what berth makes to mount over. */
function isEmptyStub(upper: ConfinedDir, path: string, st: NonNullable<ReturnType<ConfinedDir['lstat']>>): boolean {
  if (isDir(st)) return upper.readdir(path).length === 0;
  return (st.mode & 0o170000) === 0o100000 && st.size === 0;
}
