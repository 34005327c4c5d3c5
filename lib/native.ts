/**
 * The native core's contract, declared once: every function the addon exports, their data
 * types, and the loader that checks a build against this contract. Everything that must be a
 * syscall in a particular process goes through here; everything else stays in TypeScript.
 *
 * Services take a {@link NativeBinding} (defaulting to {@link native}), so that unit tests can
 * hand them the recording fake in test/helpers/native-fake.ts instead of the kernel.
 *
 * Failures arrive as {@link SystemError}s built by the addon itself (src-native/napi-errors.h):
 * see docs/design/errors.md. The launch spec's types and its wire format live beside this file,
 * in lib/native/ (launch-spec.ts, spec-codec.ts), and are re-exported here.
 * @internal
 * @module
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SPEC_FORMAT_VERSION, encodeLaunchSpec } from './native/spec-codec.js';
import type { NativeLaunchSpec, NativeNetInterface } from './native/launch-spec.js';
import { BerthError, SystemError, UnsupportedError, isBerthError, isSystemError } from './errors.js';
import { PrebuildMismatchError, checkPrebuild, hostTarget, type BuildTarget } from './native/prebuild.js';

export * from './native/launch-spec.js';
export { SPEC_FORMAT_VERSION, encodeLaunchSpec } from './native/spec-codec.js';
export { PrebuildMismatchError, checkPrebuild, hostTarget, type BuildTarget, type PrebuildManifest } from './native/prebuild.js';

/** A link of the host's network namespace, as `netListLinks` reports it. */
export interface NativeLinkInfo {
  index: number;
  name: string;
  /** `bridge`, `veth`, … ('' for a physical device). */
  kind: string;
  alias: string;
  /** Index of the bridge this link is a port of; 0 for none. */
  master: number;
  mtu: number;
  up: boolean;
}

/**
 * The facts of a native failure. Thrown ones are {@link SystemError}s already; this shape is for
 * failures that arrive as data: an exec that found no candidate (`execFailed`), the status the
 * detached monitor writes as JSON.
 */
export interface NativeErrorShape {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  message: string;
}

export interface NativeSpawnResult {
  pid: number;
  pidfd: number;
  stdio: [number, number, number];
  ttyMaster: number;
  /**
   * With `spec.trace`: ms since the start of the spawn at each stage — in the child: go,
   * mounts done, pivot done, stdio done, credentials done, seccomp loaded; in the parent:
   * clone returned, cgroups joined, exec observed.
   */
  trace?: number[];
  /** Set when no exec candidate could run; the process already exited and was reaped. */
  execFailed?: NativeErrorShape & { notFound: boolean };
  /**
   * An exec (`spec.join`) resolves as soon as the process exists; what happens up to its
   * execve arrives here, watched on the event loop: the tty master, or why it could not
   * exec (then the process exits by itself and must still be reaped). Rejects with the
   * setup error the process reported.
   */
  launched?: Promise<NativeLaunchStatus>;
}

/** A message of a parked sandbox's PID 1 about its workload (src-native/park-protocol.h). */
export type NativeParkEvent =
  /** `execFailed`: no candidate could be executed (127/126, `error.notFound`); else its setup failed. */
  | { kind: 'failed'; execFailed: boolean; error: NativeErrorShape & Error & { notFound: boolean } }
  /** The control socket ended: the command exec'd (its execve closed it), or PID 1 died. The last event. */
  | { kind: 'gone' };

/** How an exec'd process's setup ended (see {@link NativeSpawnResult.launched}). */
export interface NativeLaunchStatus {
  ttyMaster: number;
  execFailed?: NativeErrorShape & { notFound: boolean };
}

export interface NativeExitStatus {
  code: number | null;
  signal: number | null;
  coreDumped?: boolean;
  error?: string;
}

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

