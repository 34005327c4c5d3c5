/**
 * Which storage driver a runtime uses: the one `Runtime.open({ storageDriver })` names, after
 * trying that it works on the state directory's filesystem (a typed error naming what is
 * missing and the fix when it does not), or the first that works in the default order
 * (docs/design/storage.md, The probe).
 * @module
 */
import { closeSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedError, ValidationError } from '../errors.js';
import { filesystemTypeOf } from '../host/filesystem.js';
import { native } from '../native.js';
import { STORAGE_DRIVER_NAMES, type StorageDriver, type StorageDriverName } from './driver.js';
import { fuseOverlayfsMissing, mountFuseOverlaySync, releaseFuseMountSync } from './fuse-mount.js';
import { fuseOverlayfsDriver } from './fuse-overlayfs-driver.js';
import { mountDetachedFuseRoot } from './fuse-userns-root.js';
import { leaseHeldUserns, type HeldUsernsLease } from '../rootless/held-userns.js';
import { rootlessIdMaps } from '../rootless/id-maps.js';
import { overlayDriver } from './overlay-driver.js';
import { btrfsDriver } from './btrfs-driver.js';
import { sweepLayerSubvolumes } from './btrfs-layers.js';
import { tryBtrfs } from './btrfs-trial.js';
import { vfsDriver } from './vfs-driver.js';
import { tryOverlayInUserns } from './userns-overlay-trial.js';

/** The driver a runtime uses, and why. */
export interface StorageChoice {
  readonly driver: StorageDriver;
  /** Whether the driver was tried and works on the state directory (false only when nothing did). */
  readonly usable: boolean;
  /** Why this driver: chosen by the caller, or what the probe found. */
  readonly reason: string;
  /** The state directory's filesystem, in Docker's words (`extfs`, `xfs`, `btrfs`, `overlayfs`, ...). */
  readonly backingFilesystem: string;
}

/** The outcome of trying one driver on a directory. */
export type DriverTrial = { ok: true; detail: string } | { ok: false; detail: string; fix: string };

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Mounts an overlay of scratch directories below `dir` with the new mount API and closes it at
 * once (never attached, so nothing outlives the trial; the directories are removed). Overlay
 * refuses an upper dir on some filesystems (overlay itself: berth inside a container), so it is
 * tried on the state directory's own. Root only: see {@link tryOverlayHere}.
 */
