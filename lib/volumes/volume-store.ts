/**
 * The volumes' part of the state directory:
 *
 *   volumes/<name>/meta.json    name, labels, options, backend, users (rewritten atomically)
 *   volumes/<name>/_data/       the data (a directory, or the mount point of a tmpfs / loop image)
 *   volumes/<name>/disk.img     the ext4 image of a size-limited volume
 *   locks/volume-<name>.lock    flock(2); every change to a volume holds it
 *
 * A volume appears complete or not at all: it is built (backend mounted, meta written) as
 * `volumes/.new-<name>-<pid>-<rand>` and renamed into place; it is removed by unmounting its
 * backend, renaming it to `.trash-<name>-<pid>-<rand>` and deleting that. The pid in those
 * names lets {@link VolumeStore.reconcile} clean up after a process that died half-way.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { closeSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, NotFoundError, ValidationError, isSystemError } from '../errors.js';
import { destroySubvolume, subvolumesBelow } from '../host/btrfs-subvolumes.js';
import { filesystemTypeOf } from '../host/filesystem.js';
import { fsOps } from '../image/fs-ops.js';
import { fromNativeError } from '../native.js';
import { readJson, syncDir, writeJsonAtomic } from '../state/atomic-file.js';
import { LockDir, type LockOptions } from '../state/lock.js';
import { isAlive, selfIdentity, type ProcessIdentity } from '../state/process-identity.js';
import { copyUp, type CopyUpSource } from './copy-up.js';
import { mountAt } from './host-mount.js';
import { ensureBackendMounted, planBackend, probeSizeLimitSupport, setupBackend, teardownBackend, type VolumeBackend, type VolumeDriverOpts } from './volume-backend.js';
import { ANONYMOUS_LABEL, anonymousVolumeName, checkVolumeName, isVolumeName } from './volume-name.js';
import { isStaleUser, sameUser, type VolumeUser, type VolumeUserKind } from './volume-users.js';

/** `meta.json`. */
export interface VolumeMeta {
  version: 1;
  name: string;
  /** RFC 3339. */
  createdAt: string;
  labels: Record<string, string>;
  driver: 'local';
  /** The driver options as given (Docker's `Options`), values as strings. */
  options: Record<string, string>;
  backend: VolumeBackend;
  /** Created for a mount without a source; removed with its container. */
  anonymous: boolean;
  users: VolumeUser[];
  /** Set while a copy-up runs: a dead owner's half copy is wiped and done again. */
  copyUp?: { owner: ProcessIdentity; target: string };
}

export interface CreateVolumeRequest {
  name?: string;
  labels?: Record<string, string>;
  driverOpts?: VolumeDriverOpts;
  /** An anonymous volume (no name given by a mount): gets Docker's anonymous label. */
  anonymous?: boolean;
}

export interface AttachRequest {
  /** Create the volume when it does not exist (named volumes are created on first use). */
  create?: CreateVolumeRequest;
  /** Copy the image's files at `target` into the volume if it is empty. */
  copyUp?: { source: CopyUpSource; target: string };
  target: string;
  signal?: AbortSignal;
}

/** What {@link VolumeStore.reconcile} did. */
export interface ReconcileReport {
  /** Leftover `.new-*` / `.trash-*` directories of dead processes, removed. */
  cleaned: string[];
  /** tmpfs / loop volumes whose backend was mounted again. */
  remounted: string[];
  failed: Array<{ entry: string; error: unknown }>;
}

const TEMP_RE = /^\.(new|trash)-(.+)-(\d+)-[0-9a-f]+$/;

