/**
 * What holds a volume's data, chosen from `driverOpts` when the volume is created:
 *
 * - `directory` (default): `_data` is a plain directory in the state dir. No size limit.
 * - `tmpfs` (`{ type: 'tmpfs', size?, mode?, uid?, gid? }` or Docker's `{ type: 'tmpfs',
 *   device: 'tmpfs', o: 'size=64m,uid=1000' }`): a tmpfs mounted on the host at `_data` for as
 *   long as the volume exists, shared by every container that mounts it. Its contents are gone
 *   after a reboot (the next use mounts a fresh, empty tmpfs).
 * - `loop` (`{ size }` without a type): a sparse ext4 image `disk.img` in the volume dir,
 *   loop-mounted at `_data`. Used because the state dir's file system has no project quota berth
 *   can drive (see {@link probeSizeLimitSupport}); the data survives reboots.
 *
 * Parsing is pure (unit-tested); mounting goes through `host-mount.ts`.
 * @module
 */
import { existsSync } from 'node:fs';
import { mkdir, open, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UnsupportedError, ValidationError } from '../errors.js';
import { parseBytes } from '../units.js';
import { findTool, makeExt4, mountAt, mountHolding, mountLoopImage, mountTmpfs, readMountInfo, unmount, type MountInfo } from './host-mount.js';

/** `driverOpts` of `rt.volumes.create()`. Values may be strings, as Docker's `--opt k=v`. */
export interface VolumeDriverOpts {
  /** `'tmpfs'`: a tmpfs-backed volume. Absent: a directory (or, with `size`, a loop-mounted image). */
  type?: 'tmpfs';
  /** Size limit: bytes or with a unit (`'64m'`). */
  size?: number | string;
  /** tmpfs only: permission bits of the volume's root (`0o755` or `'0755'`). Default `1777`. */
  mode?: number | string;
  /** tmpfs only: owner of the volume's root. */
  uid?: number | string;
  gid?: number | string;
  /** Docker's mount options for `type: 'tmpfs'`: `'size=64m,mode=0755,uid=1000,gid=1000,nr_inodes=1k'`. */
  o?: string;
  /** Docker's `device`; with `type: 'tmpfs'` only `'tmpfs'`. */
  device?: string;
}

/** The backend as recorded in a volume's metadata. */
export type VolumeBackend =
  | { kind: 'directory' }
  | { kind: 'tmpfs'; data: string; sizeBytes?: number }
  | { kind: 'loop'; image: string; fstype: 'ext4'; sizeBytes: number };

/** How a size limit without `type` can be enforced under the state dir. */
export interface SizeLimitSupport {
  /** What berth uses, or null when nothing works here. */
  backend: 'loop' | null;
  /** Why project quota is or is not used. */
  projectQuota: string;
  /** Why a loop-mounted image is or is not possible. */
  loop: string;
}

const KNOWN_KEYS = new Set(['type', 'size', 'mode', 'uid', 'gid', 'o', 'device']);
const TMPFS_O_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes']);
/** mkfs.ext4 needs a few hundred KiB for its own metadata. */
export const MIN_LOOP_SIZE = 1024 * 1024;

function idOption(value: unknown, option: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (!Number.isInteger(n) || (n as number) < 0 || (n as number) > 2 ** 32 - 2) throw new ValidationError(option, 'must be a uid/gid number');
  return n as number;
}

function modeOption(value: unknown, option: string): number {
  const n = typeof value === 'string' && /^[0-7]{1,4}$/.test(value) ? parseInt(value, 8) : value;
  if (!Number.isInteger(n) || (n as number) < 0 || (n as number) > 0o7777) throw new ValidationError(option, 'must be permission bits such as 0o755 or "0755"');
  return n as number;
}

/** Docker's `o` string for tmpfs: `size=64m,mode=0755`. */
function parseTmpfsO(o: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of o.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (!TMPFS_O_KEYS.has(key) || eq < 0) {
      throw new ValidationError('driverOpts.o', `unsupported tmpfs option "${part}": use ${[...TMPFS_O_KEYS].map((k) => `${k}=…`).join(', ')}`);
    }
    out[key] = part.slice(eq + 1);
  }
  return out;
}