export function tryOverlay(dir: string): DriverTrial {
  const fs = filesystemTypeOf(dir);
  let scratch: string | undefined;
  try {
    scratch = mkdtempSync(join(dir, '.storage-probe-'));
    for (const d of ['l', 'u', 'w']) mkdirSync(join(scratch, d));
    const core = native();
    core.fsCloseRoot(core.fsMountOverlay({ lowerDirs: [join(scratch, 'l')], upperDir: join(scratch, 'u'), workDir: join(scratch, 'w') }));
    return { ok: true, detail: `kernel overlay mounts with its upper dir on the state directory's filesystem (${fs})` };
  } catch (error) {
    const fix = fs === 'overlayfs'
      ? 'put the state directory on a volume or tmpfs (Runtime.open({ root })), or use storageDriver "vfs"'
      : 'use a state directory on ext4, xfs, btrfs or tmpfs (Runtime.open({ root })), or storageDriver "vfs"';
    return { ok: false, detail: `kernel overlay does not mount with its upper dir on ${fs}: ${messageOf(error)}`, fix };
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The overlay trial for this process: as root, {@link tryOverlay}; without root, where overlay
 * is mounted inside the containers' user namespace, `tryOverlayInUserns` (a throw-away child
 * in a user and mount namespace of its own mounts it).
 */
export async function tryOverlayHere(dir: string): Promise<DriverTrial> {
  return (process.geteuid?.() ?? 0) === 0 ? tryOverlay(dir) : tryOverlayInUserns(dir);
}

/**
 * Mounts a fuse-overlayfs of scratch directories below `dir` (the daemon, the device and the
 * upper dir on the state directory's filesystem all tried) and unmounts it at once.
 */
export function tryFuseOverlayfs(dir: string): DriverTrial {
  const missing = fuseOverlayfsMissing();
  if (missing) return { ok: false, ...missing };
  const fs = filesystemTypeOf(dir);
  let scratch: string | undefined;
  try {
    scratch = mkdtempSync(join(dir, '.storage-probe-'));
    for (const d of ['l', 'u', 'w']) mkdirSync(join(scratch, d));
    try {
      mountFuseOverlaySync({ lowerDirs: [join(scratch, 'l')], upperDir: join(scratch, 'u'), workDir: join(scratch, 'w'), layerDir: scratch });
    } finally {
      releaseFuseMountSync(scratch);
    }
    return { ok: true, detail: `fuse-overlayfs mounts with its upper dir on the state directory's filesystem (${fs}) through /dev/fuse` };
  } catch (error) {
    return { ok: false, detail: `fuse-overlayfs does not mount with its upper dir on ${fs}: ${messageOf(error)}`, fix: 'put the state directory on a volume or tmpfs (Runtime.open({ root }))' };
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The fuse-overlayfs trial for this process: as root, {@link tryFuseOverlayfs}; without root,
 * where the daemon runs in the held user namespace and hands its mount over detached
 * (fuse-userns-root.ts), the same helper mounts scratch directories below `dir`, and the
 * mount is dropped at once (the daemon exits with it).
 */
export async function tryFuseOverlayfsHere(dir: string): Promise<DriverTrial> {
  if ((process.geteuid?.() ?? 0) === 0) return tryFuseOverlayfs(dir);
  const missing = fuseOverlayfsMissing();
  if (missing) return { ok: false, ...missing };
  const fs = filesystemTypeOf(dir);
  let scratch: string | undefined;
  let userns: HeldUsernsLease | undefined;
  try {
    scratch = mkdtempSync(join(dir, '.storage-probe-'));
    for (const d of ['l', 'u', 'w']) mkdirSync(join(scratch, d));
    userns = await leaseHeldUserns(rootlessIdMaps(process.geteuid!(), process.getegid!()));
    const root = await mountDetachedFuseRoot({ lowerDirs: [join(scratch, 'l')], upperDir: join(scratch, 'u'), workDir: join(scratch, 'w'), layerDir: scratch }, userns.fd);
    closeSync(root.fd);
    // Its last mount gone, the daemon exits; the scratch dirs go only after it let go of them.
    await root.waitExited();
    return { ok: true, detail: `fuse-overlayfs mounts with its upper dir on the state directory's filesystem (${fs}) through /dev/fuse, inside this process's user namespace` };
  } catch (error) {
    return { ok: false, detail: `fuse-overlayfs does not mount with its upper dir on ${fs} inside a user namespace: ${messageOf(error)}`, fix: 'put the state directory on a volume or tmpfs (Runtime.open({ root })), or use storageDriver "vfs"' };
  } finally {
    userns?.release();
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/** Checks `storageDriver` of `Runtime.open`. @throws ValidationError naming the option. */
export function checkStorageDriverName(value: unknown): StorageDriverName | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(STORAGE_DRIVER_NAMES as readonly string[]).includes(value)) {
    throw new ValidationError('storageDriver', `must be one of ${STORAGE_DRIVER_NAMES.map((n) => `"${n}"`).join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as StorageDriverName;
}

/** Drivers berth has today, by name; the others of {@link StorageDriverName} are refused as not built yet. */
const DRIVERS: ReadonlyMap<StorageDriverName, StorageDriver> = new Map<StorageDriverName, StorageDriver>([
  ['overlay', overlayDriver],
  ['fuse-overlayfs', fuseOverlayfsDriver],
  ['vfs', vfsDriver],
  ['btrfs', btrfsDriver],
]);

/**
 * The driver a container recorded at create (absent: `overlay`, the only one before drivers
 * were chosen): a container keeps the driver its layer was made for.
 */
export function storageDriverNamed(name: StorageDriverName | undefined): StorageDriver {
  const driver = DRIVERS.get(name ?? 'overlay');
  if (!driver) throw new UnsupportedError(`storage driver "${name}" is not built into this version of berth`);
  return driver;
}

/**
 * The storage driver for the state directory `root` (it exists): `requested` if it works there,
 * else the first that does of overlay, btrfs (state directory on btrfs), fuse-overlayfs, vfs
 * (docs/design/storage.md, The probe).
 * @throws UnsupportedError (option `storageDriver`) when the requested driver cannot work on
 *   this host or filesystem, naming what is missing and the fix.
 */
export async function chooseStorageDriver(root: string, requested?: StorageDriverName): Promise<StorageChoice> {
  const backingFilesystem = filesystemTypeOf(root);
  if (requested === 'btrfs') {
    const btrfs = await tryBtrfs(root);
    if (!btrfs.ok) throw new UnsupportedError(`storageDriver: "btrfs" cannot work on ${root}: ${btrfs.detail}; fix: ${btrfs.fix}`, { option: 'storageDriver', path: root });
    await sweepLayerSubvolumes(join(root, 'layers'));
    return { driver: btrfsDriver, usable: true, reason: `chosen (storageDriver "btrfs"): ${btrfs.detail}`, backingFilesystem };
  }
  if (requested === 'fuse-overlayfs') {
    const fuse = await tryFuseOverlayfsHere(root);
    if (!fuse.ok) throw new UnsupportedError(`storageDriver: "fuse-overlayfs" cannot work on ${root}: ${fuse.detail}; fix: ${fuse.fix}`, { option: 'storageDriver', path: root });
    return { driver: fuseOverlayfsDriver, usable: true, reason: `chosen (storageDriver "fuse-overlayfs"): ${fuse.detail}`, backingFilesystem };
  }
  if (requested === 'vfs') {
    return { driver: vfsDriver, usable: true, reason: 'chosen (storageDriver "vfs"): every container is a full copy of its image', backingFilesystem };
  }
  const trial = await tryOverlayHere(root);
  if (requested === 'overlay') {
    if (!trial.ok) throw new UnsupportedError(`storageDriver: "overlay" cannot work on ${root}: ${trial.detail}; fix: ${trial.fix}`, { option: 'storageDriver', path: root });
    return { driver: overlayDriver, usable: true, reason: `chosen (storageDriver "overlay"): ${trial.detail}`, backingFilesystem };
  }
  if (trial.ok) return { driver: overlayDriver, usable: true, reason: `probed: ${trial.detail}`, backingFilesystem };
  // On btrfs, snapshots before copies (docs/design/storage.md, The probe).
  const btrfs = backingFilesystem === 'btrfs' ? await tryBtrfs(root) : undefined;
  if (btrfs?.ok) {
    await sweepLayerSubvolumes(join(root, 'layers'));
    return { driver: btrfsDriver, usable: true, reason: `probed: ${trial.detail}, and ${btrfs.detail}`, backingFilesystem };
  }
  const fuse = await tryFuseOverlayfsHere(root);
  if (fuse.ok) {
    return {
      driver: fuseOverlayfsDriver,
      usable: true,
      reason: `probed: ${trial.detail}; ${fuse.detail} (a daemon per running container); for kernel overlay, ${trial.fix.replace(/, or (use )?storageDriver "vfs"$/, '')}`,
      backingFilesystem,
    };
  }
  return {
    driver: vfsDriver,
    usable: true,
    reason: `probed: ${trial.detail}, and ${fuse.detail}, so every container is a full copy of its image (vfs: slower to create, more disk); for overlay, ${trial.fix.replace(/, or (use )?storageDriver "vfs"$/, '')}`,
    backingFilesystem,
  };
}