function checkLabels(labels: unknown, option = 'labels'): Record<string, string> {
  if (labels === undefined) return {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw new ValidationError(option, 'must be an object of strings');
  for (const [k, v] of Object.entries(labels)) {
    if (k === '') throw new ValidationError(option, 'label names must not be empty');
    if (typeof v !== 'string') throw new ValidationError(`${option}.${k}`, 'must be a string');
  }
  return { ...(labels as Record<string, string>) };
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function describeUsers(users: VolumeUser[]): string {
  return users.map((u) => `${u.kind} ${u.id.slice(0, 12)} (pid ${u.owner.pid})`).join(', ');
}

export class VolumeStore {
  readonly root: string;
  readonly dir: string;
  readonly locks: LockDir;

  constructor(root: string) {
    this.root = root;
    this.dir = join(root, 'volumes');
    // A copy-up of a large image directory holds a volume's lock: hence the long timeout.
    this.locks = new LockDir(root, { prefix: 'volume-', timeoutMs: 120_000, describe: (name) => `the lock of volume ${name}` });
  }

  volumeDir(name: string): string {
    return join(this.dir, name);
  }
  dataDir(name: string): string {
    return join(this.dir, name, '_data');
  }
  metaPath(name: string): string {
    return join(this.dir, name, 'meta.json');
  }

  async init(): Promise<void> {
    // 0700, and each volume's dir too: `_data` holds whatever containers wrote, setuid-root
    // files included, and volume names are easy to guess, so no other host user may traverse
    // to it (CVE-2021-41091 class). The state dir is 0700 as well (lib/state/state-dir.ts);
    // this holds even if that one is loosened. A dir made 0701 by an older berth is tightened.
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
  }

  read(name: string): Promise<VolumeMeta | undefined> {
    if (!isVolumeName(name)) return Promise.resolve(undefined);
    return readJson<VolumeMeta>(this.metaPath(name));
  }

  /** Names of every complete volume. */
  async names(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return entries.filter(isVolumeName).sort();
  }

  async list(): Promise<VolumeMeta[]> {
    const out: VolumeMeta[] = [];
    for (const name of await this.names()) {
      const meta = await this.read(name);
      if (meta) out.push(meta);
    }
    return out;
  }

  /** Users that still hold the volume (stale records are ignored, and dropped at the next write). */
  liveUsers(meta: VolumeMeta): VolumeUser[] {
    return meta.users.filter((u) => !isStaleUser(u, this.root));
  }

  private write(meta: VolumeMeta): Promise<void> {
    return writeJsonAtomic(this.metaPath(meta.name), meta);
  }

  private withLock<T>(name: string, fn: () => Promise<T>, options?: Omit<LockOptions, 'mode'>): Promise<T> {
    return this.locks.with(name, fn, options);
  }

  /** Validates a create request; the backend is decided here (and probed only when needed). */
  prepare(req: CreateVolumeRequest = {}): { name: string; labels: Record<string, string>; backend: VolumeBackend; options: Record<string, string>; anonymous: boolean } {
    if (typeof req !== 'object' || req === null) throw new ValidationError('options', 'must be an object');
    for (const key of Object.keys(req)) {
      if (!['name', 'labels', 'driverOpts', 'anonymous', 'driver'].includes(key)) throw new ValidationError(key, 'unknown option: volumes.create() takes name, labels, driverOpts');
    }
    const driver = (req as { driver?: unknown }).driver;
    if (driver !== undefined && driver !== 'local') throw new ValidationError('driver', `only the "local" driver exists, got ${JSON.stringify(driver)}`);
    // Docker: a volume created without a name gets a random one but is not anonymous; only
    // a mount without a source makes an anonymous volume (the kind prune() removes by default).
    const anonymous = req.anonymous === true;
    const name = req.name === undefined ? anonymousVolumeName() : checkVolumeName(req.name);
    const labels = checkLabels(req.labels);
    if (anonymous) labels[ANONYMOUS_LABEL] ??= '';
    const { backend, options } = planBackend(req.driverOpts, () => probeSizeLimitSupport(this.dir));
    return { name, labels, backend, options, anonymous };
  }

  /**
   * Creates a volume, or returns the existing one of that name when the request does not
   * contradict it (Docker's rule: creating an existing volume reuses it).
   */
  async create(req: CreateVolumeRequest = {}): Promise<{ meta: VolumeMeta; created: boolean }> {
    const plan = this.prepare(req);
    await this.init();
    return this.withLock(plan.name, () => this.createLocked(plan, req));
  }

  private async createLocked(plan: ReturnType<VolumeStore['prepare']>, req: CreateVolumeRequest): Promise<{ meta: VolumeMeta; created: boolean }> {
    const existing = await this.read(plan.name);
    if (existing) {
      if (req.driverOpts !== undefined && !sameRecord(existing.options, plan.options)) {
        throw new ConflictError(`volume ${plan.name} already exists with different driver options (${JSON.stringify(existing.options)})`);
      }
      if (req.labels !== undefined && !sameRecord(existing.labels, plan.labels)) {
        throw new ConflictError(`volume ${plan.name} already exists with different labels (${JSON.stringify(existing.labels)})`);
      }
      return { meta: existing, created: false };
    }
    const meta: VolumeMeta = {
      version: 1,
      name: plan.name,
      createdAt: new Date().toISOString(),
      labels: plan.labels,
      driver: 'local',
      options: plan.options,
      backend: plan.backend,
      anonymous: plan.anonymous,
      users: [],
    };
    const staging = join(this.dir, `.new-${plan.name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(staging, { mode: 0o700 });
    try {
      await setupBackend(plan.backend, staging);
      await writeJsonAtomic(join(staging, 'meta.json'), meta);
      await rename(staging, this.volumeDir(plan.name));
    } catch (error) {
      await this.discardDir(staging, { lazy: true }).catch(() => undefined);
      throw error;
    }
    await syncDir(this.dir);
    return { meta, created: true };
  }

  /** Unmounts a volume directory's backend and deletes the directory without following links. */
  private async discardDir(dir: string, options: { lazy?: boolean } = {}): Promise<void> {
    await teardownBackend(dir, options);
    if (mountAt(join(dir, '_data')) !== undefined) {
      throw new ConflictError(`${join(dir, '_data')} is still mounted: unmount it before removing the volume`, { path: join(dir, '_data') });
    }
    const name = dir.slice(this.dir.length + 1);
    const remove = (): void => {
      const fs = fsOps();
      const rootFd = fs.fsOpenRoot(this.dir);
      try {
        fs.fsRemoveAt(rootFd, name);
      } catch (error) {
        if (isSystemError(error)) throw fromNativeError(error, { context: `removing volume directory ${dir}`, path: dir });
        throw error;
      } finally {
        closeSync(rootFd);
      }
    };
    try {
      remove();
    } catch (error) {
      // On btrfs a container can make subvolumes in its volume, read-only ones too, with no
      // capability: unlink fails in them (EROFS) and rmdir on them. Destroyed, then removed.
      if (filesystemTypeOf(this.dir) !== 'btrfs') throw error;
      for (const nested of await subvolumesBelow(dir)) await destroySubvolume(nested);
      remove();
    }
  }

  /**
   * Removes a volume. Refused with a ConflictError while a live user holds it, `force` or not:
   * `force` only ignores a missing volume and detaches a busy backend mount lazily.
   * @returns the removed volume's metadata, or undefined when `force` found none
   */
  async remove(name: string, options: { force?: boolean } = {}): Promise<VolumeMeta | undefined> {
    checkVolumeName(name);
    return this.withLock(name, async () => {
      const meta = await this.read(name);
      if (!meta) {
        if (options.force) return undefined;
        throw new NotFoundError(`no such volume: ${name}`);
      }
      await this.removeLocked(meta, options);
      return meta;
    });
  }

  private async removeLocked(meta: VolumeMeta, options: { force?: boolean }): Promise<void> {
    const live = this.liveUsers(meta);
    if (live.length > 0) {
      throw new ConflictError(`volume ${meta.name} is in use by ${describeUsers(live)}: stop and remove ${live.length === 1 ? 'it' : 'them'} first`);
    }
    try {
      await teardownBackend(this.volumeDir(meta.name), { lazy: options.force === true });
    } catch (error) {
      throw new ConflictError(`volume ${meta.name}: its ${meta.backend.kind} could not be unmounted (busy?); remove({ force: true }) detaches it lazily`, { cause: error });
    }
    const trash = join(this.dir, `.trash-${meta.name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await rename(this.volumeDir(meta.name), trash);
    await syncDir(this.dir);
    await this.discardDir(trash, { lazy: true });
    if (meta.anonymous) this.locks.discard(meta.name);
  }

  /**
   * Records `user` as a user of the volume (creating it first if asked), makes sure its backend
   * is mounted, and performs copy-up into an empty volume.
   */
  async attach(name: string, user: { kind: VolumeUserKind; id: string }, req: AttachRequest): Promise<{ meta: VolumeMeta; created: boolean; copied: boolean }> {
    await this.init();
    return this.withLock(
      name,
      async () => {
        let meta = await this.read(name);
        let created = false;
        if (!meta) {
          if (!req.create) throw new NotFoundError(`no such volume: ${name}`);
          ({ meta, created } = await this.createLocked(this.prepare({ ...req.create, name }), req.create));
        }
        const dir = this.volumeDir(name);
        await ensureBackendMounted(meta.backend, dir);
        meta.users = this.liveUsers(meta);
        if (meta.copyUp && !isAlive(meta.copyUp.owner) && meta.users.length === 0) {
          // A copy-up died half-way: the volume holds part of the image's files. Start again.
          await this.wipeData(name);
          delete meta.copyUp;
        }
        let copied = false;
        if (req.copyUp && (await this.isEmpty(name))) {
          meta.copyUp = { owner: selfIdentity(), target: req.copyUp.target };
          await this.write(meta);
          try {
            copied = await copyUp(req.copyUp.source, req.copyUp.target, this.dataDir(name), req.signal ? { signal: req.signal } : {});
          } catch (error) {
            if (meta.users.length === 0) await this.wipeData(name).catch(() => undefined);
            delete meta.copyUp;
            await this.write(meta).catch(() => undefined);
            throw error;
          }
          delete meta.copyUp;
        }
        const mine = meta.users.find((u) => sameUser(u, { ...user }));
        if (mine) {
          if (!mine.targets.includes(req.target)) mine.targets.push(req.target);
        } else {
          meta.users.push({ kind: user.kind, id: user.id, owner: selfIdentity(), since: new Date().toISOString(), targets: [req.target] });
        }
        await this.write(meta);
        return { meta, created, copied };
      },
      { signal: req.signal },
    );
  }

  /**
   * Drops `user` from the volume's users. With `removeAnonymous`, an anonymous volume nobody
   * else uses is removed. Returns the metadata after the change (undefined once removed or gone).
   */
  async detach(name: string, user: { kind: VolumeUserKind; id: string }, options: { removeAnonymous?: boolean } = {}): Promise<{ meta: VolumeMeta | undefined; removed: boolean }> {
    return this.withLock(name, async () => {
      const meta = await this.read(name);
      if (!meta) return { meta: undefined, removed: false };
      meta.users = meta.users.filter((u) => !sameUser(u, user) && !isStaleUser(u, this.root));
      if (options.removeAnonymous && meta.anonymous && meta.users.length === 0) {
        await this.removeLocked(meta, {});
        return { meta: undefined, removed: true };
      }
      await this.write(meta);
      return { meta, removed: false };
    });
  }

  /** Makes sure the volume exists and its backend is mounted (for a container's later start). */
  async ensureMounted(name: string): Promise<VolumeMeta> {
    return this.withLock(name, async () => {
      const meta = await this.read(name);
      if (!meta) throw new NotFoundError(`no such volume: ${name}`);
      await ensureBackendMounted(meta.backend, this.volumeDir(name));
      return meta;
    });
  }

  async isEmpty(name: string): Promise<boolean> {
    return (await readdir(this.dataDir(name))).length === 0;
  }

  /** Deletes everything inside `_data` (not `_data` itself: it may be a mount point). */
  private async wipeData(name: string): Promise<void> {
    const fs = fsOps();
    const fd = fs.fsOpenRoot(this.dataDir(name));
    try {
      for (const entry of fs.fsReadDirAt(fd, '')) fs.fsRemoveAt(fd, entry);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Bytes of regular-file content in the volume (hard links counted once), walked with the
   * confined operations so that a symlink swapped in by a container is never followed.
   */
  async usage(name: string): Promise<number> {
    const fs = fsOps();
    let fd: number;
    try {
      fd = fs.fsOpenRoot(this.dataDir(name));
    } catch {
      return -1;
    }
    const seen = new Set<string>();
    let total = 0;
    try {
      const walk = (dir: string, depth: number) => {
        if (depth > 256) return;
        let names: string[];
        try {
          names = fs.fsReadDirAt(fd, dir);
        } catch {
          return;
        }
        for (const n of names) {
          const rel = dir === '' ? n : `${dir}/${n}`;
          const st = fs.fsLstatAt(fd, rel);
          if (!st) continue;
          const type = st.mode & 0o170000;
          if (type === 0o040000) walk(rel, depth + 1);
          else if (type === 0o100000) {
            const key = `${st.dev}:${st.ino}`;
            if (st.nlink > 1) {
              if (seen.has(key)) continue;
              seen.add(key);
            }
            total += st.size;
          }
        }
      };
      walk('', 0);
    } finally {
      closeSync(fd);
    }
    return total;
  }

  /**
   * Cleans up after processes that died: half-built (`.new-*`) and half-removed (`.trash-*`)
   * volume directories, and temp files of interrupted metadata writes. Then mounts the backend
   * of every tmpfs or loop volume that lost it (after a reboot). Safe to run at any time, in any
   * process: it only touches what belongs to dead processes, and remounts under each volume's lock.
   */
  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { cleaned: [], remounted: [], failed: [] };
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return report;
      throw error;
    }
    // One broken volume (a tool missing, a corrupt image) must not make the others unusable.
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (error) {
        report.failed.push({ entry: what, error });
      }
    };
    for (const entry of entries) {
      const m = TEMP_RE.exec(entry);
      if (!m) continue;
      const pid = Number(m[3]);
      if (pid === process.pid || isPidAlive(pid)) continue;
      await attempt(entry, async () => {
        await this.discardDir(join(this.dir, entry), { lazy: true });
        report.cleaned.push(entry);
      });
    }
    for (const name of entries.filter(isVolumeName)) {
      await attempt(name, async () => {
        for (const f of await readdir(this.volumeDir(name)).catch(() => [] as string[])) {
          const t = /^\.meta\.json\.tmp-(\d+)-/.exec(f);
          if (t && !isPidAlive(Number(t[1]))) await rm(join(this.volumeDir(name), f), { force: true });
        }
        const meta = await this.read(name);
        if (!meta || meta.backend.kind === 'directory') return;
        await this.withLock(name, async () => {
          const now = await this.read(name);
          if (now && (await ensureBackendMounted(now.backend, this.volumeDir(name)))) report.remounted.push(name);
        });
      });
    }
    return report;
  }
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
