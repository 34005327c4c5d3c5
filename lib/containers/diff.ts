/**
 * `diff()`: what a container changed relative to its image (Docker's `docker diff`): `A`
 * added, `C` changed (a file rewritten, or a directory something below changed in), `D`
 * deleted. The storage driver reads its layer (`StorageDriver.changes`); this module leaves
 * out what berth itself made in it.
 * @module
 */
import type { LayerChange } from '../storage/driver.js';
import { overlayChanges } from '../storage/overlay-changes.js';

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
 * The changes of the overlay upper dir `upperDir` over `lowerDirs` (top first), sorted by path.
 * @param mountpoints absolute paths berth mounts over in this container (see
 *   {@link KERNEL_MOUNTPOINTS}; its volumes, binds and tmpfs targets): where one was added as
 *   an empty stub (directory or file) only to be mounted over, it is not a change the
 *   container made, and neither are the directories made to hold it.
 */
export function diffLayers(upperDir: string, lowerDirs: readonly string[], mountpoints: readonly string[] = []): Change[] {
  return keepContainerChanges(overlayChanges(upperDir, lowerDirs), mountpoints);
}

/**
 * The changes a container made, out of all its layer's changes (`StorageDriver.changes`):
 * berth's generated files, the empty stubs made to mount over, and the directories changed
 * only to hold those are left out. Sorted by path.
 */
export function keepContainerChanges(changes: readonly LayerChange[], mountpoints: readonly string[] = []): Change[] {
  const points = new Set(mountpoints.map((p) => `/${p.split('/').filter(Boolean).join('/')}`));
  const stubs = new Set(changes.filter((c) => c.kind === 'A' && c.emptyStub && points.has(c.path)).map((c) => c.path));
  const ours = (path: string) => GENERATED_FILES.has(path.slice(1)) || stubs.has(path);
  // A directory reported only because berth's own files or stubs were made in it is no change
  // (added to hold a mount point, or changed by the entry added in it): deepest first, a
  // directory above berth's entries stays only if something the container did is below it.
  const berthDirs = new Set(changes.filter((c) => ours(c.path)).flatMap((c) => ancestorsOf(c.path)));
  const withKeptBelow = new Set<string>();
  const kept: Change[] = [];
  for (const c of [...changes].sort((a, b) => depth(b.path) - depth(a.path))) {
    if (ours(c.path) || (berthDirs.has(c.path) && !withKeptBelow.has(c.path))) continue;
    kept.push({ path: c.path, kind: c.kind });
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
