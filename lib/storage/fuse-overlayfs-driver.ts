/**
 * `fuse-overlayfs`: overlay in user space (Debian's `fuse-overlayfs`), for a state directory
 * whose filesystem kernel overlay refuses as an upper dir (berth inside a container whose root
 * is an overlay) when `/dev/fuse` is there. The image layers stay in the store's one format
 * (fuse-overlayfs reads kernel overlay's whiteouts and opaque xattrs); a container's layer is
 * an upper and a work dir in its state directory, as with `overlay`.
 *
 * The daemon runs on the host side (lib/storage/fuse-mount.ts): before the spawn it mounts the
 * merged view on the layer's `merged/`, the launch binds that into the container's mount
 * namespace as its root, and then the host-side mount is detached (an attached launch: the
 * daemon ends with the container's namespace) or handed to the detached container's monitor
 * (which may start the container again) until the container is removed. A stopped container's
 * root (`cp`) is a mount that lives only as long as the fd opened on it.
 *
 * Without root the daemon runs in the held user namespace and its mount comes to the launch
 * detached (fuse-userns-root.ts): `rootMountOps` attaches it (`MoveTree`) instead of binding
 * a host-side mount, and nothing is left to release after the spawn but this process's fd.
 *
 * What fuse-overlayfs writes in the upper dir is read through {@link FuseUpperDir}, which
 * shows it in overlay's format to the overlay driver's diff and archive code.
 * @module
 */
import { closeSync, mkdtempSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UnsupportedError } from '../errors.js';
import type { FsOpsBinding } from '../image/fs-ops.js';
import { ConfinedDir, MergedView } from '../image/merged-view.js';
import { MountOpKind, type FsRootMode, type NativeMountOp } from '../native.js';
import type { ContainerLayerPaths, DetachedRootRequest, HostRootMount, LayerChange, RootMountRequest, StorageDriver } from './driver.js';
import { MERGED_DIR, detachHostMount, handOverMount, mountFuseOverlay, openThroughFuse, releaseFuseMount, releaseFuseMountSync } from './fuse-mount.js';
import { FuseUpperDir } from './fuse-upper-dir.js';
import { mountDetachedFuseRoot, type DetachedFuseRoot } from './fuse-userns-root.js';
import { overlayChanges } from './overlay-changes.js';
import { layerArchive } from './rootfs-archive.js';

const MS_BIND = 0x1000;
const MS_REMOUNT = 0x20;
const MS_REC = 0x4000;

/** Detached roots made without root (fuse-userns-root.ts) and not yet attached, by layer directory. */
const detachedRoots = new Map<string, DetachedFuseRoot>();

function rootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0;
}

/** The directory holding a layer's upper and work dirs, its `merged/` and `merged.owner`. */
export function layerDirOf(layer: ContainerLayerPaths): string {
  return dirname(layer.upperDir);
}

function openView(layer: ContainerLayerPaths, lowerDirs: readonly string[]): MergedView {
  const layers: ConfinedDir[] = [FuseUpperDir.openUpper(layer.upperDir)];
  try {
    for (const d of lowerDirs) layers.push(ConfinedDir.open(d));
  } catch (error) {
    for (const l of layers) l.close();
    throw error;
  }
  return new MergedView(layers);
}