/** Docker's `Options` map: every option as a string. */
function optionStrings(opts: VolumeDriverOpts): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) out[k] = typeof v === 'number' && k === 'mode' ? v.toString(8).padStart(4, '0') : String(v);
  return out;
}

/**
 * Validates `driverOpts` and decides the backend. `sizeSupport` is asked only for a size limit
 * without a type.
 * @throws ValidationError naming the option; UnsupportedError when no size limit is possible here.
 */
export function planBackend(
  opts: VolumeDriverOpts | undefined,
  sizeSupport: () => SizeLimitSupport,
): { backend: VolumeBackend; options: Record<string, string> } {
  if (opts === undefined) return { backend: { kind: 'directory' }, options: {} };
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new ValidationError('driverOpts', 'must be an object such as { type: "tmpfs", size: "64m" }');
  for (const key of Object.keys(opts)) {
    if (!KNOWN_KEYS.has(key)) throw new ValidationError(`driverOpts.${key}`, `unknown option: berth's local driver takes ${[...KNOWN_KEYS].join(', ')}`);
  }
  const options = optionStrings(opts);
  if (opts.type !== undefined && opts.type !== 'tmpfs') {
    throw new ValidationError('driverOpts.type', `must be "tmpfs" or absent (a directory, or with size a size-limited volume), got ${JSON.stringify(opts.type)}`);
  }
  if (opts.type === 'tmpfs') {
    if (opts.device !== undefined && opts.device !== 'tmpfs') throw new ValidationError('driverOpts.device', 'must be "tmpfs" for a tmpfs volume');
    const fromO = opts.o !== undefined ? parseTmpfsO(String(opts.o)) : {};
    const pick = (k: 'size' | 'mode' | 'uid' | 'gid') => (opts[k] !== undefined ? opts[k] : fromO[k]);
    const data: string[] = [];
    let sizeBytes: number | undefined;
    const size = pick('size');
    if (size !== undefined) {
      sizeBytes = parseBytes(size, 'driverOpts.size');
      if (sizeBytes <= 0) throw new ValidationError('driverOpts.size', 'must be positive');
      data.push(`size=${sizeBytes}`);
    }
    const mode = pick('mode');
    if (mode !== undefined) data.push(`mode=${modeOption(mode, 'driverOpts.mode').toString(8).padStart(4, '0')}`);
    const uid = pick('uid');
    if (uid !== undefined) data.push(`uid=${idOption(uid, 'driverOpts.uid')}`);
    const gid = pick('gid');
    if (gid !== undefined) data.push(`gid=${idOption(gid, 'driverOpts.gid')}`);
    if (fromO.nr_inodes !== undefined) {
      if (!/^\d+[kmg]?$/i.test(fromO.nr_inodes)) throw new ValidationError('driverOpts.o', `nr_inodes must be a number, got "${fromO.nr_inodes}"`);
      data.push(`nr_inodes=${fromO.nr_inodes}`);
    }
    return { backend: { kind: 'tmpfs', data: data.join(','), ...(sizeBytes !== undefined ? { sizeBytes } : {}) }, options };
  }
  for (const key of ['mode', 'uid', 'gid', 'o', 'device'] as const) {
    if (opts[key] !== undefined) throw new ValidationError(`driverOpts.${key}`, 'is only valid with type: "tmpfs"');
  }
  if (opts.size === undefined) return { backend: { kind: 'directory' }, options };
  const sizeBytes = parseBytes(opts.size, 'driverOpts.size');
  if (sizeBytes < MIN_LOOP_SIZE) throw new ValidationError('driverOpts.size', `must be at least 1m for a size-limited volume (ext4 needs room for its metadata), got ${sizeBytes} bytes`);
  const support = sizeSupport();
  if (support.backend === null) {
    throw new UnsupportedError(
      `driverOpts.size: this host cannot limit a volume's size: project quota: ${support.projectQuota}; loop image: ${support.loop}. ` +
        'Use { type: "tmpfs", size } for a size-limited volume in memory.',
    );
  }
  return { backend: { kind: 'loop', image: 'disk.img', fstype: 'ext4', sizeBytes }, options };
}