/**
 * How paths below a root are resolved. The default is the strict lookup of every `fs*` call
 * (no symlink, no mount crossing on the way). `follow`: symlinks on the way are followed
 * inside the root (`RESOLVE_IN_ROOT`: an absolute target or `..` restarts or stops at the
 * root; magic links never), as the container itself resolves them; an entry's final component
 * is still never followed. `crossMounts`: a lookup may enter a mount below the root (a
 * container's volumes and binds).
 */
export interface FsRootMode {
  follow?: boolean;
  crossMounts?: boolean;
  /**
   * Make new entries as this host uid/gid (the creating thread's fsuid/fsgid, for that syscall
   * only; berth keeps its capabilities): a running user-namespaced container's overlay belongs
   * to its user namespace, which refuses inodes from a creator it does not map (EOVERFLOW).
   * Owners are set afterwards as usual. Only this root's own calls, not roots opened below it.
   */
  createAs?: { uid: number; gid: number };
}

/** What {@link NativeBinding.btrfsSubvolume} does. */
export type BtrfsSubvolumeRequest =
  | { op: 'create'; path: string }
  | { op: 'snapshot'; source: string; path: string; readonly?: boolean }
  | { op: 'destroy'; path: string }
  | { op: 'set-readonly'; path: string; readonly: boolean };

/** An opaque native write pool (see {@link NativeBinding.fsWritePoolCreate}). */
export type WritePoolHandle = { readonly __writePool: unique symbol };

/** What a write-pool entry holds (see {@link NativeBinding.fsWritePoolSubmit}). */
export type WritePoolContent =
  | Buffer
  | Buffer[]
  | { symlink: string }
  | { copyFrom: number; path: string }
  | { stream: 'open' | 'end' }
  | { append: Buffer };

/** An opaque libzstd decompression stream. */
export type ZstdHandle = { readonly __zstd: unique symbol };

/** An opaque ISA-L gzip inflate stream. */
export type GzipHandle = { readonly __gzip: unique symbol };

/**
 * Every function the addon exports (`spawn` encodes the spec, see lib/native/spec-codec.ts).
 *
 * The `fs*` functions (src-native/fs-ops.h) take paths relative to a `rootFd` and resolve them
 * with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV)`,
 * so an entry can neither climb out of the root nor pass through a symlink; the last component
 * is never followed.
 */
