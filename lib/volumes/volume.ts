/**
 * The public volume object: one named volume in a runtime's state directory, Docker's fields,
 * typed events.
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type { VolumeBackend } from './volume-backend.js';
import type { VolumeUserKind } from './volume-users.js';

/** Who mounted or unmounted a volume. */
export interface VolumeUserRef {
  kind: VolumeUserKind;
  /** The run's id (random, per `run()`) or the container's id. */
  id: string;
}

/** The `mount` / `unmount` events. */
export interface VolumeMountEvent {
  volume: Volume;
  user: VolumeUserRef;
  /** Path inside the container. */
  target: string;
  readonly: boolean;
}

/**
 * Events of a {@link Volume} (and of `rt.volumes`, which sees every volume of the runtime).
 * Emitted in the process that performed the operation.
 *
 * - `create`: the volume was created (by `create()` or on first use by a mount).
 * - `mount`: a run or container attached it (after copy-up, before its process starts).
 * - `unmount`: that run or container let it go (the run ended, the container was removed).
 * - `destroy`: the volume was removed, its data deleted.
 */
export interface VolumeEvents {
  create: [volume: Volume];
  mount: [event: VolumeMountEvent];
  unmount: [event: VolumeMountEvent];
  destroy: [volume: Volume];
}

/** Docker's `volume inspect`, plus berth's `Status` and `InUseBy`. */
export interface VolumeInspect {
  Name: string;
  Driver: 'local';
  /** The host directory holding the data (`<root>/volumes/<name>/_data`). */
  Mountpoint: string;
  /** RFC 3339. */
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  /** The driver options as given at create time; null when none. */
  Options: Record<string, string> | null;
  Status: {
    /** What holds the data: a directory, a host tmpfs, or a loop-mounted ext4 image. */
    Backend: VolumeBackend['kind'];
    /** The size limit in bytes, when there is one. */
    SizeLimit?: number;
    /** Whether the tmpfs / loop mount is on `Mountpoint` now (always true for a directory). */
    Mounted: boolean;
  };
  /** Docker's `UsageData`: bytes of file content (-1 unless asked with `{ size: true }`) and live users. */
  UsageData: { Size: number; RefCount: number };
  /** The runs and containers using the volume, across every process sharing the state directory. */
  InUseBy: Array<{ Kind: VolumeUserKind; Id: string; Pid: number; Since: string; Targets: string[] }>;
}

/** The subset of the service a {@link Volume} calls back into. */
export interface VolumeBackendApi {
  inspect(name: string, options?: { size?: boolean }): Promise<VolumeInspect>;
  remove(name: string, options?: { force?: boolean }): Promise<void>;
}

/** What a Volume is made from. */
export interface VolumeSnapshot {
  name: string;
  mountpoint: string;
  createdAt: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  anonymous: boolean;
  backend: VolumeBackend['kind'];
}

/**
 * A volume. Obtained from `rt.volumes.create()`, `get()` and `list()`; the same object for the
 * same volume within one runtime, so listeners see every event this process causes.
 *
 * ```ts
 * const v = await rt.volumes.create({ name: 'data', labels: { app: 'web' } });
 * v.on('mount', (e) => console.log(`${e.user.kind} ${e.user.id} mounted it at ${e.target}`));
 * await rt.run({ rootfs }, ['sh', '-c', 'echo hi > /data/f'], { mounts: [{ type: 'volume', source: v, target: '/data' }] });
 * (await v.inspect()).Mountpoint; // '/var/lib/berth/volumes/data/_data'
 * ```
 */
export class Volume extends EventEmitter<VolumeEvents> {
  readonly name: string;
  /** The host directory holding the data. */
  readonly mountpoint: string;
  readonly createdAt: Date;
  readonly labels: Readonly<Record<string, string>>;
  readonly driver = 'local' as const;
  readonly options: Readonly<Record<string, string>>;
  /** Created for a mount without a source (removed with its container, and by `prune()`). */
  readonly anonymous: boolean;
  /** What holds the data: `directory`, `tmpfs` or `loop`. */
  readonly backend: VolumeBackend['kind'];
  readonly #api: VolumeBackendApi;

  /** @internal Volumes are made by the volume service, not by users. */
  constructor(api: VolumeBackendApi, snapshot: VolumeSnapshot) {
    super();
    this.#api = api;
    this.name = snapshot.name;
    this.mountpoint = snapshot.mountpoint;
    this.createdAt = new Date(snapshot.createdAt);
    this.labels = Object.freeze({ ...snapshot.labels });
    this.options = Object.freeze({ ...snapshot.options });
    this.anonymous = snapshot.anonymous;
    this.backend = snapshot.backend;
  }

  /** Docker's `volume inspect`, read fresh. `size: true` walks the data to fill `UsageData.Size`. */
  inspect(options: { size?: boolean } = {}): Promise<VolumeInspect> {
    return this.#api.inspect(this.name, options);
  }

  /**
   * Removes the volume and its data. Emits `destroy`.
   * @throws ConflictError while a run or container uses it (also with `force`); NotFoundError when gone (unless `force`).
   */
  remove(options: { force?: boolean } = {}): Promise<void> {
    return this.#api.remove(this.name, options);
  }
}