/**
 * Probes how a size limit can be enforced for volumes under `dir`: project quota on the file
 * system (xfs `pquota`/`prjquota`, ext4 `prjquota`), else a loop-mounted ext4 image.
 */
export function probeSizeLimitSupport(dir: string, table: MountInfo[] = readMountInfo()): SizeLimitSupport {
  const fs = mountHolding(dir, table);
  const opts = `,${fs?.superOptions ?? ''},`;
  let projectQuota: string;
  if (fs && (fs.fstype === 'xfs' || fs.fstype === 'ext4') && /,(prjquota|pquota|pqnoenforce),/.test(opts)) {
    // Driving it needs FS_IOC_FSSETXATTR (project id + inherit flag) and quotactl(Q_SETQUOTA):
    // syscalls that belong in the native core, which does not offer them yet.
    projectQuota = `${fs.fstype} at ${fs.mountPoint} has project quota enabled, but berth has no native project-quota operations yet`;
  } else {
    projectQuota = fs ? `${fs.fstype} at ${fs.mountPoint} is mounted without project quota (prjquota)` : `no mount found for ${dir}`;
  }
  const missing: string[] = [];
  if (!existsSync('/dev/loop-control')) missing.push('/dev/loop-control (the loop driver)');
  if (!findTool('mkfs.ext4')) missing.push('mkfs.ext4 (e2fsprogs)');
  if (!findTool('mount')) missing.push('mount (util-linux)');
  const loop = missing.length === 0 ? 'available' : `missing ${missing.join(', ')}`;
  return { backend: missing.length === 0 ? 'loop' : null, projectQuota, loop };
}

/** Creates `_data` (and whatever backs it) inside a volume directory that is being built. */
export async function setupBackend(backend: VolumeBackend, volumeDir: string): Promise<void> {
  const data = join(volumeDir, '_data');
  await mkdir(data, { mode: 0o755 });
  if (backend.kind === 'tmpfs') {
    await mountTmpfs(data, backend.data);
  } else if (backend.kind === 'loop') {
    const image = join(volumeDir, backend.image);
    const fh = await open(image, 'wx', 0o600);
    try {
      // Sparse: the image takes disk space only as the volume fills.
      await fh.truncate(backend.sizeBytes);
    } finally {
      await fh.close();
    }
    await makeExt4(image);
    await mountLoopImage(image, data);
    // A fresh volume is empty, as Docker's: copy-up only fills an empty one.
    await rmdir(join(data, 'lost+found')).catch(() => undefined);
  }
}

/** Whether the backend's mount is on `_data` now. Always true for a directory. */
export function backendMounted(backend: VolumeBackend, volumeDir: string): boolean {
  if (backend.kind === 'directory') return true;
  return mountAt(join(volumeDir, '_data')) !== undefined;
}

/**
 * Mounts the backend again if it is not there (after a reboot, or an unmount by hand). A tmpfs
 * comes back empty; a loop image with its data. Returns whether it had to mount.
 */
export async function ensureBackendMounted(backend: VolumeBackend, volumeDir: string): Promise<boolean> {
  if (backendMounted(backend, volumeDir)) return false;
  const data = join(volumeDir, '_data');
  await mkdir(data, { recursive: true, mode: 0o755 });
  if (backend.kind === 'tmpfs') await mountTmpfs(data, backend.data);
  else if (backend.kind === 'loop') await mountLoopImage(join(volumeDir, backend.image), data);
  return true;
}

/**
 * Unmounts whatever is mounted on `_data` (all stacked mounts). `lazy` detaches a busy mount;
 * containers keep their own clone of it until they exit either way.
 */
export async function teardownBackend(volumeDir: string, options: { lazy?: boolean } = {}): Promise<void> {
  const data = join(volumeDir, '_data');
  for (let i = 0; i < 16 && mountAt(data) !== undefined; i++) await unmount(data, options);
}