export interface NativeBinding {
  /**
   * Creates a container (or, with `spec.join`, a process in one). `beforeGo` runs once the
   * child exists in its namespaces and waits for "go": the launch goes on when it resolves; when
   * it rejects, the child is killed and `spawn` rejects with that error (a rootless container's
   * user-mode network starts here). The native side waits for it at most 60 s.
   */
  spawn(spec: NativeLaunchSpec, beforeGo?: (pid: number) => Promise<void>): Promise<NativeSpawnResult>;
  watchExit(pidfd: number, callback: (status: NativeExitStatus) => void): void;
  sendSignal(pidfd: number, signal: number): boolean;
  /**
   * A parked sandbox's control socket (src-native/park-protocol.h): `[node, pid1]`, both
   * close-on-exec. `pid1` becomes the stdin of `berth-exec park` at launch; close it after.
   */
  parkControl(): [number, number];
  /**
   * Sends `spec`'s process (its exec plan: argv, env, user, capabilities, rlimits, workdir) to
   * the parked PID 1 at the other end of `control`, which becomes it; a failure to set it up or
   * execute it arrives through {@link parkWatch}, its exit through PID 1's pidfd. Returns Node's
   * ends of its stdio (-1 where the spec has none).
   * @throws SystemError: ECHILD when PID 1 is gone.
   */
  parkExec(control: number, spec: NativeLaunchSpec): [number, number, number];
  /**
   * Calls `callback` for each failure report of the parked PID 1 on `control`, on the event
   * loop, then once with `gone` when the socket ends (the command exec'd, or PID 1 died).
   */
  parkWatch(control: number, callback: (event: NativeParkEvent) => void): void;
  /**
   * The parked PID 1's last word on `control`, read without blocking: its failure report, else
   * `gone`; `null` when its end is still open. For after PID 1's exit, when the report (sent
   * before it exited) is there and the socket has ended: no wake-up while the command runs.
   */
  parkResult(control: number): NativeParkEvent | null;
  sealExecutable(path: string): number;
  /** A pidfd for a process this one did not start. */
  pidfdOpen(pid: number): number;
  /** A duplicate of descriptor `fd` of the process of `pidfd` (pidfd_getfd: the same open file, close-on-exec). */
  pidfdGetfd(pidfd: number, fd: number): number;
  /** Loads a BPF_CGROUP_DEVICE program (lib/security/device-filter.ts); returns its fd. */
  loadDeviceFilter(program: Buffer): number;
  /** Attaches a loaded device program to a cgroup v2 directory (BPF_F_ALLOW_MULTI). */
  attachDeviceFilter(cgroupDir: string, programFd: number): void;
  /** Sets a terminal's window size (TIOCSWINSZ). */
  resizeTty(fd: number, rows: number, cols: number): void;
  /** Creates a bridge if missing (idempotent), sets MTU, alias and addresses, brings it up. */
  netEnsureBridge(bridge: { name: string; addresses: string[]; mtu?: number; mac?: string; alias?: string }): Promise<void>;
  /** Deletes a link by name (either end of a veth deletes both); false when there was none. */
  netDeleteLink(name: string): Promise<boolean>;
  /** Every link of this process's network namespace. */
  netListLinks(): Promise<NativeLinkInfo[]>;
  /** Adds interfaces to a running container (its PID 1's `pid` and a `pidfd` of it). */
  netAttach(request: { pid: number; pidfd: number; interfaces: NativeNetInterface[] }): Promise<void>;
  /** Deletes the conntrack entries towards `port` (original direction); resolves with how many. */
  netFlushConntrack(request: { protocol: 'tcp' | 'udp'; port: number }): Promise<number>;
  /**
   * The embedded resolver's query parser (src-native/dns-message.h), for tests: `result` 0 ok,
   * 1 short, 2 not a query, 3 not implemented, 4 malformed.
   */
  dnsParseQuery(bytes: Uint8Array): { result: number; id: number; flags: number; name: string; qtype: number; qclass: number };
  /** The resolver's answer builder, for tests: A records (`addresses` as 32-bit numbers) or one PTR. */
  dnsBuildAnswer(query: { id: number; flags: number; name: string; qtype: number; qclass: number }, rcode: number, addresses: number[], ptr: string): Buffer;
  /**
   * Tells the resolver at `control` a running member's networks now (src-native/dns-protocol.h,
   * `update`): true when that resolver serves the member, false when not or when none listens.
   */
  dnsUpdate(request: { control: string; message: string }): Promise<boolean>;

