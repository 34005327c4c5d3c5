/**
 * The public image objects: {@link Image} (one image in the local store, Docker's fields,
 * typed events) and {@link PullTask} (the promise `rt.images.pull()` returns, with progress
 * events while it runs).
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type { ImageHistoryItem, ImageInspect, ImageService, PullOptions, RemoveResult } from './image-service.js';
import type { ImageLayerRecord, ImageRecord } from './image-table.js';
import type { ContainerConfig, ImageConfig, Platform } from './manifest.js';
import { ConflictError } from '../errors.js';
import { familiarName, parseReference } from './reference.js';

/** Where one layer of a pull is. `cached`: already in the store, nothing downloaded. */
export type LayerState = 'waiting' | 'downloading' | 'verifying' | 'extracting' | 'done' | 'cached';

/** Progress of one layer of a pull (the `progress` event). */
export interface LayerProgress {
  /** The layer's (compressed) blob digest. */
  layer: string;
  /** Position in the manifest, base layer 0. */
  index: number;
  state: LayerState;
  /** Bytes of this layer's blob downloaded (or found in the store). */
  bytesDone: number;
  bytesTotal: number;
}

/** Progress of a whole pull (the `total` event). */
export interface TotalProgress {
  bytesDone: number;
  bytesTotal: number;
  /** Layers `done` or `cached`. */
  layersDone: number;
  layers: number;
}

/** What `onProgress` receives: one layer's progress and the totals after it. */
export interface PullProgress extends LayerProgress {
  total: TotalProgress;
}

/**
 * Events of an {@link Image} (and, for the first three, of a {@link PullTask}).
 *
 * - `progress`: one layer changed state or downloaded more bytes (byte counts at most 10 times
 *   a second per layer, and always the final one).
 * - `total`: the whole pull's bytes and layers, after every `progress`.
 * - `done`: the pull finished; the pulled image.
 * - `tag` / `untag`: a reference was added to / removed from this image through it.
 * - `remove`: the image was removed through {@link Image.remove}.
 */
export interface ImageEvents {
  progress: [event: LayerProgress];
  total: [event: TotalProgress];
  done: [image: Image];
  tag: [ref: string];
  untag: [ref: string];
  remove: [result: RemoveResult];
}

/** The events a {@link PullTask} emits. */
export type PullEvents = Pick<ImageEvents, 'progress' | 'total' | 'done'>;

/** A layer of an image, base first. */
export interface ImageLayer {
  /** Blob digest as stored (compressed). */
  readonly digest: string;
  /** Blob size in bytes. */
  readonly size: number;
  readonly mediaType: string;
  /** sha256 of the uncompressed tar (`RootFS.DiffIDs`). */
  readonly diffId: string;
  /** OCI chain id: the layer together with everything below it. */
  readonly chainId: string;
}

/** The subset of the service an {@link Image} calls back into. */
type ImageBackend = Pick<ImageService, 'inspect' | 'history' | 'tag' | 'remove' | 'pull'>;

const freeze = <T>(v: T): T => {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) freeze(x);
    Object.freeze(v);
  }
  return v;
};

/**
 * One image in the local store, in Docker's vocabulary. Obtained from `rt.images.pull()`,
 * `get()`, `list()`, `tag()`, `load()` and `import()`; a snapshot of the store when it was
 * made, except `repoTags`, which its own `tag()`/`remove()` keep current.
 *
 * ```ts
 * const img = await rt.images.get('busybox');
 * img.id;          // 'sha256:…' (the config digest, Docker's image ID)
 * img.repoTags;    // ['busybox:latest']
 * img.on('tag', (ref) => console.log('tagged', ref));
 * await img.tag('localhost/mine:1');
 * for (const row of await img.history()) console.log(row.CreatedBy);
 * ```
 */
export class Image extends EventEmitter<ImageEvents> {
  /** The image id: `sha256:` digest of the config (Docker's `Id`). */
  readonly id: string;
  /** The manifest digest (what `name@digest` pins). */
  readonly digest: string;
  /** `name@digest` references, familiar form (`busybox@sha256:…`). Empty for loaded and imported images. */
  readonly repoDigests: readonly string[];
  /** Uncompressed size of all layers in bytes (Docker's `Size`). */
  readonly size: number;
  /** When the image was built (config `created`), if it says. */
  readonly created: Date | undefined;
  /** The runtime defaults (Docker's `Config`: Cmd, Entrypoint, Env, WorkingDir, User, Labels, …). Frozen. */
  readonly config: Readonly<ContainerConfig>;
  /** os / architecture / variant of the image. */
  readonly platform: Readonly<Platform>;
  /** Layers, base first. */
  readonly layers: readonly ImageLayer[];
  #repoTags: string[];
  readonly #backend: ImageBackend;

