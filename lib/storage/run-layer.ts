/**
 * The throw-away layer of a `run()` / `spawn()` whose driver needs one made before the launch
 * (vfs: a copy of the image), in the state directory's `tmp/`, removed when the run ends.
 * Its name carries the owner's pid and start time: a process that died before removing it
 * leaves one behind, which the next run of any process removes (its owner is gone for good).
 * @module
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { removeOwnedTree } from '../rootless/remove-owned-tree.js';
import { isAlive, selfIdentity } from '../state/process-identity.js';
import type { ContainerLayerPaths, StorageDriver } from './driver.js';
import { releaseFuseMount } from './fuse-mount.js';

const PREFIX = 'run-layer-';

/** Removes run layers whose owner process is gone. */
async function sweepOrphans(tmpDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(tmpDir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^run-layer-(\d+)-(\d+)-[a-z0-9]+$/.exec(name);
    if (!m || isAlive({ pid: Number(m[1]), startTime: m[2]! })) continue;
    // A host-side mount (fuse-overlayfs) first: a recursive removal would walk into it.
    await releaseFuseMount(join(tmpDir, name));
    await removeOwnedTree(join(tmpDir, name));
  }
}

/**
 * Calls `fn` with a layer made for `lowerDirs` by `driver` when it needs one
 * (`StorageDriver.needsLayer`), else with none; the layer is removed when `fn` settles.
 * @param tmpDir the state directory's `tmp/` (the layers' filesystem)
 */
export async function withRunLayer<T>(driver: StorageDriver, tmpDir: string, lowerDirs: readonly string[], fn: (layer: ContainerLayerPaths | undefined) => Promise<T>): Promise<T> {
  if (!driver.needsLayer) return fn(undefined);
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  await sweepOrphans(tmpDir);
  const me = selfIdentity();
  const dir = join(tmpDir, `${PREFIX}${me.pid}-${me.startTime}-${Math.random().toString(36).slice(2, 10)}`);
  await mkdir(dir, { mode: 0o700 });
  try {
    const layer = { upperDir: join(dir, 'root'), workDir: join(dir, 'work') };
    await mkdir(layer.upperDir, { mode: 0o755 });
    await mkdir(layer.workDir, { mode: 0o700 });
    await driver.prepareContainerLayer(layer, lowerDirs);
    return await fn(layer);
  } finally {
    await driver.releaseLayer?.({ upperDir: join(dir, 'root'), workDir: join(dir, 'work') });
    // The layer may be a btrfs subvolume, or hold ones the run made; without root, files of
    // other container ids (vfs's copy of the image).
    await removeOwnedTree(dir);
  }
}