  /**
   * Opens a directory (O_RDONLY|O_DIRECTORY|O_CLOEXEC) to be the root of later calls.
   * `private`: nothing but this process writes below it (a temp dir in the store), so
   * `fsMakeEntry` may reuse the parent directory it resolved last instead of resolving it for
   * every entry; close such a root with `fsCloseRoot`. The {@link FsRootMode} options loosen the
   * strict lookup for this root (close it with `fsCloseRoot` too).
   */
  fsOpenRoot(dir: string, options?: { private?: boolean } & FsRootMode): number;
  /**
   * Opens the directory `path` below `rootFd` (resolved in that root's mode; a final symlink is
   * followed, inside the root, when the mode follows) as a root of its own in `mode`. Close it
   * with `fsCloseRoot`.
   */
  fsOpenRootAt(rootFd: number, path: string, mode?: FsRootMode): number;
  /**
   * Mounts an overlay of `lowerDirs` (top first) under `upperDir`/`workDir` with the new mount
   * API and never attaches it anywhere: no mount namespace shows it, and the kernel dissolves
   * it when the returned root fd (the only reference) is closed with `fsCloseRoot` or this
   * process dies. Mounted nodev, nosuid, noexec; read-only with `readonly`; `userxattr` for
   * upper dirs a user-namespaced container wrote. Needs Linux 6.8 (`lowerdir+`).
   */
  fsMountOverlay(spec: { lowerDirs: string[]; upperDir: string; workDir: string; readonly?: boolean; userxattr?: boolean }, mode?: FsRootMode): number;
  /** Closes a root (also when it fails) and drops what was cached for it. */
  fsCloseRoot(fd: number): void;
  /**
   * Creates one entry, replacing whatever is at the path (an existing directory survives when
   * the entry is a directory). Returns a write fd for `file` (finish it with fsFinishFile),
   * -1 otherwise.
   */
  fsMakeEntry(rootFd: number, entry: FsEntrySpec): number;
  /**
   * chown, chmod, xattrs, mtime (in that order) on a file fd, then closes it (also when it
   * fails). A chown or chmod that would change nothing is skipped, so the fd must be a file this
   * process just made with `fsMakeEntry` (or a directory): a same-owner chown is what would have
   * cleared an existing file's setuid bits and capabilities.
   */
  fsFinishFile(fd: number, meta: FsMeta, pathForErrors?: string): void;
  /**
   * Worker threads that create new entries below a root: regular files (create, write, chown,
   * chmod, xattrs, mtime, close) and symlinks. Below a private root they cache parent
   * directories; below any other they resolve every parent in the root again. The caller
   * orders: only new paths whose parent exists, and `fsWritePoolBarrier` before anything that
   * depends on a queued entry. Entries of one parent directory go to one thread.
   */
  fsWritePoolCreate(rootFd: number, threads: number): WritePoolHandle;
  /**
   * Queues one entry; blocks while 32 MiB of content or 8,192 entries are queued. `content`: the file's bytes
   * (copied; an array of pieces is joined natively, one copy), a symlink's target, or a regular file below another root to copy in the kernel
   * with its xattrs except overlay's own (that root must stay open until `fsWritePoolClose`).
   * A file too large to queue whole is streamed: `{ stream: 'open' }` creates it (`meta` is
   * applied at the end), each `{ append }` queues the next piece (copied), `{ stream: 'end' }`
   * sets the metadata and closes it; same `path` for all, one streamed file at a time per pool.
   */
  fsWritePoolSubmit(pool: WritePoolHandle, path: string, meta: FsMeta, content: WritePoolContent): void;
  /** Waits for every queued file; throws the first failure. */
  fsWritePoolBarrier(pool: WritePoolHandle): void;
  /** Whether every queued entry is written (or failed): `fsWritePoolBarrier` would return at once. */
  fsWritePoolIdle(pool: WritePoolHandle): boolean;
  /**
   * Whether the queue has room for another piece of input (1 MiB of content and 512 entries
   * below its limits), so that submitting it will not block: a caller with other work waits
   * for this without blocking the event loop.
   */
  fsWritePoolHasRoom(pool: WritePoolHandle): boolean;
  /** Stops the threads after the queue drains; failures are not reported (call the barrier first). */
  fsWritePoolClose(pool: WritePoolHandle): void;
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
  /** syncfs(2) on a thread-pool thread. */
  fsSyncAsync(fd: number): Promise<void>;
  /**
   * Sets (`on`) or clears the directory's "top of a directory hierarchy" flag (FS_TOPDIR_FL,
   * `chattr +T`: ext2/3/4 then place each new subdirectory in a group of its own, as for
   * directories in `/`). Returns whether it was set before; null where the file system has no
   * such flag. Throws the SystemError of the ioctl otherwise (EPERM: not the owner).
   */
  fsSetTopDir(fd: number, on: boolean): boolean | null;
  /** Non-blocking flock(2); false when another holder conflicts. */
  fsFlock(fd: number, op: 'exclusive' | 'shared' | 'unlock'): boolean;