  /** @internal Images are made by the image service, not by users. */
  constructor(backend: ImageBackend, record: ImageRecord, config: ImageConfig, size: number) {
    super();
    this.#backend = backend;
    this.id = record.id;
    this.digest = record.manifestDigest;
    this.#repoTags = record.repoTags.map(familiar);
    this.repoDigests = Object.freeze(record.repoDigests.map(familiar));
    this.size = size;
    const created = config.created ? new Date(config.created) : undefined;
    this.created = created && !Number.isNaN(created.getTime()) ? created : undefined;
    this.config = freeze(structuredClone(config.config ?? {}));
    this.platform = freeze({ ...record.platform });
    this.layers = freeze(record.layers.map((l: ImageLayerRecord) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: l.diffId, chainId: l.chainId })));
  }

  /** `name:tag` references, familiar form (`busybox:latest`, `127.0.0.1:5000/app:1`). Empty when dangling. */
  get repoTags(): readonly string[] {
    return this.#repoTags;
  }

  /** Docker's `image inspect` of this image, read fresh from the store. */
  inspect(): Promise<ImageInspect> {
    return this.#backend.inspect(this.digest);
  }

  /** Docker's `image history`: one row per history entry, newest first. See {@link ImageService.history}. */
  history(): Promise<ImageHistoryItem[]> {
    return this.#backend.history(this.digest);
  }

  /**
   * Adds a tag, like `docker tag <id> newRef`; `latest` when `newRef` has none. Emits `tag`.
   * @returns this image, its `repoTags` updated
   */
  async tag(newRef: string): Promise<this> {
    const updated = await this.#backend.tag(this.digest, newRef);
    this.#repoTags = [...updated.repoTags];
    this.emit('tag', familiar(newRef));
    return this;
  }

  /**
   * Removes this image from the store, like `docker rmi <id>`: every tag and digest reference,
   * then every blob and layer no other image (or running container) uses.
   * @param options.force needed when the image has more than one tag (default false)
   */
  async remove(options: { force?: boolean } = {}): Promise<RemoveResult> {
    const result = await this.#backend.remove(this.digest, options);
    for (const ref of result.untagged) this.emit('untag', familiar(ref));
    this.#repoTags = [];
    this.emit('remove', result);
    return result;
  }

  /**
   * Pulls this image's first tag (else its first digest reference) again, e.g. to update a
   * moving tag. Events go to the returned task *and* to this image.
   */
  pull(options: PullOptions = {}): PullTask {
    const ref = this.#repoTags[0] ?? this.repoDigests[0];
    if (ref === undefined) return PullTask.rejected(new ConflictError(`image ${this.id} has no tag or digest reference to pull from`));
    const task = this.#backend.pull(ref, options);
    task.on('progress', (e) => this.emit('progress', e));
    task.on('total', (e) => this.emit('total', e));
    task.on('done', (img) => this.emit('done', img));
    return task;
  }

  /** A plain summary (what `JSON.stringify` writes). */
  toJSON(): { id: string; digest: string; repoTags: string[]; repoDigests: string[]; size: number; created: string | undefined; platform: Platform } {
    return {
      id: this.id, digest: this.digest, repoTags: [...this.#repoTags], repoDigests: [...this.repoDigests], size: this.size,
      created: this.created?.toISOString(), platform: { ...this.platform },
    };
  }
}

function familiar(ref: string): string {
  try {
    return familiarName(parseReference(ref));
  } catch {
    return ref;
  }
}

/** Emits a pull event. @internal */
export type PullEmit = <K extends keyof PullEvents>(event: K, ...args: PullEvents[K]) => void;

/**
 * What `rt.images.pull()` returns: a `Promise<Image>` that also emits progress while it runs.
 * Subscribe before awaiting — the listeners are attached synchronously, before the first
 * event can fire:
 *
 * ```ts
 * // as a plain promise
 * const img = await rt.images.pull('127.0.0.1:5000/app:1');
 *
 * // with a callback
 * await rt.images.pull(ref, { onProgress: (p) => console.log(p.index, p.state, p.total.bytesDone) });
 *
 * // with events
 * const img = await rt.images
 *   .pull(ref)
 *   .on('progress', (p) => bars[p.index].update(p.bytesDone, p.bytesTotal, p.state))
 *   .on('total', (t) => console.log(`${t.layersDone}/${t.layers} layers, ${t.bytesDone}/${t.bytesTotal} bytes`))
 *   .on('done', (img) => console.log('pulled', img.id));
 * ```
 *
 * `.then()`/`.catch()`/`.finally()` return ordinary promises. Failures reject the promise (there
 * is no `error` event).
 */
export class PullTask extends Promise<Image> {
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }

  readonly #events = new EventEmitter<PullEvents>();

  /** @internal Use `rt.images.pull()`. */
  constructor(executor: (resolve: (value: Image | PromiseLike<Image>) => void, reject: (reason?: unknown) => void) => void) {
    super(executor);
  }

  /** @internal Starts `work` with an emitter bound to a new task. */
  static start(work: (emit: PullEmit) => Promise<Image>): PullTask {
    let resolve!: (v: Image) => void;
    let reject!: (e: unknown) => void;
    const task = new PullTask((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const events = task.#events as unknown as { emit(event: string, ...args: unknown[]): boolean };
    const emit: PullEmit = (event, ...args) => {
      events.emit(event, ...args);
    };
    // Started from a microtask: listeners attached in the same synchronous run as `pull()` see
    // every event, whatever the work emits before its first await.
    queueMicrotask(() => {
      try {
        work(emit).then(resolve, reject);
      } catch (e) {
        reject(e);
      }
    });
    return task;
  }

  /** @internal A task that has already failed. */
  static rejected(error: unknown): PullTask {
    return PullTask.start(() => Promise.reject(error));
  }

  /** Adds a listener; returns the task so calls chain and the result can still be awaited. */
  on<K extends keyof PullEvents>(event: K, listener: (...args: PullEvents[K]) => void): this {
    this.#events.on(event, listener as never);
    return this;
  }

  /** Adds a listener called at most once. */
  once<K extends keyof PullEvents>(event: K, listener: (...args: PullEvents[K]) => void): this {
    this.#events.once(event, listener as never);
    return this;
  }

  /** Removes a listener added with {@link PullTask.on} or {@link PullTask.once}. */
  off<K extends keyof PullEvents>(event: K, listener: (...args: PullEvents[K]) => void): this {
    this.#events.off(event, listener as never);
    return this;
  }
}
