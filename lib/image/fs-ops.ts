/**
 * The native core's confined file-system operations (src-native/fs-ops.cc), typed.
 *
 * Every `path` is relative to `rootFd` and resolved by the kernel with
 * `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV)`,
 * so an entry can neither climb out of the root nor pass through a symlink; the last component
 * is never followed. Failures are thrown as `{ code, errno, syscall, path }` errors.
 * @internal
 * @module
 */
import { closeSync } from 'node:fs';
import { native } from '../native.js';

export type FsEntryKind = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';

/** Metadata to apply; absent fields are left alone. `mtime` is seconds since the epoch. */
export interface FsMeta {
  uid?: number;
  gid?: number;
  mode?: number;
  mtime?: number;
  xattrs?: Array<[name: string, value: Buffer]>;
}

export interface FsEntrySpec extends FsMeta {
  path: string;
  kind: FsEntryKind;
  /** Symlink target (verbatim), or hard-link target path (root-relative). */
  target?: string;
  major?: number;
  minor?: number;
}

export interface FsStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  dev: number;
  rdevMajor: number;
  rdevMinor: number;
  mtime: number;
}

/** An opaque native write pool (see `FsOpsBinding.fsWritePoolCreate`). */
export type WritePoolHandle = { readonly __writePool: unique symbol };

/** An opaque libzstd decompression stream. */
export type ZstdHandle = { readonly __zstd: unique symbol };

/** The members of the native binding this service uses (declared in lib/native.ts too). */
export interface FsOpsBinding {
  /**
   * Opens a directory (O_RDONLY|O_DIRECTORY|O_CLOEXEC) to be the root of later calls.
   * `private`: nothing but this process writes below it (a temp dir in the store), so
   * `fsMakeEntry` may reuse the parent directory it resolved last instead of resolving it for
   * every entry; close such a root with `fsCloseRoot` (older addons ignore the option).
   */
  fsOpenRoot(dir: string, options?: { private?: boolean }): number;
  /** Closes a root and drops what was cached for it (absent in older addons: then closeSync). */
  fsCloseRoot?(fd: number): void;
  /**
   * Creates one entry, replacing whatever is at the path (an existing directory survives when
   * the entry is a directory). Returns a write fd for `file` (finish it with fsFinishFile),
   * -1 otherwise.
   */
  fsMakeEntry(rootFd: number, entry: FsEntrySpec): number;
  /** chown, chmod, xattrs, mtime (in that order) on a file fd, then closes it. */
  fsFinishFile(fd: number, meta: FsMeta, pathForErrors?: string): void;
  /**
   * Worker threads that write regular files below a private root: create (O_EXCL), write,
   * chown, chmod, xattrs, mtime, close. The caller orders: only new paths whose parent exists,
   * and `fsWritePoolBarrier` before anything that depends on a queued file. Absent in older
   * addons.
   */
  fsWritePoolCreate?(rootFd: number, threads: number): WritePoolHandle;
  /** Queues one file (the content is copied); blocks while 32 MiB are queued. */
  fsWritePoolSubmit?(pool: WritePoolHandle, path: string, meta: FsMeta, data: Buffer): void;
  /** Waits for every queued file; throws the first failure (`{ code, errno, syscall, path }`). */
  fsWritePoolBarrier?(pool: WritePoolHandle): void;
  /** Stops the threads after the queue drains; failures are not reported (call the barrier first). */
  fsWritePoolClose?(pool: WritePoolHandle): void;
  /** Removes a path recursively; false when nothing was there. */
  fsRemoveAt(rootFd: number, path: string): boolean;
  /** Atomic rename of `from` over `to`, both in the same directory of the root. */
  fsRenameAt(rootFd: number, from: string, to: string): void;
  /** Names in a directory ("" is the root). */
  fsReadDirAt(rootFd: number, path: string): string[];
  /** lstat; null when the path (or a parent) does not exist. "" is the root. */
  fsLstatAt(rootFd: number, path: string): FsStat | null;
  /**
   * Opens a regular file or directory read-only, confined to the root: the entry is pinned
   * with O_PATH|O_NOFOLLOW, its type checked on that inode, then the same inode reopened
   * (O_NOCTTY|O_NONBLOCK). Anything else is refused (ENXIO; ELOOP for a symlink), so a
   * container swapping a file for a device or FIFO never gets it opened on the host.
   */
  fsOpenAt(rootFd: number, path: string): number;
  fsSetXattrAt(rootFd: number, path: string, name: string, value: Buffer): void;
  fsListXattrsAt(rootFd: number, path: string): Array<[name: string, value: Buffer]>;
  /** Sets atime and mtime (seconds) without following a final symlink. */
  fsSetTimesAt(rootFd: number, path: string, mtime: number): void;
  /** syncfs(2) on the file system holding fd. */
  fsSync(fd: number): void;
  /** syncfs(2) on a thread-pool thread (absent in addons built before it existed). */
  fsSyncAsync?(fd: number): Promise<void>;
  /** Non-blocking flock(2); false when another holder conflicts. */
  fsFlock(fd: number, op: 'exclusive' | 'shared' | 'unlock'): boolean;
  zstdCreate(): ZstdHandle;
  /**
   * One bounded step: decodes `input` from `offset` into at most one block (128 KiB) of
   * output. `offset` in the result is where the next step starts; `more` means the output
   * filled up and the decoder may hold more even once the input is consumed (call again).
   */
  zstdDecompress(handle: ZstdHandle, input: Buffer, offset: number): { output: Buffer; offset: number; more: boolean };
  /** Frees the stream; throws (code ERR_ZSTD) if the input ended inside a frame. */
  zstdEnd(handle: ZstdHandle): void;
}

let cached: FsOpsBinding | undefined;

/** The native file-system operations; throws UnsupportedError when the addon is not built. */
export function fsOps(): FsOpsBinding {
  cached ??= native() as unknown as FsOpsBinding;
  return cached;
}

/** A native error object (`{ code, errno, syscall, path }`). */
export interface NativeFsError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

export function isNativeFsError(e: unknown): e is NativeFsError {
  return e instanceof Error && typeof (e as NativeFsError).code === 'string' && typeof (e as NativeFsError).errno === 'number';
}

/** Opens a private root (see `FsOpsBinding.fsOpenRoot`). */
export function openPrivateRoot(dir: string): number {
  return fsOps().fsOpenRoot(dir, { private: true });
}

/** Closes a root opened with {@link openPrivateRoot}. */
export function closePrivateRoot(fd: number): void {
  const native = fsOps();
  if (native.fsCloseRoot) native.fsCloseRoot(fd);
  else closeSync(fd);
}
