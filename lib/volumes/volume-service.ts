/**
 * `rt.volumes`: Docker's volume commands over one state directory, shared safely by every
 * process that opens it (see `volume-store.ts` for the layout and the locking).
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import { ConflictError, NotFoundError, ValidationError, isBerthError } from '../errors.js';
import { backendMounted, type VolumeDriverOpts } from './volume-backend.js';
import { compileVolumeFilters, type VolumeFilters } from './volume-filters.js';
import { ANONYMOUS_LABEL, checkVolumeName } from './volume-name.js';
import { VolumeStore, type AttachRequest, type ReconcileReport, type VolumeMeta } from './volume-store.js';
import { Volume, type VolumeEvents, type VolumeInspect, type VolumeUserRef } from './volume.js';

/** Options of {@link VolumeService.create}. */
export interface CreateVolumeOptions {
  /** Docker's volume name rule. Default: 64 random hex digits. */
  name?: string;
  labels?: Record<string, string>;
  /** `'local'`, the only driver. */
  driver?: 'local';
  /** `{ type: 'tmpfs', size? }` for a tmpfs-backed volume; `{ size }` for a size-limited one. See {@link VolumeDriverOpts}. */
  driverOpts?: VolumeDriverOpts;
}

/** What {@link VolumeService.prune} removed. */
export interface VolumePruneResult {
  VolumesDeleted: string[];
  /** Bytes of file content the removed volumes held. */
  SpaceReclaimed: number;
}

/** Events of `rt.volumes`: those of every volume of the runtime, as this process sees them. */
export type VolumeServiceEvents = VolumeEvents;

function nameOf(v: string | Volume, option = 'name'): string {
  if (v instanceof Volume) return v.name;
  return checkVolumeName(v, option);
}

export class VolumeService extends EventEmitter<VolumeServiceEvents> {
  /** The state directory. */
  readonly root: string;
  /** @internal */
  readonly store: VolumeStore;
  readonly #cache = new Map<string, Volume>();
  #ready: Promise<ReconcileReport> | undefined;

  constructor(root: string) {
    super();
    this.root = root;
    this.store = new VolumeStore(root);
  }

  /**
   * Once per runtime: removes what crashed processes left half-made and mounts the tmpfs or loop
   * image of every volume that lost it (after a reboot). Every operation waits for it.
   */
  ready(): Promise<ReconcileReport> {
    this.#ready ??= this.store
      .init()
      .then(() => this.store.reconcile())
      .catch((error: unknown) => {
        // Not cached: a state dir that could not be read now (EACCES, a missing addon) may be fixed.
        this.#ready = undefined;
        throw error;
      });
    return this.#ready;
  }

