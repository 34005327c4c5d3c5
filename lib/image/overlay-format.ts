/**
 * The on-disk format overlayfs reads, shared by everything that writes or reads layer
 * directories without mounting them (unpack, container diff/export, volume copy-up).
 *
 * - A character device 0/0 is a whiteout: it hides the same name in lower layers.
 * - A directory with an `overlay.opaque` xattr of `y` hides everything below it in lower
 *   layers. The kernel reads `trusted.overlay.*`, or `user.overlay.*` when the overlay was
 *   mounted with `userxattr` (in a user namespace), so readers must honour both.
 * @module
 */
import type { FsStat } from './fs-ops.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;

/** The opaque marker berth writes when unpacking (as host root, for a root-mounted overlay). */
export const OPAQUE_XATTR = 'trusted.overlay.opaque';
/** Every spelling the kernel may read. */
export const OPAQUE_XATTRS: readonly string[] = Object.freeze(['trusted.overlay.opaque', 'user.overlay.opaque']);

export function isDir(st: FsStat): boolean {
  return (st.mode & S_IFMT) === S_IFDIR;
}

export function isWhiteout(st: FsStat): boolean {
  return (st.mode & S_IFMT) === S_IFCHR && st.rdevMajor === 0 && st.rdevMinor === 0;
}

/** Whether an xattr pair marks its directory opaque. */
export function isOpaqueXattr(name: string, value: Buffer): boolean {
  return OPAQUE_XATTRS.includes(name) && value.toString() === 'y';
}

/** Overlay's own bookkeeping, never part of what a user sees. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}
