/**
 * `btrfs`: when the state directory is on btrfs, an image is a chain of read-only subvolume
 * snapshots, one per layer (btrfs-layers.ts), and a container's layer is a writable snapshot
 * of its image's top one: creating a container costs one snapshot ioctl, whatever the image's
 * size, and its files share their extents with the image until written (copy-on-write at the
 * extent level, not overlay's whole-file copy-up). Its root is the snapshot bound onto itself
 * inside the container's mount namespace, as vfs's copy is; its changes are found by comparing
 * the snapshot with the image's layers, as vfs does (docs/design/storage.md says why not
 * `btrfs send` or `find-new`).
 *
 * A `{ rootfs }` directory is not in the layer store: its container gets an empty subvolume
 * filled with a copy of the directory, as vfs makes one.
 *
 * Removal destroys the subvolume with one ioctl (`removeTree`, lib/host/remove-tree.ts), with
 * the subvolumes a container may have made inside it (it needs no capability for that).
 * @module
 */
import { rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UnsupportedError } from '../errors.js';
import { createSubvolume, destroySubvolume, snapshotSubvolume } from '../host/btrfs-subvolumes.js';
import { filesystemTypeOf } from '../host/filesystem.js';
import { imageSubvolume, isStoreLayerDir, layerSubvolumeOf, sweepLayerSubvolumes } from './btrfs-layers.js';
import type { ContainerLayerPaths, StorageDriver } from './driver.js';
import { copyMergedTree, wholeTreeLayer } from './vfs-driver.js';

/** The btrfs driver (see the module comment). */
export const btrfsDriver: StorageDriver = Object.freeze({
  name: 'btrfs' as const,
  needsLayer: true,
  async prepareContainerLayer(layer: ContainerLayerPaths, lowerDirs: readonly string[]): Promise<void> {
    const fs = filesystemTypeOf(dirname(layer.upperDir));
    if (fs !== 'btrfs') {
      throw new UnsupportedError(`storage driver "btrfs": the container's layer ${layer.upperDir} is on ${fs}, not btrfs: the state directory must be on btrfs`, { path: layer.upperDir });
    }
    // The layer's directory exists, empty (the state store made it): the subvolume takes its name.
    await rmdir(layer.upperDir);
    if (lowerDirs.length > 0 && lowerDirs.every(isStoreLayerDir)) {
      await sweepLayerSubvolumes(dirname(lowerDirs[0]!));
      await snapshotSubvolume(await imageSubvolume(lowerDirs), layer.upperDir);
      return;
    }
    await createSubvolume(layer.upperDir);
    try {
      await copyMergedTree(lowerDirs, layer.upperDir);
    } catch (error) {
      await destroySubvolume(layer.upperDir).catch(() => undefined);
      throw error;
    }
  },
  ...wholeTreeLayer('btrfs'),
  graphDriverData(layer: ContainerLayerPaths, lowerDirs: readonly string[]): Record<string, string> {
    const top = lowerDirs[0];
    return { Dir: layer.upperDir, ...(top !== undefined && isStoreLayerDir(top) ? { ImageSubvolume: layerSubvolumeOf(top) } : {}) };
  },
});
