/**
 * The one interface every storage driver implements: how image layers are laid out on disk,
 * how a container's root is made from them, and how a container's own changes are read back.
 * `overlay` (kernel overlayfs) is berth's default; the other drivers exist for filesystems and
 * hosts where kernel overlay cannot mount (docs/design/storage.md).
 *
 * A driver never decides *where* things live: the content store names the layer directories
 * (`layers/<chainid>/`) and the container's state directory names its own layer's directories.
 * Image layers have one format for every driver (each layer's own entries, whiteouts as
 * overlay reads them): every reader of layers (pull, save, copy-up, build, `/etc/passwd`
 * lookups) reads that format, so a driver decides only what a container's layer holds and
 * how a root is made of it and the image's layers (docs/design/storage.md, Layer format). Removal is the
 * same for every driver (`removeTree`, lib/host/remove-tree.ts: the directories are removed, btrfs
 * subvolumes among them destroyed), so it is not part of the interface.
 * @module
 */
import type { NativeMountOp, FsRootMode } from '../native.js';
import type { FsOpsBinding } from '../image/fs-ops.js';
import type { MergedView } from '../image/merged-view.js';
import type { ProcessIdentity } from '../state/process-identity.js';

/** The drivers berth knows, by the names `Runtime.open({ storageDriver })` takes. */
export type StorageDriverName = 'overlay' | 'fuse-overlayfs' | 'vfs' | 'btrfs';

/** Every {@link StorageDriverName}, in the default probe's order of preference (btrfs last: only when chosen). */
export const STORAGE_DRIVER_NAMES: readonly StorageDriverName[] = Object.freeze(['overlay', 'fuse-overlayfs', 'vfs', 'btrfs']);

/**
 * A container's own writable layer, two directories of its state directory (the same
 * filesystem as the image layers). What they hold is the driver's: overlay's upper and work
 * dirs, or a copying driver's whole root in `upperDir` (`workDir` unused).
 */
export interface ContainerLayerPaths {
  upperDir: string;
  workDir: string;
}

/** What a launch asks of the driver to make its root. */
export interface RootMountRequest {
  /** The image's layer directories, top first (a `{ rootfs }` directory is one layer). */
  lowerDirs: readonly string[];
  /** The container's persistent layer; absent: a throw-away one in the staging tmpfs. */
  layer?: ContainerLayerPaths;
  /** The launch's staging directory: a fresh tmpfs is mounted on it (the first op) before these. */
  stagingDir: string;
  /** The container runs in a user namespace (overlay needs `userxattr` there). */
  userns: boolean;
  /** mount(2) flags of the writable root (nodev, nosuid unless privileged). */
  flags: number;
}

/** What opening a stopped container's root asks of the driver (`docker cp`, build steps). */
export interface DetachedRootRequest {
  lowerDirs: readonly string[];
  layer: ContainerLayerPaths;
  readonly: boolean;
  /** The container ran in a user namespace (its overlay metadata is `user.overlay.*`). */
  userxattr: boolean;
}

/** What {@link StorageDriver.mountHostRoot} made: a detached root for the launch to attach. */
export interface HostRootMount {
  /** A descriptor of the detached mount, this process's until {@link StorageDriver.afterSpawn}. */
  treeFd: number;
}

/** One change of a container's layer over its image, before berth's own files are left out. */
export interface LayerChange {
  /** Absolute path inside the container. */
  path: string;
  kind: 'A' | 'C' | 'D';
  /** Added as an empty directory or an empty regular file (what berth makes to mount over). */
  emptyStub: boolean;
}

/**
 * A storage driver. Methods that read a container's layer take its paths and the image's
 * layer directories (top first) and read through the native confined operations: the layer is
 * written by the container, which is hostile.
 */
export interface StorageDriver {
  readonly name: StorageDriverName;
  /**
   * Whether a root needs the container's layer made first ({@link prepareContainerLayer}): a
   * `run()` then gets a throw-away one in the state directory. false: the root can be made
   * with a layer in the launch's staging tmpfs.
   */
  readonly needsLayer: boolean;
  /**
   * Makes the container's persistent layer (its directories exist, empty) before its first
   * start; a copying driver copies the image's tree into it.
   */
  prepareContainerLayer(layer: ContainerLayerPaths, lowerDirs: readonly string[]): Promise<void>;
  /**
   * The mount operations that make the container's root at `<stagingDir>/root` and enter it
   * (the last op is `EnterRoot`), run by the native core inside the container's own mount
   * namespace, after the staging tmpfs is mounted.
   */
  rootMountOps(request: RootMountRequest): NativeMountOp[];
  /**
   * A stopped container's root as a root fd mounted nowhere (closed with `fsCloseRoot`), or
   * opened in place for drivers whose layer is a plain directory.
   */
  openDetachedRoot(request: DetachedRootRequest, mode: FsRootMode, fs: FsOpsBinding): number;
  /**
   * The directories whose merged view (`MergedView`, top first) is the container's root
   * filesystem without its mounts: for export and for reading files of a stopped container.
   */
  mergedDirs(layer: ContainerLayerPaths, lowerDirs: readonly string[]): string[];
  /** The container's changes over its image (docker diff), sorted by nothing in particular. */
  changes(layer: ContainerLayerPaths, lowerDirs: readonly string[]): LayerChange[];
  /**
   * The container's changes as an OCI layer tar (whiteouts as `.wh.` files), for commit and
   * build steps; `skip` names relative paths left out.
   */
  layerArchive(layer: ContainerLayerPaths, lowerDirs: readonly string[], signal?: AbortSignal, skip?: ReadonlySet<string>): AsyncGenerator<Buffer>;
  /** `GraphDriver.Data` of `docker inspect`: where the container's layers are. */
  graphDriverData(layer: ContainerLayerPaths, lowerDirs: readonly string[]): Record<string, string>;
  /**
   * The merged view of the container's root when its layer is not in overlay's format (read
   * through a translation); absent: `MergedView.open(mergedDirs(...))`.
   */
  openMergedView?(layer: ContainerLayerPaths, lowerDirs: readonly string[]): MergedView;
  /**
   * Host-side work a launch needs before its spawn (fuse-overlayfs: the daemon mounts the
   * merged view the container's mount namespace binds). Absent: the root is made entirely in
   * the container's namespace. Without root (`userns`: the held user namespace the container
   * is made in) the mount comes back detached, as a descriptor for `MountOpKind.MoveTree`.
   */
  mountHostRoot?(layer: ContainerLayerPaths, lowerDirs: readonly string[], userns?: { fd: number }): Promise<HostRootMount | void>;
  /**
   * After the spawn of a launch that {@link mountHostRoot} prepared: `attached` (the container's
   * namespace holds its root now; the host side lets go), `detached` (a monitor that outlives
   * this process may start the container again: it holds the host side until the container is
   * removed or a later process sees the monitor gone) or `failed` (everything undone).
   */
  afterSpawn?(layer: ContainerLayerPaths, outcome: { kind: 'attached' } | { kind: 'failed' } | { kind: 'detached'; monitor: ProcessIdentity }): Promise<void>;
  /** Undoes all host-side state of a layer whose container is gone (before its directories are removed). */
  releaseLayer?(layer: ContainerLayerPaths): Promise<void>;
}