/** The fuse-overlayfs driver (see the module comment). */
export const fuseOverlayfsDriver: StorageDriver = Object.freeze({
  name: 'fuse-overlayfs' as const,
  // The daemon mounts on the host side, so even a run()'s layer is in the state directory.
  needsLayer: true,
  async prepareContainerLayer(): Promise<void> {
    // The upper and work dirs start empty.
  },
  rootMountOps(request: RootMountRequest): NativeMountOp[] {
    if (!request.layer) throw new UnsupportedError('storage driver "fuse-overlayfs": a root needs its layer in the state directory (a container, or a run of a runtime); this launch brought none');
    const root = `${request.stagingDir}/root`;
    if (request.userns && !rootless()) {
      // The daemon writes files with the ids the container's requests carry; in a user
      // namespace those would need its uid/gid mapping options, which berth does not pass yet.
      throw new UnsupportedError('storage driver "fuse-overlayfs" does not run containers in a user namespace (userns) yet: use the overlay driver, or no userns');
    }
    if (request.userns) {
      // Without root the daemon runs in the held user namespace, whose ids are the container's,
      // and its mount arrives detached (mountHostRoot); the launcher puts the descriptor in `source`.
      return [
        { kind: MountOpKind.MkdirHost, target: root, mode: 0o755 },
        { kind: MountOpKind.MoveTree, source: '', target: root, flags: request.flags },
        { kind: MountOpKind.EnterRoot, target: root },
      ];
    }
    return [
      { kind: MountOpKind.MkdirHost, target: root, mode: 0o755 },
      // The host-side mount, made before the spawn (mountHostRoot), copied into this namespace.
      { kind: MountOpKind.Mount, source: join(layerDirOf(request.layer), MERGED_DIR), target: root, fstype: '', flags: MS_BIND | MS_REC },
      // A bind takes its flags only from a remount: nodev and nosuid as every writable root.
      { kind: MountOpKind.Mount, source: 'none', target: root, fstype: '', flags: MS_REMOUNT | MS_BIND | request.flags },
      { kind: MountOpKind.EnterRoot, target: root },
    ];
  },
  openDetachedRoot(request: DetachedRootRequest, mode: FsRootMode, fs: FsOpsBinding): number {
    // Without root the daemon would have to run in the held user namespace for this too (as for
    // a launch); a stopped container's files are read through openMergedView instead.
    if (request.userxattr || rootless()) throw new UnsupportedError('storage driver "fuse-overlayfs": opening a stopped container\'s root as a mount is not supported in a user namespace (userns, or without root) yet');
    const layerDir = layerDirOf(request.layer);
    // The container is stopped (its lock is held): a host-side mount a detached container's
    // monitor held, or a daemon still on its way out after the container's namespace went,
    // is ended first, so that one daemon at a time uses the work dir.
    releaseFuseMountSync(layerDir);
    const scratch = mkdtempSync(join(layerDir, 'fuse-open-'));
    try {
      return openThroughFuse(
        { lowerDirs: request.lowerDirs, upperDir: request.layer.upperDir, workDir: request.layer.workDir, layerDir: scratch, readonly: request.readonly },
        (merged) => fs.fsOpenRoot(merged, mode),
      );
    } finally {
      // Empty by now (the mount is detached; the fd alone holds it): rmdir, never a recursive
      // removal that could walk into a mount.
      try {
        rmdirSync(join(scratch, MERGED_DIR));
      } catch {
        // not there
      }
      try {
        rmdirSync(scratch);
      } catch {
        // busy: left for the container's removal
      }
    }
  },
  mergedDirs(layer: ContainerLayerPaths, lowerDirs: readonly string[]): string[] {
    return [layer.upperDir, ...lowerDirs];
  },
  openMergedView: openView,
  changes(layer: ContainerLayerPaths, lowerDirs: readonly string[]): LayerChange[] {
    return overlayChanges(FuseUpperDir.openUpper(layer.upperDir), lowerDirs);
  },
  layerArchive(layer: ContainerLayerPaths, _lowerDirs: readonly string[], signal?: AbortSignal, skip?: ReadonlySet<string>): AsyncGenerator<Buffer> {
    return layerArchive(() => FuseUpperDir.openUpper(layer.upperDir), signal, skip);
  },
  graphDriverData(layer: ContainerLayerPaths, lowerDirs: readonly string[]): Record<string, string> {
    return { LowerDir: lowerDirs.join(':'), UpperDir: layer.upperDir, WorkDir: layer.workDir, MergedDir: join(layerDirOf(layer), MERGED_DIR) };
  },
  async mountHostRoot(layer: ContainerLayerPaths, lowerDirs: readonly string[], userns?: { fd: number }): Promise<HostRootMount | void> {
    const request = { lowerDirs, upperDir: layer.upperDir, workDir: layer.workDir, layerDir: layerDirOf(layer) };
    if (!rootless()) {
      await mountFuseOverlay(request);
      return;
    }
    if (!userns) throw new UnsupportedError('storage driver "fuse-overlayfs" without root needs the containers in this process\'s shared user namespace; explicit uidMap/gidMap get a namespace of their own: leave them out, or use storageDriver "overlay" or "vfs"', { option: 'storageDriver' });
    if (detachedRoots.has(request.layerDir)) throw new UnsupportedError(`storage driver "fuse-overlayfs": the layer ${request.layerDir} is already being started`, { path: request.layerDir });
    const root = await mountDetachedFuseRoot(request, userns.fd);
    detachedRoots.set(request.layerDir, root);
    return { treeFd: root.fd };
  },
  async afterSpawn(layer: ContainerLayerPaths, outcome: Parameters<NonNullable<StorageDriver['afterSpawn']>>[1]): Promise<void> {
    const layerDir = layerDirOf(layer);
    const detached = detachedRoots.get(layerDir);
    if (detached) {
      // The container's mount namespace holds the root now, or nothing does: either way this
      // process lets go, and a failed launch waits for the daemon and its helper to be gone.
      detachedRoots.delete(layerDir);
      closeSync(detached.fd);
      if (outcome.kind === 'failed') await detached.waitExited();
      return;
    }
    if (outcome.kind === 'failed') await releaseFuseMount(layerDir);
    else if (outcome.kind === 'attached') await detachHostMount(layerDir);
    else handOverMount(layerDir, outcome.monitor);
  },
  async releaseLayer(layer: ContainerLayerPaths): Promise<void> {
    const detached = detachedRoots.get(layerDirOf(layer));
    if (detached) {
      detachedRoots.delete(layerDirOf(layer));
      closeSync(detached.fd);
    }
    if (rootless()) return;
    await releaseFuseMount(layerDirOf(layer));
  },
});
