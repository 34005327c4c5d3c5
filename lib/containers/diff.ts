/**
 * `diff()`: what a container changed relative to its image, read from its overlay upper dir
 * (Docker's `docker diff`): `A` added, `C` changed (a file rewritten, or a directory something
 * below changed in), `D` deleted.
 *
 * A whiteout (char device 0/0) in the upper dir is a deletion of what the image had there. An
 * opaque directory (the container removed a directory and made a new one with the same name)
 * deletes everything the image had inside it: each such entry is reported `D`, the new content
 * `A`. Redirect and metacopy directories are not used by berth's overlay mounts.
 * @module
 */
import { ConfinedDir, MergedView } from '../image/merged-view.js';
import { isDir, isWhiteout } from '../image/overlay-format.js';

export type ChangeKind = 'A' | 'C' | 'D';

/**
 * Files berth writes into every container's root at each start (launch-plan.ts). Docker keeps
 * them out of the root filesystem (bind mounts), so they are never part of a diff or a commit;
 * berth writes them into the upper dir, so diff and commit leave them out by name.
 */
export const GENERATED_FILES: ReadonlySet<string> = new Set(['etc/hostname', 'etc/hosts', 'etc/resolv.conf']);

export interface Change {
  /** Absolute path inside the container. */
  path: string;
  kind: ChangeKind;
}

/** The changes of `upperDir` over `lowerDirs` (top first), sorted by path. */
export function diffLayers(upperDir: string, lowerDirs: string[]): Change[] {
  const upper = ConfinedDir.open(upperDir);
  const lowers = MergedView.open(lowerDirs);
  const changes: Change[] = [];
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
          if (!present.has(name)) changes.push({ path: `/${e.path}`, kind: 'D' });
        }
      }
      for (const name of names) {
        const path = rel === '' ? name : `${rel}/${name}`;
        const st = upper.lstat(path);
        if (st === null) continue;
        const below = shadowed ? undefined : lowers.lookup(path);
        if (isWhiteout(st)) {
          if (below) changes.push({ path: `/${path}`, kind: 'D' });
          continue;
        }
        changes.push({ path: `/${path}`, kind: below ? 'C' : 'A' });
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
  const kept = changes.filter((c) => !GENERATED_FILES.has(c.path.slice(1)));
  // A directory reported only because berth's own files were written in it is no change.
  const dirsWithChanges = new Set(kept.flatMap((c) => c.path.split('/').slice(1, -1).map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}`)));
  const generatedDirs = new Set([...GENERATED_FILES].map((f) => `/${f.slice(0, f.lastIndexOf('/'))}`));
  return kept
    .filter((c) => !(c.kind === 'C' && generatedDirs.has(c.path) && !dirsWithChanges.has(c.path)))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
