/**
 * The native core's confined file-system operations, for the services that unpack, read and
 * copy trees. Their declarations are part of the one contract in lib/native.ts (the `fs*`,
 * `zstd*` and `gzip*` members of `NativeBinding`); this module only names the slice and adds the two
 * helpers every private-root user needs.
 * @internal
 * @module
 */
import { native, type NativeBinding } from '../native.js';

export type { FsRootMode, FsEntryKind, FsEntrySpec, FsMeta, FsStat, WritePoolContent, WritePoolHandle, ZstdHandle, GzipHandle } from '../native.js';

/** The part of the contract the file-system services use; a whole binding (or the fake) fits. */
export type FsOpsBinding = Pick<
  NativeBinding,
  | 'fsOpenRoot' | 'fsOpenRootAt' | 'fsMountOverlay' | 'fsCloseRoot' | 'fsMakeEntry' | 'fsFinishFile'
  | 'fsWritePoolCreate' | 'fsWritePoolSubmit' | 'fsWritePoolBarrier' | 'fsWritePoolIdle' | 'fsWritePoolHasRoom' | 'fsWritePoolClose'
  | 'fsRemoveAt' | 'fsRenameAt' | 'fsReadDirAt' | 'fsLstatAt' | 'fsOpenAt'
  | 'fsSetXattrAt' | 'fsListXattrsAt' | 'fsSetTimesAt' | 'fsSync' | 'fsSyncAsync' | 'fsSetTopDir' | 'fsFlock'
  | 'zstdCreate' | 'zstdDecompress' | 'zstdEnd' | 'gzipCreate' | 'gzipInflate' | 'gzipEnd'
>;

/** The native file-system operations; throws UnsupportedError when the addon is not built. */
export function fsOps(): FsOpsBinding {
  return native();
}

/** Opens a private root (see `NativeBinding.fsOpenRoot`). */
export function openPrivateRoot(dir: string, fs: FsOpsBinding = fsOps()): number {
  return fs.fsOpenRoot(dir, { private: true });
}

/** Closes a root opened with {@link openPrivateRoot}. */
export function closePrivateRoot(fd: number, fs: FsOpsBinding = fsOps()): void {
  fs.fsCloseRoot(fd);
}

/**
 * Sets or clears the "top of a directory hierarchy" flag of a directory (`chattr +T`), so that
 * ext4 places each new subdirectory in a group of its own (see `ContentStore.spreadLayerDirs`
 * for why that matters). A placement hint: whether it was set before, or null when it could
 * not be read or changed here (another file system, not the owner) — never an error.
 */
export function setTopDir(fd: number, on: boolean, fs: FsOpsBinding = fsOps()): boolean | null {
  try {
    return fs.fsSetTopDir(fd, on);
  } catch {
    return null;
  }
}
