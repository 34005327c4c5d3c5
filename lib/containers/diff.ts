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

/**
 * Mount points berth makes in every container's root when the image lacks them (its
 * `/proc`, `/sys` and `/dev` mounts). Docker makes them in an "init" layer below the
 * container's, so they are never part of its diff; berth makes them in the upper dir, so diff
 * and commit leave their empty stubs out.
 */
export const KERNEL_MOUNTPOINTS: readonly string[] = ['/dev', '/proc', '/sys'];

export interface Change {
  /** Absolute path inside the container. */
  path: string;
  kind: ChangeKind;
}

/**
 * The changes of `upperDir` over `lowerDirs` (top first), sorted by path.
 * @param mountpoints absolute paths berth mounts over in this container (see
 *   {@link KERNEL_MOUNTPOINTS}; its volumes, binds and tmpfs targets): where one was added as
 *   an empty stub (directory or file) only to be mounted over, it is not a change the
 *   container made, and neither are the directories made to hold it.
 */
export function diffLayers(upperDir: string, lowerDirs: string[], mountpoints: readonly string[] = []): Change[] {
  const points = new Set(mountpoints.map((p) => `/${p.split('/').filter(Boolean).join('/')}`));
  const stubs = new Set<string>();
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
        if (!below && points.has(`/${path}`) && isEmptyStub(upper, path, st)) stubs.add(`/${path}`);
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
  const ours = (path: string) => GENERATED_FILES.has(path.slice(1)) || stubs.has(path);
  // A directory reported only because berth's own files or stubs were made in it is no change
  // (added to hold a mount point, or changed by the entry added in it): deepest first, a
  // directory above berth's entries stays only if something the container did is below it.
  const berthDirs = new Set(changes.filter((c) => ours(c.path)).flatMap((c) => ancestorsOf(c.path)));
  const withKeptBelow = new Set<string>();
  const kept: Change[] = [];
  for (const c of [...changes].sort((a, b) => depth(b.path) - depth(a.path))) {
    if (ours(c.path) || (berthDirs.has(c.path) && !withKeptBelow.has(c.path))) continue;
    kept.push(c);
    for (const a of ancestorsOf(c.path)) withKeptBelow.add(a);
  }
  return kept.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function depth(path: string): number {
  return path.split('/').length;
}

/** `/a/b/c` → `/a`, `/a/b`. */
function ancestorsOf(path: string): string[] {
  const parts = path.split('/').slice(1, -1);
  return parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`);
}

/** An empty directory or an empty regular file: what berth makes to mount over. */
function isEmptyStub(upper: ConfinedDir, path: string, st: NonNullable<ReturnType<ConfinedDir['lstat']>>): boolean {
  if (isDir(st)) return upper.readdir(path).length === 0;
  return (st.mode & 0o170000) === 0o100000 && st.size === 0;
}
