/**
 * `vfs`: no union filesystem at all, so it works on any filesystem and in any container (the
 * last resort of the probe, Docker's `vfs`). A container's layer is a whole copy of its image's
 * merged tree, made when the container is created (and for a `run()`, before the launch);
 * its root is that directory bound onto itself inside the container's mount namespace. Its
 * changes are found by comparing the copy with the image's layers.
 *
 * Image layers stay in the store's one format (each layer's own entries, as overlay reads
 * them): every reader of layers (pull, save, copy-up, `/etc/passwd` lookups, build) reads that
 * format, and a full copy per layer would cost disk that nothing reads. The copy is made from
 * the merged view (`mergedArchive`, read confined) into the unpacker's flatten mode (confined
 * writes), so whiteouts, opaque directories, hard links, xattrs, owners and device nodes come
 * out as in `umoci unpack`.
 * @module
 */
import { closeSync } from 'node:fs';
import { UnsupportedError } from '../errors.js';
import { fsOps, type FsOpsBinding } from '../image/fs-ops.js';
import { LayerApplier, applyLayer } from '../image/unpack.js';
import { MountOpKind, type FsRootMode, type NativeMountOp } from '../native.js';
import { isRootless } from '../rootless/identity.js';
import { sharedUsernsHelper } from '../rootless/userns-helper.js';
import type { ContainerLayerPaths, DetachedRootRequest, LayerChange, RootMountRequest, StorageDriver } from './driver.js';
import { mergedArchive } from './rootfs-archive.js';
import { treeChangesArchive } from './tree-archive.js';
import { treeChanges } from './tree-changes.js';

const MS_BIND = 0x1000;
const MS_REMOUNT = 0x20;
const MS_REC = 0x4000;

/** Copies the merged tree of `lowerDirs` (top first) into the empty directory `dest`. */
export async function copyMergedTree(lowerDirs: readonly string[], dest: string, fs: FsOpsBinding = fsOps()): Promise<void> {
  const rootFd = fs.fsOpenRoot(dest);
  try {
    const applier = new LayerApplier(rootFd, 'flatten', `copy of ${lowerDirs[0] ?? 'an empty image'}`, fs);
    await applyLayer(mergedArchive([...lowerDirs]), applier, { layer: 'container root', compression: 'none' });
    applier.finish();
  } finally {
    closeSync(rootFd);
  }
}

/**
 * The root of a driver whose container layer is the whole tree (vfs's copy, btrfs's snapshot):
 * that directory bound onto `<staging>/root`, remounted with the writable root's flags.
 */
export function boundLayerRootOps(driver: 'vfs' | 'btrfs', request: RootMountRequest): NativeMountOp[] {
  if (!request.layer) throw new UnsupportedError(`storage driver "${driver}": a root needs its layer made first (a container, or a run of a runtime); this launch brought none`);
  if (request.userns && !isRootless()) {
    // The tree's owners are the image's; a user namespace would see them unmapped (overlay
    // shows the layers through idmapped mounts instead). Without root the tree was written
    // inside the containers' user namespace (prepareContainerLayer), so its owners are
    // already the image's through that map.
    throw new UnsupportedError(`storage driver "${driver}" does not run containers in a user namespace (userns) yet: use the overlay driver, or no userns`);
  }
  const root = `${request.stagingDir}/root`;
  return [
    { kind: MountOpKind.MkdirHost, target: root, mode: 0o755 },
    { kind: MountOpKind.Mount, source: request.layer.upperDir, target: root, fstype: '', flags: MS_BIND | MS_REC },
    // A bind takes its flags only from a remount: nodev and nosuid as every writable root.
    { kind: MountOpKind.Mount, source: 'none', target: root, fstype: '', flags: MS_REMOUNT | MS_BIND | request.flags },
    { kind: MountOpKind.EnterRoot, target: root },
  ];
}

/**
 * What the drivers whose container layer is the whole tree (vfs's copy, btrfs's snapshot) do
 * alike: bind it as the root, open it for `cp`, read changes by comparing it with the layers.
 */
export function wholeTreeLayer(driver: 'vfs' | 'btrfs'): Pick<StorageDriver, 'rootMountOps' | 'openDetachedRoot' | 'mergedDirs' | 'changes' | 'layerArchive'> {
  return {
    rootMountOps(request: RootMountRequest): NativeMountOp[] {
      return boundLayerRootOps(driver, request);
    },
    openDetachedRoot(request: DetachedRootRequest, mode: FsRootMode, fs: FsOpsBinding): number {
      return fs.fsOpenRoot(request.layer.upperDir, mode);
    },
    mergedDirs(layer: ContainerLayerPaths): string[] {
      return [layer.upperDir];
    },
    changes(layer: ContainerLayerPaths, lowerDirs: readonly string[]): LayerChange[] {
      return treeChanges(layer.upperDir, lowerDirs);
    },
    layerArchive(layer: ContainerLayerPaths, lowerDirs: readonly string[], signal?: AbortSignal, skip?: ReadonlySet<string>): AsyncGenerator<Buffer> {
      return treeChangesArchive(layer.upperDir, treeChanges(layer.upperDir, lowerDirs), signal, skip);
    },
  };
}

/** The copying driver (see the module comment). */
export const vfsDriver: StorageDriver = Object.freeze({
  name: 'vfs' as const,
  needsLayer: true,
  async prepareContainerLayer(layer: ContainerLayerPaths, lowerDirs: readonly string[]): Promise<void> {
    // Without root the copy's files belong to container ids only the containers' user
    // namespace holds: its helper copies the merged view there (images.unpack's copy).
    if (isRootless()) await sharedUsernsHelper().copyLayers({ layerDirs: [...lowerDirs], dir: layer.upperDir, devices: false, image: lowerDirs[0] ?? 'an empty image' });
    else await copyMergedTree(lowerDirs, layer.upperDir);
  },
  ...wholeTreeLayer('vfs'),
  graphDriverData(layer: ContainerLayerPaths): Record<string, string> {
    return { Dir: layer.upperDir };
  },
});
