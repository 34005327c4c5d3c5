/**
 * `overlay`: kernel overlayfs, berth's default driver. A layer directory holds only its own
 * entries (whiteouts as char devices 0/0, opaque directories by xattr); a container's root is
 * an overlay of the image's layer directories under the container's upper dir, mounted inside
 * the container's own mount namespace (nothing on the host to leak); a stopped container's
 * root for `docker cp` is a detached overlay (the new mount API, in no namespace, gone with
 * its fd). Its changes are its upper dir.
 * @module
 */
import { MountOpKind, type FsRootMode, type NativeMountOp } from '../native.js';
import type { FsOpsBinding } from '../image/fs-ops.js';
import type { ContainerLayerPaths, DetachedRootRequest, LayerChange, RootMountRequest, StorageDriver } from './driver.js';
import { overlayChanges } from './overlay-changes.js';
import { layerArchive } from './rootfs-archive.js';

/**
 * The overlay mount and the root it becomes, after the staging tmpfs: with a throw-away layer
 * its upper and work dirs live in that tmpfs and die with the namespace.
 */
export function overlayRootOps(request: RootMountRequest): NativeMountOp[] {
  const staging = request.stagingDir;
  const root = `${staging}/root`;
  const upperDir = request.layer?.upperDir ?? `${staging}/upper`;
  const workDir = request.layer?.workDir ?? `${staging}/work`;
  const ops: NativeMountOp[] = [];
  if (!request.layer) {
    ops.push(
      { kind: MountOpKind.MkdirHost, target: upperDir, mode: 0o755 },
      { kind: MountOpKind.MkdirHost, target: workDir, mode: 0o755 },
    );
  }
  ops.push(
    { kind: MountOpKind.MkdirHost, target: root, mode: 0o755 },
    {
      kind: MountOpKind.Overlay,
      target: root,
      lowerDirs: [...request.lowerDirs],
      source: upperDir,
      data: workDir,
      ...(request.userns ? { fstype: 'userxattr' } : {}),
      // nodev: berth grants CAP_MKNOD as Docker does, so device nodes must be inert
      // everywhere but the few devices bound under /dev. nosuid: no_new_privs already makes
      // set-id bits inert; the mount flag makes that true without it, too.
      flags: request.flags,
    },
    { kind: MountOpKind.EnterRoot, target: root },
  );
  return ops;
}

/** The kernel overlay driver (see the module comment). */
export const overlayDriver: StorageDriver = Object.freeze({
  name: 'overlay' as const,
  needsLayer: false,
  async prepareContainerLayer(): Promise<void> {
    // The upper and work dirs start empty.
  },
  rootMountOps: overlayRootOps,
  openDetachedRoot(request: DetachedRootRequest, mode: FsRootMode, fs: FsOpsBinding): number {
    return fs.fsMountOverlay(
      { lowerDirs: [...request.lowerDirs], upperDir: request.layer.upperDir, workDir: request.layer.workDir, readonly: request.readonly, userxattr: request.userxattr },
      mode,
    );
  },
  mergedDirs(layer: ContainerLayerPaths, lowerDirs: readonly string[]): string[] {
    return [layer.upperDir, ...lowerDirs];
  },
  changes(layer: ContainerLayerPaths, lowerDirs: readonly string[]): LayerChange[] {
    return overlayChanges(layer.upperDir, lowerDirs);
  },
  layerArchive(layer: ContainerLayerPaths, _lowerDirs: readonly string[], signal?: AbortSignal, skip?: ReadonlySet<string>): AsyncGenerator<Buffer> {
    return layerArchive(layer.upperDir, signal, skip);
  },
  graphDriverData(layer: ContainerLayerPaths, lowerDirs: readonly string[]): Record<string, string> {
    return { LowerDir: lowerDirs.join(':'), UpperDir: layer.upperDir, WorkDir: layer.workDir };
  },
});
