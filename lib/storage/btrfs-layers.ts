/**
 * The btrfs driver's image trees: for each layer of the store (`layers/<chainid>/`, overlay
 * format, docs/design/storage.md) a read-only subvolume `layers/<chainid>.btrfs` holding the
 * whole merged tree up to that layer. Layer N's subvolume is a snapshot of layer N-1's with
 * layer N applied on it (whiteouts and opaque directories as real deletions, as `umoci unpack`
 * applies them), so images that share a base share its subvolume's extents, and a container is
 * one more snapshot of its image's top one.
 *
 * A link is built in a writable subvolume `layers/.btrfs-new-<pid>-<start time>-<random>`
 * and published as a read-only snapshot under its final name (the ioctl fails with EEXIST when
 * another process published it first: that one is used), then the scratch one is destroyed; a
 * crash leaves only a scratch subvolume, which {@link sweepLayerSubvolumes} destroys once its
 * owner is gone. The content store removes a layer's `.btrfs` with the layer
 * (`ContentStore.removeLayer`); the sweep also destroys one whose layer is gone (a crash in
 * between).
 * @module
 */
import { closeSync, existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isSystemError } from '../errors.js';
import { createSubvolume, destroySubvolume, isSubvolumeRoot, snapshotSubvolume } from '../host/btrfs-subvolumes.js';
import { fsOps } from '../image/fs-ops.js';
import { LayerApplier, applyLayer } from '../image/unpack.js';
import { isAlive, selfIdentity } from '../state/process-identity.js';
import { layerArchive } from './rootfs-archive.js';

/** The suffix of a layer's subvolume beside its directory. */
export const LAYER_SUBVOLUME_SUFFIX = '.btrfs';
const SCRATCH = /^\.btrfs-new-(\d+)-(\d+)-[a-z0-9]+$/;

/** A directory of the content store (`<root>/layers/<64 hex>`), as opposed to a `{ rootfs }` directory. */
export function isStoreLayerDir(dir: string): boolean {
  return /^[0-9a-f]{64}$/.test(basename(dir)) && basename(dirname(dir)) === 'layers';
}

/** The subvolume of the store layer `layerDir`. */
export function layerSubvolumeOf(layerDir: string): string {
  return `${layerDir}${LAYER_SUBVOLUME_SUFFIX}`;
}

/**
 * Destroys, in the store's `layers/` directory, scratch subvolumes of processes that are gone
 * and layer subvolumes whose layer is gone.
 */
export async function sweepLayerSubvolumes(layersDir: string): Promise<void> {
  for (const name of await readdir(layersDir).catch(() => [] as string[])) {
    const scratch = SCRATCH.exec(name);
    const path = join(layersDir, name);
    if (scratch) {
      if (!isAlive({ pid: Number(scratch[1]), startTime: scratch[2]! })) await destroySubvolume(path);
    } else if (name.endsWith(LAYER_SUBVOLUME_SUFFIX) && !existsSync(path.slice(0, -LAYER_SUBVOLUME_SUFFIX.length))) {
      await destroySubvolume(path);
    }
  }
}

/** Applies the store layer `layerDir` (its own entries, overlay format) onto the tree at `dest`. */
async function applyLayerDir(layerDir: string, dest: string): Promise<void> {
  const fs = fsOps();
  const rootFd = fs.fsOpenRoot(dest);
  try {
    const applier = new LayerApplier(rootFd, 'flatten', `btrfs link of ${basename(layerDir)}`, fs);
    await applyLayer(layerArchive(layerDir), applier, { layer: basename(layerDir), compression: 'none' });
    applier.finish();
  } finally {
    closeSync(rootFd);
  }
}

/** Builds the subvolume of `layerDir` over `below` (the subvolume of the layer under it, if any). */
async function buildLink(layerDir: string, below: string | undefined): Promise<void> {
  const me = selfIdentity();
  const scratch = join(dirname(layerDir), `.btrfs-new-${me.pid}-${me.startTime}-${Math.random().toString(36).slice(2, 10)}`);
  if (below === undefined) await createSubvolume(scratch);
  else await snapshotSubvolume(below, scratch);
  try {
    await applyLayerDir(layerDir, scratch);
    await snapshotSubvolume(scratch, layerSubvolumeOf(layerDir), { readonly: true }).catch((error: unknown) => {
      // Another process published the same link meanwhile: the same tree, keep theirs.
      if (!(isSystemError(error) && error.code === 'EEXIST')) throw error;
    });
  } finally {
    await destroySubvolume(scratch);
  }
}

/**
 * The read-only subvolume holding the merged tree of the store layers `lowerDirs` (top first),
 * building the links that are missing from the bottom up.
 */
export async function imageSubvolume(lowerDirs: readonly string[]): Promise<string> {
  let below: string | undefined;
  for (const dir of [...lowerDirs].reverse()) {
    const link = layerSubvolumeOf(dir);
    if (!isSubvolumeRoot(link)) await buildLink(dir, below);
    below = link;
  }
  if (below === undefined) throw new TypeError('imageSubvolume: no layers');
  return below;
}