  /**
   * One btrfs subvolume operation, each one ioctl on the parent directory of `path` (whose last
   * component is the subvolume's name), on a thread-pool thread: `create` an empty subvolume
   * (BTRFS_IOC_SUBVOL_CREATE_V2), `snapshot` the subvolume `source` (BTRFS_IOC_SNAP_CREATE_V2,
   * read-only with `readonly`), `destroy` one (BTRFS_IOC_SNAP_DESTROY_V2; ENOTEMPTY while it
   * holds other subvolumes), `set-readonly` (BTRFS_IOC_SUBVOL_SETFLAGS). For the btrfs storage driver (lib/storage/btrfs-subvolumes.ts), on
   * berth's own paths; rejects with the SystemError naming the ioctl and the path.
   */
  btrfsSubvolume(request: BtrfsSubvolumeRequest): Promise<void>;

  zstdCreate(): ZstdHandle;
  /**
   * One bounded step: decodes `input` from `offset` into at most one block (128 KiB) of
   * output. `offset` in the result is where the next step starts; `more` means the output
   * filled up and the decoder may hold more even once the input is consumed (call again).
   */
  zstdDecompress(handle: ZstdHandle, input: Buffer, offset: number): { output: Buffer; offset: number; more: boolean };
  /**
   * Frees the stream; throws if the input ended inside a frame. Decoder failures are
   * SystemErrors with `syscall: 'zstd'` (EINVAL: not a valid frame, EIO: truncated, ENOMEM).
   */
  zstdEnd(handle: ZstdHandle): void;

  /**
   * A gzip inflate stream on ISA-L's igzip (libisal.so.2, loaded on first use), or null when
   * that library is not installed: the caller then uses Node's zlib. Every member's header
   * and CRC-32 + length trailer are checked; members may be concatenated; zero bytes after a
   * member are ignored (as Node's gunzip does).
   */
  gzipCreate(): GzipHandle | null;
  /** One bounded step (at most 128 KiB of output), as {@link NativeBinding.zstdDecompress}. */
  gzipInflate(handle: GzipHandle, input: Buffer, offset: number): { output: Buffer; offset: number; more: boolean };
  /**
   * Ends the stream; throws if the input ended inside a member. Decoder failures are
   * SystemErrors with `syscall: 'gzip'` (EINVAL: not valid gzip or a checksum mismatch, EIO: truncated).
   */
  gzipEnd(handle: GzipHandle): void;
}

/** What the addon file itself exports: the binding, less `spawn`, plus what the loader uses. */
type AddonExports = Omit<NativeBinding, 'spawn' | 'parkExec'> & {
  /** src-native/spec-codec.h `kSpecFormatVersion`: the one version of the whole contract. */
  specFormatVersion: number;
  /** Hands the addon the class it builds every failure with (src-native/napi-errors.h). */
  initialize(errorClass: typeof SystemError): void;
  spawnEncoded(spec: Buffer, beforeGo?: (pid: number, done: (error?: string) => void) => void): Promise<NativeSpawnResult>;
  parkExecEncoded(control: number, spec: Buffer): [number, number, number];
};

/**
 * `spawnEncoded` with a promise-returning `beforeGo`: its rejection (a typed BerthError) is the
 * spawn's, not the native side's generic "setup before go failed".
 */
