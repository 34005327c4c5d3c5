/**
 * A container's volumes over its whole life (docs/design/volumes.md, "For the container layer"):
 *
 * - at create, every volume mount, every image `Volumes` path and every mount inherited with
 *   `volumesFrom` is attached with the container as its user (in-use for every process until
 *   the container is removed, stopped or not: Docker's rule), created on first use and filled
 *   by copy-up; the resolved list is stored in config.json;
 * - at every start, the stored list becomes launchable binds again (a backend a reboot took is
 *   mounted again; no second copy-up);
 * - at removal, from whichever process removes it, the container lets its volumes go, and its
 *   anonymous ones are removed with `autoRemove` / `remove({ volumes: true })`.
 * @module
 */
import type { MountSpec } from '../launch/run-options.js';
import type { ContainerConfig } from '../image/manifest.js';
import {
  mountsForRecords,
  releaseVolumeMounts,
  resolveVolumeMounts,
  type MountRecord,
  type ResolvedVolumeMounts,
  type VolumesFromSource,
} from '../volumes/volume-mounts.js';
import type { VolumeService } from '../volumes/volume-service.js';
import type { ContainerRecord, ContainerSource } from './container-record.js';

/** The container's mounts as stored; records from before volumes kept them in `options`. */
export function storedMounts(record: Pick<ContainerRecord, 'mounts' | 'options'>): MountRecord[] {
  return record.mounts ?? ((record.options.mounts ?? []) as MountRecord[]);
}

function hasVolumes(records: readonly MountRecord[]): boolean {
  return records.some((m) => m.type === 'volume');
}

/**
 * Attaches the volumes of a container being created. The upper dir is still empty, so copy-up
 * reads the image's layers (or the rootfs directory); a `{ host: true }` container has no image
 * to copy from.
 */
export function resolveContainerMounts(
  volumes: VolumeService,
  c: { id: string; source: ContainerSource; imageConfig: ContainerConfig | undefined; mounts: readonly MountSpec[]; volumesFrom: readonly VolumesFromSource[] },
): Promise<ResolvedVolumeMounts> {
  const layers = c.source.kind === 'image' ? c.source.lowerDirs : c.source.kind === 'rootfs' ? [c.source.dir] : undefined;
  return resolveVolumeMounts(c.mounts, {
    volumes,
    user: { kind: 'container', id: c.id },
    ...(layers ? { copyUp: { layers } } : {}),
    imageVolumes: c.source.kind === 'image' ? Object.keys(c.imageConfig?.Volumes ?? {}) : [],
    volumesFrom: c.volumesFrom,
  });
}

/** The launchable mounts of a start. Containers without volumes never touch the volume store. */
export async function launchMounts(volumes: VolumeService, record: ContainerRecord): Promise<MountSpec[]> {
  const records = storedMounts(record);
  if (!hasVolumes(records)) return records as MountSpec[];
  return mountsForRecords(volumes, records);
}

/** Detaches the container from its volumes; `removeAnonymous` also removes the anonymous ones it made (if nobody else uses them). */
export async function releaseContainerVolumes(volumes: VolumeService, record: ContainerRecord, removeAnonymous: boolean): Promise<void> {
  const records = storedMounts(record);
  if (!hasVolumes(records)) return;
  await releaseVolumeMounts(volumes, { kind: 'container', id: record.id }, records, { removeAnonymous });
}
