/**
 * btrfs subvolumes of berth's state directory: made, snapshotted and destroyed with the native
 * core's ioctls (`btrfsSubvolume`, src-native/btrfs-subvolume.cc), never with btrfs-progs, which
 * berth does not need at run time.
 *
 * A subvolume is a directory to every other reader, but not to removal: a read-only one
 * refuses `unlink` (EROFS), and one holding another refuses `BTRFS_IOC_SNAP_DESTROY`
 * (ENOTEMPTY). A container whose root is on btrfs (the btrfs driver's snapshot, or vfs's copy on
 * a btrfs state directory) can make both without any capability (`BTRFS_IOC_SUBVOL_CREATE`,
 * `BTRFS_IOC_SUBVOL_SETFLAGS` need only write access and ownership), so every removal below the
 * state directory goes through {@link destroySubvolume} / `removeTree` (remove-tree.ts), which
 * destroy nested subvolumes first.
 * @module
 */
import { lstatSync, type Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isSystemError } from '../errors.js';
import { fromNativeError, native, type NativeBinding } from '../native.js';
import { filesystemTypeOf } from './filesystem.js';

/** The inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INO = 256;

/** Whether `path` is the root directory of a btrfs subvolume (not following a final symlink). */
export function isSubvolumeRoot(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && st.ino === SUBVOLUME_ROOT_INO && filesystemTypeOf(path) === 'btrfs';
  } catch {
    return false;
  }
}

async function isSubvolumeRootAsync(path: string): Promise<boolean> {
  try {
    const st = await lstat(path);
    return st.isDirectory() && st.ino === SUBVOLUME_ROOT_INO;
  } catch {
    return false;
  }
}

/** Makes an empty subvolume at `path` (its parent exists, `path` does not). */
export async function createSubvolume(path: string, core: NativeBinding = native()): Promise<void> {
  await core.btrfsSubvolume({ op: 'create', path }).catch((error: unknown) => {
    throw fromNativeError(error, { context: 'btrfs: creating a subvolume', path });
  });
}

/** Snapshots the subvolume `source` at `path` (read-only with `readonly`). */
export async function snapshotSubvolume(source: string, path: string, options: { readonly?: boolean } = {}, core: NativeBinding = native()): Promise<void> {
  await core.btrfsSubvolume({ op: 'snapshot', source, path, readonly: options.readonly === true }).catch((error: unknown) => {
    throw fromNativeError(error, { context: `btrfs: snapshotting ${source}`, path });
  });
}

/**
 * The roots of the subvolumes below `dir` (not `dir` itself), outermost first; a subvolume's
 * own nested ones are not listed (its destruction finds them). Walked with lstat only: the
 * tree may be a container's, whose symlinks must never lead the walk out.
 */
export async function subvolumesBelow(dir: string): Promise<string[]> {
  const found: string[] = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(d, e.name);
      if (await isSubvolumeRootAsync(p)) found.push(p);
      else stack.push(p);
    }
  }
  return found;
}

/**
 * Destroys the subvolume at `path` with everything in it, read-only or not, nested subvolumes
 * first (the kernel refuses a subvolume that holds another). Nothing there is not an error.
 * @throws SystemError naming the ioctl and the subvolume
 */
export async function destroySubvolume(path: string, core: NativeBinding = native(), depth = 0): Promise<void> {
  try {
    await core.btrfsSubvolume({ op: 'destroy', path });
    return;
  } catch (error) {
    if (isSystemError(error) && error.code === 'ENOENT') return;
    // Bounded: each round goes one subvolume level deeper, and btrfs paths end (PATH_MAX).
    if (!(isSystemError(error) && error.code === 'ENOTEMPTY') || depth > 1024) throw fromNativeError(error, { context: 'btrfs: destroying a subvolume', path });
  }
  // A read-only subvolume (a container can make its own one) refuses the removal of the
  // entries of those inside it (EROFS): as root, berth clears the flag first.
  await core.btrfsSubvolume({ op: 'set-readonly', path, readonly: false }).catch((error: unknown) => {
    throw fromNativeError(error, { context: 'btrfs: making a subvolume writable to empty it', path });
  });
  for (const nested of await subvolumesBelow(path)) await destroySubvolume(nested, core, depth + 1);
  await core.btrfsSubvolume({ op: 'destroy', path }).catch((error: unknown) => {
    throw fromNativeError(error, { context: 'btrfs: destroying a subvolume', path });
  });
}
