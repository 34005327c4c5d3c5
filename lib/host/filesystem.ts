/**
 * Which filesystem a directory lives on, by `statfs(2)`'s magic number: kernel overlay refuses
 * some backing filesystems as its upper dir (overlay itself, as when berth runs inside a
 * container whose root is an overlay), so the storage driver's choice depends on it.
 * @module
 */
import { statfsSync } from 'node:fs';

/** statfs f_type values (linux/magic.h) of the filesystems a state dir is found on. */
const MAGIC: ReadonlyMap<number, string> = new Map([
  [0xef53, 'extfs'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x794c7630, 'overlayfs'],
  [0x2fc12fc1, 'zfs'],
  [0x6969, 'nfs'],
  [0x65735546, 'fuse'],
  [0xf2f52010, 'f2fs'],
  [0x5346544e, 'ntfs'],
  [0x4d44, 'vfat'],
  [0x858458f6, 'ramfs'],
  [0xff534d42, 'cifs'],
  [0x01021997, 'v9fs'],
  [0x73717368, 'squashfs'],
]);

/**
 * The filesystem type of `path` in Docker's `Backing Filesystem` words (`extfs`, `xfs`,
 * `overlayfs`, ...), `0x<hex>` for one berth does not name, or `unknown` when statfs fails.
 */
export function filesystemTypeOf(path: string): string {
  try {
    const type = Number(statfsSync(path).type) >>> 0;
    return MAGIC.get(type) ?? `0x${type.toString(16)}`;
  } catch {
    return 'unknown';
  }
}