  /** The one Volume object of this runtime for `meta` (a new one if the name was re-created). */
  #volume(meta: VolumeMeta): Volume {
    const cached = this.#cache.get(meta.name);
    if (cached && cached.createdAt.getTime() === Date.parse(meta.createdAt)) return cached;
    const v = new Volume(
      { inspect: (name, o) => this.inspect(name, o), remove: (name, o) => this.remove(name, o) },
      {
        name: meta.name,
        mountpoint: this.store.dataDir(meta.name),
        createdAt: meta.createdAt,
        labels: meta.labels,
        options: meta.options,
        anonymous: meta.anonymous,
        backend: meta.backend.kind,
      },
    );
    this.#cache.set(meta.name, v);
    return v;
  }

  #emitCreate(v: Volume): void {
    v.emit('create', v);
    this.emit('create', v);
  }

  #emitDestroy(v: Volume): void {
    if (this.#cache.get(v.name) === v) this.#cache.delete(v.name);
    v.emit('destroy', v);
    this.emit('destroy', v);
  }

  /**
   * Creates a volume (Docker's `volume create`). A name that exists already returns that
   * volume, unless the options contradict it (ConflictError).
   * @throws ValidationError for a bad name or option; UnsupportedError when a size limit cannot be enforced here.
   */
  async create(options: CreateVolumeOptions = {}): Promise<Volume> {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
    if ('anonymous' in options) throw new ValidationError('anonymous', 'unknown option: volumes.create() takes name, labels, driver, driverOpts');
    await this.ready();
    const { meta, created } = await this.store.create(options);
    const v = this.#volume(meta);
    if (created) this.#emitCreate(v);
    return v;
  }

  /** @throws NotFoundError when there is no such volume. */
  async get(name: string): Promise<Volume> {
    checkVolumeName(name);
    await this.ready();
    const meta = await this.store.read(name);
    if (!meta) throw new NotFoundError(`no such volume: ${name}`);
    return this.#volume(meta);
  }

  /** Volumes, sorted by name, filtered with Docker's `name`, `label`, `dangling`, `driver`. */
  async list(options: { filters?: VolumeFilters } = {}): Promise<Volume[]> {
    const f = compileVolumeFilters(options.filters, ['name', 'label', 'dangling', 'driver']);
    await this.ready();
    const out: Volume[] = [];
    for (const meta of await this.store.list()) {
      const inUse = f.needsUsage ? this.store.liveUsers(meta).length > 0 : false;
      if (f.matches({ name: meta.name, driver: meta.driver, labels: meta.labels, inUse })) out.push(this.#volume(meta));
    }
    return out;
  }

  /** Docker's `volume inspect`. */
  async inspect(name: string | Volume, options: { size?: boolean } = {}): Promise<VolumeInspect> {
    const n = nameOf(name);
    await this.ready();
    const meta = await this.store.read(n);
    if (!meta) throw new NotFoundError(`no such volume: ${n}`);
    const live = this.store.liveUsers(meta);
    const b = meta.backend;
    const limit = b.kind === 'directory' ? undefined : b.sizeBytes;
    return {
      Name: meta.name,
      Driver: 'local',
      Mountpoint: this.store.dataDir(meta.name),
      CreatedAt: meta.createdAt,
      Labels: { ...meta.labels },
      Scope: 'local',
      Options: Object.keys(meta.options).length > 0 ? { ...meta.options } : null,
      Status: { Backend: b.kind, ...(limit !== undefined ? { SizeLimit: limit } : {}), Mounted: backendMounted(b, this.store.volumeDir(meta.name)) },
      UsageData: { Size: options.size ? await this.store.usage(meta.name) : -1, RefCount: live.length },
      InUseBy: live.map((u) => ({ Kind: u.kind, Id: u.id, Pid: u.owner.pid, Since: u.since, Targets: [...u.targets] })),
    };
  }

  /**
   * Removes a volume and its data (Docker's `volume rm`). Emits `destroy`.
   * @throws ConflictError while a run or container uses it — also with `force`, which only
   *   ignores a missing volume and detaches a busy tmpfs/loop mount lazily. NotFoundError when
   *   there is no such volume (unless `force`).
   */
  async remove(name: string | Volume, options: { force?: boolean } = {}): Promise<void> {
    const n = nameOf(name);
    await this.ready();
    const meta = await this.store.remove(n, options);
    if (meta) this.#emitDestroy(this.#volume(meta));
  }

  /**
   * Removes unused volumes (Docker's `volume prune`): anonymous ones only, unless `all` (as
   * Docker since 23.0). Filters: `label`, `label!`.
   */
  async prune(options: { all?: boolean; filters?: Pick<VolumeFilters, 'label' | 'label!'> } = {}): Promise<VolumePruneResult> {
    const f = compileVolumeFilters(options.filters, ['label', 'label!']);
    await this.ready();
    const result: VolumePruneResult = { VolumesDeleted: [], SpaceReclaimed: 0 };
    for (const meta of await this.store.list()) {
      const anonymous = meta.anonymous || Object.prototype.hasOwnProperty.call(meta.labels, ANONYMOUS_LABEL);
      if (!options.all && !anonymous) continue;
      if (!f.matches({ name: meta.name, driver: meta.driver, labels: meta.labels, inUse: false })) continue;
      if (this.store.liveUsers(meta).length > 0) continue;
      const size = await this.store.usage(meta.name);
      try {
        const removed = await this.store.remove(meta.name);
        if (removed) this.#emitDestroy(this.#volume(removed));
      } catch (error) {
        // Someone mounted or removed it since we looked: not ours to prune.
        if (isBerthError(error) && (error instanceof ConflictError || error instanceof NotFoundError)) continue;
        throw error;
      }
      result.VolumesDeleted.push(meta.name);
      if (size > 0) result.SpaceReclaimed += size;
    }
    return result;
  }

  /**
   * @internal For the mount resolver: records `user` on the volume (creating it on first use
   * when `req.create` is set), copy-up included. Emits `create` and `mount`.
   */
  async attach(name: string, user: VolumeUserRef, req: AttachRequest & { readonly?: boolean }): Promise<{ volume: Volume; created: boolean; copied: boolean }> {
    await this.ready();
    const { meta, created, copied } = await this.store.attach(name, user, req);
    const v = this.#volume(meta);
    if (created) this.#emitCreate(v);
    const event = { volume: v, user: { ...user }, target: req.target, readonly: req.readonly === true };
    v.emit('mount', event);
    this.emit('mount', event);
    return { volume: v, created, copied };
  }

  /** @internal For the mount resolver: drops `user`; removes an unused anonymous volume when asked. Emits `unmount` (and `destroy`). */
  async detach(name: string, user: VolumeUserRef, info: { target: string; readonly: boolean; removeAnonymous?: boolean }): Promise<void> {
    await this.ready();
    const before = await this.store.read(name);
    const { removed } = await this.store.detach(name, user, { removeAnonymous: info.removeAnonymous === true });
    if (!before) return;
    const v = this.#volume(before);
    const event = { volume: v, user: { ...user }, target: info.target, readonly: info.readonly };
    v.emit('unmount', event);
    this.emit('unmount', event);
    if (removed) this.#emitDestroy(v);
  }
}
