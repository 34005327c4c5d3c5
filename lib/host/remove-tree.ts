/**
 * Removing a directory tree of the state directory that may hold btrfs subvolumes: the btrfs
 * driver's container layers and snapshots, or subvolumes a container made inside its own root
 * (btrfs-subvolumes.ts says why `rm -r` alone can fail on those, and leak them).
 * @module
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { native, type NativeBinding } from '../native.js';
import { destroySubvolume, isSubvolumeRoot, subvolumesBelow } from './btrfs-subvolumes.js';
import { filesystemTypeOf } from './filesystem.js';

/**
 * `rm -rf path`, also when the tree holds btrfs subvolumes: `path` itself or its direct
 * children that are subvolumes (where berth puts them: a container's `upper/`, a run's `root/`)
 * are destroyed whole with one ioctl each, the rest removed as files; when that fails on a
 * subvolume deeper down (read-only, or holding others), every subvolume below is destroyed and
 * the removal tried once more. Not on btrfs: plain `rm -rf`.
 */
export async function removeTree(path: string, core?: NativeBinding): Promise<void> {
  if (!existsSync(path)) return;
  if (filesystemTypeOf(path) !== 'btrfs') {
    await rm(path, { recursive: true, force: true });
    return;
  }
  const binding = core ?? native();
  if (isSubvolumeRoot(path)) {
    await destroySubvolume(path, binding);
    return;
  }
  for (const name of await readdir(path).catch(() => [] as string[])) {
    const child = join(path, name);
    if (isSubvolumeRoot(child)) await destroySubvolume(child, binding);
  }
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    for (const nested of await subvolumesBelow(path)) await destroySubvolume(nested, binding);
    await rm(path, { recursive: true, force: true });
  }
}