async function spawnWithBeforeGo(spawnEncoded: AddonExports['spawnEncoded'], spec: Buffer, beforeGo?: (pid: number) => Promise<void>): Promise<NativeSpawnResult> {
  if (!beforeGo) return spawnEncoded(spec);
  let failure: { error: unknown } | undefined;
  let called = false;
  const gate = (pid: number, done: (error?: string) => void): void => {
    called = true;
    beforeGo(pid).then(
      () => done(),
      (error: unknown) => {
        failure = { error };
        done(error instanceof Error ? error.message : String(error));
      },
    );
  };
  let result: NativeSpawnResult;
  try {
    result = await spawnEncoded(spec, gate);
  } catch (error) {
    if (failure) throw failure.error;
    throw error;
  }
  if (!called && !result.execFailed) {
    // An addon older than this code ignores beforeGo: the container would run without what it sets up.
    throw new BerthError('ERR_NATIVE', 'the native addon did not call beforeGo (an older build?): rebuild with `npm run build:native`');
  }
  return result;
}

/** The installed package's directory (where `package.json`, `build/` and `prebuilds/` are). */
export function packageRoot(): string {
  // lib/native.ts (tsx) and dist/index.js (bundle) both sit one level below the root.
  return dirname(dirname(fileURLToPath(import.meta.url)));
}

/** A loaded core: the binding and the directory its helper executables sit in. */
export interface Loaded {
  binding: NativeBinding;
  dir: string;
}

let loaded: Loaded | undefined;

/**
 * Loads the core of the package at `root`: its prebuild for this process (checked by
 * {@link checkPrebuild} before anything is loaded), then `build/Release`, then `build/Debug`.
 * A prebuild made for another machine is skipped; when nothing else loads either, the error is a
 * {@link PrebuildMismatchError} naming what the prebuild is for and what this process needs.
 * Exported for the loader's tests, which point it at crafted package directories.
 */
export function loadCore(root: string, host: BuildTarget = hostTarget()): Loaded {
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  const files: string[] = [];
  let mismatch: PrebuildMismatchError | undefined;
  const prebuilds = join(root, 'prebuilds');
  const own = join(prebuilds, `${host.platform}-${host.arch}`);
  // Other targets' directories are looked at only to say what was found instead.
  const dirs = existsSync(own) ? [own] : existsSync(prebuilds) ? readdirSync(prebuilds).map((d) => join(prebuilds, d)).filter((d) => existsSync(join(d, 'prebuild.json'))) : [];
  for (const dir of dirs) {
    const verdict = checkPrebuild(dir, host);
    if (verdict.ok) {
      files.push(join(dir, 'berth.node'));
    } else {
      mismatch ??= verdict.error;
      tried.push(`${dir} (refused: it is for ${verdict.error.found})`);
    }
  }
  if (dirs.length === 0) tried.push(`${own} (no prebuild for this platform)`);
  files.push(join(root, 'build', 'Release', 'berth.node'), join(root, 'build', 'Debug', 'berth.node'));
  for (const file of files) {
    tried.push(file);
    if (!existsSync(file)) {
      tried[tried.length - 1] = `${file} (absent)`;
      continue;
    }
    try {
      const raw = require(file) as AddonExports;
      if (raw.specFormatVersion !== SPEC_FORMAT_VERSION) {
        // A stale prebuild or build/: it would misread every launch spec. Try the next one.
        tried[tried.length - 1] = `${file} (built for launch spec format ${raw.specFormatVersion ?? 1}, this code needs ${SPEC_FORMAT_VERSION}: rebuild with \`npm run build:native\`)`;
        continue;
      }
      raw.initialize(SystemError);
      const { specFormatVersion: _version, initialize: _initialize, spawnEncoded, parkExecEncoded, ...rest } = raw;
      const binding: NativeBinding = Object.freeze({
        ...rest,
        spawn: (spec: NativeLaunchSpec, beforeGo?: (pid: number) => Promise<void>) => spawnWithBeforeGo(spawnEncoded, encodeLaunchSpec(spec), beforeGo),
        parkExec: (control: number, spec: NativeLaunchSpec) => parkExecEncoded(control, encodeLaunchSpec(spec)),
      });
      return { binding, dir: dirname(file) };
    } catch (error) {
      tried[tried.length - 1] = `${file} (${(error as Error).message})`;
    }
  }
  const fix = 'Build it from source with `npm rebuild berth` (needs g++, make, python3 and libzstd-dev) or install a package with a prebuild for this machine.';
  if (mismatch) {
    throw new PrebuildMismatchError(mismatch.found, mismatch.needed, `berth's native core could not be loaded: ${mismatch.message}. Tried:\n  ${tried.join('\n  ')}\n${fix}`, mismatch.path!);
  }
  throw new UnsupportedError(`berth's native core could not be loaded. Tried:\n  ${tried.join('\n  ')}\n${fix}`);
}

function load(): Loaded {
  loaded ??= loadCore(packageRoot());
  return loaded;
}

/** The loaded addon. Throws an {@link UnsupportedError} listing every path it tried. */
export function native(): NativeBinding {
  return load().binding;
}

/** Path of the static helper executable beside the addon (for processes that must outlive Node). */
export function helperExecutablePath(): string {
  const path = join(load().dir, 'berth-helper');
  if (!existsSync(path)) {
    throw new UnsupportedError(`berth's helper executable is missing: expected ${path} beside the native addon`, { path });
  }
  return path;
}

let helperFd: number | undefined;

/** The sealed-memfd copy of the helper executable that sits beside the addon. */
export function helperExecutableFd(): number {
  if (helperFd !== undefined) return helperFd;
  helperFd = load().binding.sealExecutable(helperExecutablePath());
  return helperFd;
}

let execHelperFd: number | undefined;

/**
 * The sealed-memfd copy of `berth-exec`, the freestanding program that performs every exec
 * into a running container (src-native/exec-main.cc), beside the addon.
 */
export function execHelperExecutableFd(): number {
  if (execHelperFd !== undefined) return execHelperFd;
  const path = join(load().dir, 'berth-exec');
  if (!existsSync(path)) {
    throw new UnsupportedError(`berth's exec helper is missing: expected ${path} beside the native addon`, { path });
  }
  execHelperFd = load().binding.sealExecutable(path);
  return execHelperFd;
}

/** Options of {@link fromNativeError}. */
export interface NativeErrorContext {
  /** Words put before the native message: what berth was doing (`copy-up into volume`). */
  context?: string;
  /** The path to report instead of the native (often root-relative) one. */
  path?: string;
  /** A hint for an errno that misleads (overlayfs' EINVAL, clone's ENOSPC), appended to the message. */
  hint?: (e: NativeErrorShape) => string | undefined;
}

/**
 * The one conversion of a native failure into the BerthError family: a thrown SystemError
 * (given context or a hint, a new one that has it as `.cause`), a failure that arrived as data
 * ({@link NativeErrorShape}), or anything else (wrapped as `ERR_NATIVE`).
 */
export function fromNativeError(error: unknown, how: NativeErrorContext = {}): BerthError {
  const e = error as Partial<NativeErrorShape> | null;
  const facts = isSystemError(error) || (!isBerthError(error) && e !== null && typeof e === 'object' && typeof e.code === 'string' && typeof e.errno === 'number');
  if (!facts) {
    if (isBerthError(error)) return error;
    return new BerthError('ERR_NATIVE', error instanceof Error ? error.message : String(error), { cause: error });
  }
  const shape = { code: e!.code!, errno: e!.errno!, syscall: e!.syscall ?? '', message: String(e!.message ?? e!.code), ...(e!.path !== undefined ? { path: e!.path } : {}) };
  const extra = how.hint?.(shape);
  if (isSystemError(error) && how.context === undefined && how.path === undefined && extra === undefined) return error;
  const path = how.path ?? shape.path;
  return new SystemError(shape.code, `${how.context !== undefined ? `${how.context}: ` : ''}${shape.message}${extra ? `: ${extra}` : ''}`, {
    errno: shape.errno,
    ...(shape.syscall ? { syscall: shape.syscall } : {}),
    ...(path !== undefined ? { path } : {}),
    cause: error,
  });
}
