/**
 * The image service (`rt.images`): pull (in `pull.ts`), the local image table (get,
 * list with Docker's filters, tag, remove and prune with reference counting), inspect and
 * history in Docker's shape, save/load (docker-save + OCI layout archives), import of a rootfs
 * tarball, push, `unpack` of a flattened rootfs, and `rootfsFor`, which gives the container
 * side its overlay lower dirs.
 * @module
 */
import { closeSync, fchmodSync, fstatSync } from 'node:fs';
import type { OwnerNamespace } from './owner-namespace.js';
import { mkdir, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ConflictError, NotFoundError, UnsupportedError, ValidationError } from '../errors.js';
import type { RegistryAuth } from './auth.js';
import type { BuildCachePruneResult, BuildFunction, BuildOptions } from './build-types.js';
import { ContentStore } from './content-store.js';
import { ImageFormatError } from './errors.js';
import { copyMergedLayers } from './flatten-copy.js';
import { fsOps, setTopDir } from './fs-ops.js';
import { loadArchive, resolveSaveTargets, saveArchive } from './image-archive.js';
import {
  danglingFilter, globToRegExp, labelMatches, normaliseFilters, referenceMatches, single,
  type ImageListFilters, type ImagePruneFilters,
} from './image-filters.js';
import { collectOrphans, deleteImage, type Collected, type GcContext } from './image-gc.js';
import { importRootfs, prepareImport, type ImportOptions } from './image-import.js';
import { ImageTable, isIdLike, type ImageRecord, type StoredRecord } from './image-table.js';
import { Image, PullTask, type LayerProgress, type LayerState, type PullProgress, type TotalProgress } from './image.js';
import { readFileChunks, WRITE_THREADS } from './layer-staging.js';
import { layerCompression, MediaType, parseImageConfig, type ContainerConfig, type ImageConfig } from './manifest.js';
import { familiarName, formatReference, parseReference } from './reference.js';
import { pullImage, type PullContext, type PullOptions } from './pull.js';
import { RegistryClient } from './registry-client.js';
import { parseTimePoint } from '../units.js';
import { applyLayer, LayerApplier, maxLayerSizeOption } from './unpack.js';

export { chainIds, type ImageLayerRecord, type ImageRecord } from './image-table.js';
export type { PullOptions } from './pull.js';
export type { ImageListFilters, ImagePruneFilters } from './image-filters.js';
export type { ImportOptions } from './image-import.js';
export type { BuildCachePruneResult, BuildOptions, BuildProgress } from './build-types.js';
export type { LayerProgress, LayerState, PullProgress, TotalProgress };

/** Options of {@link ImageService.unpack}. */
export interface UnpackOptions {
  signal?: AbortSignal;
  /** Create the image's character and block device nodes in the destination. Default false: skipped. */
  devices?: boolean;
  /** Uncompressed bytes one layer may have (`LayerTooLargeError`). Default the runtime's `maxLayerSize` (64 GiB). */
  maxLayerSize?: number;
}

/** Docker's `image inspect` fields. */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created?: string;
  Author?: string;
  Architecture: string;
  Os: string;
  Variant?: string;
  Config: ImageConfig['config'] | null;
  RootFS: { Type: 'layers'; Layers: string[]; DiffIDs: string[] };
  /** Uncompressed size of all layers (bytes of file content), bytes. */
  Size: number;
  /** Compressed size of the manifest's layers, bytes. */
  DownloadSize: number;
  ManifestDigest: string;
  Metadata: { PulledAt: string };
}

/** One row of `docker history`, newest first. */
export interface ImageHistoryItem {
  /** The image id on the top row; `<missing>` below (the intermediate images of a pulled image do not exist locally, as in Docker). */
  Id: string;
  /** Unix seconds; 0 when the config does not say. */
  Created: number;
  /** The build step (`/bin/sh -c …`, `ADD file:… in /`); empty when unknown. */
  CreatedBy: string;
  /** The image's tags on the top row (familiar form), `null` below. */
  Tags: string[] | null;
  /** Bytes of file content the step's layer adds; 0 for steps without a layer. */
  Size: number;
  Comment: string;
  /** Whether the step made no layer (ENV, CMD, …). */
  EmptyLayer: boolean;
}

/** What {@link ImageService.remove} did. */
export interface RemoveResult {
  /** References removed (canonical form). */
  untagged: string[];
  /** The image id, then blobs and layer chain ids deleted because nothing else used them. */
  deleted: string[];
}

/** What {@link ImageService.prune} did, as `docker image prune` reports it. */
export interface PruneResult {
  /** `{ untagged }` for each reference removed, `{ deleted }` for each image id and layer id deleted. */
  imagesDeleted: Array<{ untagged: string } | { deleted: string }>;
  /** Bytes freed: blobs, and the file content of deleted layers. */
  spaceReclaimed: number;
}

/** Options of {@link ImageService.list}. */
export interface ListOptions {
  /** Docker's filters; see {@link ImageListFilters}. Default none (every image). */
  filters?: ImageListFilters | Record<string, string[]>;
}

/** Options of {@link ImageService.prune}. */
export interface PruneOptions {
  /** See {@link ImagePruneFilters}. Default `{ dangling: true }`. */
  filters?: ImagePruneFilters | Record<string, string[]>;
}

export interface ImageServiceOptions {
  /** Path of a Docker `config.json` for credentials (default `~/.docker/config.json`). */
  dockerConfigPath?: string;
  /** Whether a container still uses a layer; such layers (and images whose top layer it is) survive `remove` and `prune`. */
  isLayerInUse?: (chainId: string) => boolean;
  /** Default uncompressed size limit of one layer for pull, load, import and unpack, bytes. Default 64 GiB. */
  maxLayerSize?: number;
  /**
   * Without root: where layers are unpacked and removed, so that their files keep the image's
   * owners through the containers' id map (the runtime passes `rootless/`'s helper).
   */
  ownerNamespace?: OwnerNamespace;
  /** Builds an image from a Dockerfile (the runtime's builder, which sits above this service). */
  build?: BuildFunction;
  /** The build cache: its entries hold layers (GC roots), and prune drops entries. */
  buildCache?: {
    roots(): Promise<{ layers: Set<string>; blobs: Set<string> }>;
    /** Removes the entries whose layer `keep` rejects; returns how many. */
    prune(keep: (layerChainId: string | null) => boolean): Promise<number>;
  };
}

/**
 * The images of one state directory: `rt.images`. Every method that names an image accepts a
 * reference (`busybox`, `name:tag`, `name@sha256:…`), an image id (`sha256:<hex>`), or an id
 * prefix of at least 4 hex digits, as Docker does.
 */
export class ImageService {
  /** @internal */
  readonly store: ContentStore;
  /** @internal */
  readonly table: ImageTable;
  private readonly options: ImageServiceOptions;
  /** Uncompressed bytes one layer may have (see `ImageServiceOptions.maxLayerSize`). */
  private readonly maxLayerSize: number;
  private initialised: Promise<void> | undefined;
  readonly #puller: PullContext;

  /** @param root the state root; the store lives directly in it (`blobs/`, `layers/`, `images/`). */
  constructor(root: string, options: ImageServiceOptions = {}) {
    this.store = new ContentStore(root, options.ownerNamespace ? { ownerNamespace: options.ownerNamespace } : {});
    this.table = new ImageTable(this.store);
    this.options = options;
    this.maxLayerSize = maxLayerSizeOption(options.maxLayerSize);
    this.#puller = {
      store: this.store,
      table: this.table,
      ...(options.dockerConfigPath ? { dockerConfigPath: options.dockerConfigPath } : {}),
      maxLayerSize: this.maxLayerSize,
      ready: () => this.init(),
    };
  }

  /** The `maxLayerSize` of one call, else the service's. */
  private layerLimit(value: unknown): number {
    return maxLayerSizeOption(value, 'maxLayerSize', this.maxLayerSize);
  }

  private async init(): Promise<void> {
    this.initialised ??= (async () => {
      await this.store.init();
      await this.store.cleanTmp();
      await mkdir(this.table.manifestsDir, { recursive: true, mode: 0o700 });
    })();
    return this.initialised;
  }

  private get gc(): GcContext {
    const cache = this.options.buildCache;
    return { store: this.store, table: this.table, isLayerInUse: this.options.isLayerInUse, extraRoots: cache ? () => cache.roots() : undefined };
  }

  /** An {@link Image} for a record: reads its config and layer sizes. */
  private async imageOf(record: ImageRecord): Promise<Image> {
    const config = await this.configOf(record);
    return new Image(this, record, config, await this.sizeOf(record));
  }

  private async sizeOf(record: ImageRecord): Promise<number> {
    let size = 0;
    for (const l of record.layers) {
      const meta = await this.store.layerMeta(l.chainId);
      size += meta?.contentSize ?? meta?.size ?? l.size;
    }
    return size;
  }

  private async configOf(record: StoredRecord): Promise<ImageConfig> {
    const mediaType = record.mediaType === MediaType.DockerManifest ? MediaType.DockerConfig : MediaType.OciConfig;
    return parseImageConfig(await this.store.readBlob(record.configDigest), mediaType, record.layers.length);
  }

  /**
   * Pulls an image, like `docker pull`: resolves the tag, selects the platform from an index,
   * downloads and verifies the config and every layer (digests checked while streaming), and
   * unpacks each layer once into the shared layer store. Layers already in the store are
   * `cached`, not downloaded. Moving a tag leaves the image it pointed at untagged (dangling).
   *
   * Returns a {@link PullTask}: `await` it for the {@link Image}, and/or subscribe to its
   * `progress`, `total` and `done` events first:
   *
   * ```ts
   * const img = await rt.images.pull('127.0.0.1:5000/app:1')
   *   .on('progress', (p) => console.log(p.index, p.state, p.bytesDone, '/', p.bytesTotal))
   *   .on('total', (t) => console.log(`${t.layersDone}/${t.layers}`));
   * ```
   *
   * @param ref e.g. `busybox`, `127.0.0.1:5000/ns/app:1`, `app@sha256:…`
   * @throws (rejects with) `InvalidReferenceError`, `UnauthorizedError`, `NotFoundError`,
   *   `RegistryError`, `PlatformNotFoundError`, `ImageFormatError`, `DigestMismatchError`,
   *   `SizeMismatchError`, `UnsafeLayerEntryError`, `LayerFormatError`, `AbortError`
   */
  pull(ref: string, options: PullOptions = {}): PullTask {
    return PullTask.start(async (emit) => {
      const record = await pullImage(this.#puller, ref, options, emit);
      const image = await this.imageOf(record);
      emit('done', image);
      return image;
    });
  }

  /**
   * Images in the store, like `docker images` / `GET /images/json`.
   *
   * ```ts
   * await rt.images.list({ filters: { reference: 'busybox', dangling: false, label: 'org.example=1' } });
   * await rt.images.list({ filters: { since: 'app:1', until: '24h' } });
   * ```
   * @param options.filters Docker's filter names: `reference`, `dangling`, `label`, `before`,
   *   `since`, `until`, `id` (see {@link ImageListFilters}). Default: none.
   */
  async list(options: ListOptions = {}): Promise<Image[]> {
    await this.init();
    const filters = normaliseFilters(options?.filters, ['reference', 'dangling', 'label', 'before', 'since', 'until', 'id']);
    const dangling = danglingFilter(filters);
    const patterns = (filters.get('reference') ?? []).map((p) => globToRegExp(p));
    const labels = filters.get('label') ?? [];
    const ids = (filters.get('id') ?? []).map((v) => {
      const m = /^(?:sha256:)?([a-f0-9]{1,64})$/.exec(v);
      if (!m) throw new ValidationError('filters.id', `${JSON.stringify(v)} is not an image id or id prefix`);
      return m[1]!;
    });
    const createdOf = (img: Image) => img.created?.getTime() ?? 0;
    const beforeRef = single(filters, 'before');
    const sinceRef = single(filters, 'since');
    const untilValue = single(filters, 'until');
    const before = beforeRef !== undefined ? createdOf(await this.get(beforeRef)) : undefined;
    const since = sinceRef !== undefined ? createdOf(await this.get(sinceRef)) : undefined;
    const until = untilValue !== undefined ? parseTimePoint(untilValue, 'filters.until') : undefined;

    const refs = await this.table.readRefs();
    const out: Image[] = [];
    for (const stored of await this.table.allRecords()) {
      const record = this.table.withRefs(stored, refs);
      if (dangling !== undefined && (record.repoTags.length === 0) !== dangling) continue;
      if (ids.length > 0 && !ids.some((p) => record.id.slice(7).startsWith(p))) continue;
      if (patterns.length > 0 && !patterns.some((p) => referenceMatches(p, [...record.repoTags, ...record.repoDigests]))) continue;
      const image = await this.imageOf(record);
      if (!labels.every((l) => labelMatches(image.config.Labels, l))) continue;
      const created = createdOf(image);
      if (before !== undefined && !(created < before)) continue;
      if (since !== undefined && !(created > since)) continue;
      if (until !== undefined && !(created < until)) continue;
      out.push(image);
    }
    // Newest first, as `docker images` shows them.
    return out.sort((a, b) => createdOf(b) - createdOf(a) || a.id.localeCompare(b.id));
  }

  /**
   * Finds an image by reference, id, id prefix (≥ 4 hex digits) or manifest digest.
   * @throws NotFoundError; ConflictError for an ambiguous id prefix
   */
  async get(ref: string): Promise<Image> {
    return this.imageOf(await this.record(ref));
  }

  /** @internal The stored record (layers, digests) behind an image. */
  async record(ref: string): Promise<ImageRecord> {
    if (typeof ref !== 'string' || ref === '') throw new ValidationError('ref', 'must be an image reference or id');
    await this.init();
    return this.table.get(ref);
  }

  /**
   * Adds a tag, like `docker tag ref newRef` (`latest` when `newRef` has none). A tag that named
   * another image moves (that image may become dangling).
   * @returns the image, with its tags
   */
  async tag(ref: string, newRef: string): Promise<Image> {
    const record = await this.record(ref);
    const target = parseReference(newRef, 'newRef');
    if (target.digest !== undefined) throw new ValidationError('newRef', 'a tag cannot contain a digest');
    await this.table.updateRefs((refs) => {
      refs.tags[formatReference(target)] = record.manifestDigest;
    });
    return this.get(record.manifestDigest);
  }

  /**
   * Removes an image, like `docker rmi`: by tag, removes that tag, and the image once no tag is
   * left; by id or digest, removes every reference and the image. Then deletes every blob and
   * layer no other image (or container, see `isLayerInUse`) uses.
   * @param options.force remove by id an image that has several tags (default false: ConflictError)
   */
  async remove(ref: string, options: { force?: boolean } = {}): Promise<RemoveResult> {
    await this.init();
    const force = options?.force ?? false;
    const result: RemoveResult = { untagged: [], deleted: [] };
    const gc = await this.store.lock('gc');
    try {
      const doomed = await this.table.updateRefs(async (refs) => {
        const manifestDigest = await this.table.resolve(ref, refs);
        const record = await this.table.readRecord(manifestDigest);
        if (!record) throw new NotFoundError(`image ${ref} not found`);
        const tags = Object.keys(refs.tags).filter((t) => refs.tags[t] === manifestDigest);
        const byName = !isIdLike(ref) && parseReference(ref).digest === undefined;
        if (byName) {
          const key = formatReference(parseReference(ref));
          delete refs.tags[key];
          result.untagged.push(key);
          if (tags.length > 1) return undefined;
        } else if (tags.length > 1 && !force) {
          throw new ConflictError(`image ${ref} is referenced by ${tags.length} tags (${tags.map((t) => familiarName(parseReference(t))).join(', ')}); remove them one by one or pass force: true`);
        }
        for (const t of tags) {
          if (refs.tags[t] === undefined) continue;
          delete refs.tags[t];
          result.untagged.push(t);
        }
        for (const d of Object.keys(refs.digests)) {
          if (refs.digests[d] === manifestDigest) {
            delete refs.digests[d];
            result.untagged.push(d);
          }
        }
        return record;
      });
      if (doomed) {
        const collected: Collected = { deleted: [], bytes: 0 };
        await deleteImage(this.gc, doomed, collected);
        result.deleted.push(...collected.deleted);
      }
    } finally {
      gc.release();
    }
    return result;
  }

  /**
   * Removes unused images, like `docker image prune`: by default the dangling ones (no tag),
   * with `dangling: false` every image whose layers no container uses; then every blob, layer
   * and abandoned download that no image holds. Images and layers in use (`isLayerInUse`) are
   * never deleted, nor anything another image needs.
   *
   * ```ts
   * const { imagesDeleted, spaceReclaimed } = await rt.images.prune();
   * await rt.images.prune({ filters: { dangling: false, until: '24h', label: '!keep' } });
   * ```
   * @param options.filters `dangling` (default true), `until`, `label` (see {@link ImagePruneFilters})
   */
  async prune(options: PruneOptions = {}): Promise<PruneResult> {
    await this.init();
    const filters = normaliseFilters(options?.filters, ['dangling', 'until', 'label']);
    const danglingOnly = danglingFilter(filters) ?? true;
    const untilValue = single(filters, 'until');
    const until = untilValue !== undefined ? parseTimePoint(untilValue, 'filters.until') : undefined;
    const labels = filters.get('label') ?? [];
    const result: PruneResult = { imagesDeleted: [], spaceReclaimed: 0 };
    const collected: Collected = { deleted: [], bytes: 0 };
    const gc = await this.store.lock('gc');
    try {
      for (const stored of await this.table.allRecords()) {
        const top = stored.layers.at(-1)?.chainId;
        if (top !== undefined && this.options.isLayerInUse?.(top)) continue;
        if (until !== undefined || labels.length > 0) {
          const config = await this.configOf(stored).catch(() => undefined);
          const created = config?.created ? Date.parse(config.created) : 0;
          if (until !== undefined && !(created < until)) continue;
          if (!labels.every((l) => labelMatches(config?.config?.Labels, l))) continue;
        }
        // Decided under the ref lock: a concurrent `tag` either happened before (and the image
        // is kept) or happens after it is gone (and fails with NotFoundError).
        const untagged = await this.table.updateRefs((refs) => {
          const tags = Object.keys(refs.tags).filter((t) => refs.tags[t] === stored.manifestDigest);
          if (danglingOnly && tags.length > 0) return undefined;
          const names = [...tags, ...Object.keys(refs.digests).filter((d) => refs.digests[d] === stored.manifestDigest)];
          for (const t of tags) delete refs.tags[t];
          for (const d of names) delete refs.digests[d];
          return names;
        });
        if (untagged === undefined) continue;
        for (const u of untagged) result.imagesDeleted.push({ untagged: familiarName(parseReference(u)) });
        const before = collected.deleted.length;
        await deleteImage(this.gc, stored, collected);
        for (const d of collected.deleted.slice(before)) if (d === stored.id || (stored.layers.some((l) => l.chainId === d))) result.imagesDeleted.push({ deleted: d });
      }
      // Build cache entries whose layer no image holds are Docker's dangling intermediates.
      if (this.options.buildCache) {
        const held = new Set((await this.table.allRecords()).flatMap((r) => r.layers.map((l) => l.chainId)));
        await this.options.buildCache.prune((chainId) => chainId !== null && held.has(chainId));
      }
      const before = collected.deleted.length;
      await collectOrphans(this.gc, collected);
      for (const d of collected.deleted.slice(before)) result.imagesDeleted.push({ deleted: d });
    } finally {
      gc.release();
    }
    result.spaceReclaimed = collected.bytes;
    return result;
  }

  /**
   * Builds an image from a Dockerfile, like `docker build`, in this process: no daemon. Stages
   * are built as the target needs them; RUN steps run in berth containers (network `none`
   * unless asked), COPY/ADD write layers directly; every step is cached (see
   * `docs/design/build.md` for the cache key) and a second identical build reuses them all.
   *
   * ```ts
   * const img = await rt.images.build({ context: '/src/app', tags: ['app:2'], buildArgs: { VERSION: '2' },
   *   onProgress: (e) => console.log(`[${e.step}/${e.total}] ${e.line ?? e.instruction}${e.cached ? ' (cached)' : ''}`) });
   * ```
   * @param options see {@link BuildOptions}: `context` (required), `dockerfile` (default
   *   `'Dockerfile'`), `target`, `buildArgs`, `tags`, `labels`, `noCache` (default false),
   *   `pull` (default false), `network` (default `'none'`), `secrets`, `platform` (the host's),
   *   `onProgress`, `signal`
   * @returns the built image, in the store and tagged
   * @throws ValidationError for bad options; `DockerfileSyntaxError` (file, line, column) for
   *   a Dockerfile or `.dockerignore` that does not parse; `BuildSourceNotFoundError` for a
   *   missing COPY source, stage or target; `BuildUnsupportedError` (ADD of a URL, other
   *   platforms); `BuildStepFailedError` for a RUN that exits non-zero (exit code and the last
   *   lines of output); `AbortError`; the errors of `pull` for base images
   */
  async build(options: BuildOptions): Promise<Image> {
    if (!this.options.build) throw new UnsupportedError('this image service has no builder: use the images of a Runtime (rt.images.build)');
    await this.init();
    return this.options.build(options);
  }

  /**
   * Removes every build cache entry, like `docker builder prune -a`, then every layer and
   * blob only the cache held. (`prune()` drops the entries whose layers no image holds.)
   */
  async pruneBuildCache(): Promise<BuildCachePruneResult> {
    await this.init();
    const collected: Collected = { deleted: [], bytes: 0 };
    const gc = await this.store.lock('gc');
    let entriesDeleted = 0;
    try {
      entriesDeleted = (await this.options.buildCache?.prune(() => false)) ?? 0;
      await collectOrphans(this.gc, collected);
    } finally {
      gc.release();
    }
    return { entriesDeleted, spaceReclaimed: collected.bytes };
  }

  /**
   * Docker's `image history`: one row per config history entry, newest first, each non-empty
   * entry aligned with its layer (and that layer's size). Layers the history does not describe
   * (images built without history, e.g. by `umoci`) get rows of their own.
   * @throws ImageFormatError when the history claims more layers than the image has
   */
  async history(ref: string): Promise<ImageHistoryItem[]> {
    const record = await this.record(ref);
    const config = await this.configOf(record);
    const rows: Array<Omit<ImageHistoryItem, 'Id' | 'Tags'>> = [];
    const layerSize = async (i: number) => {
      const meta = await this.store.layerMeta(record.layers[i]!.chainId);
      return meta?.contentSize ?? meta?.size ?? 0;
    };
    let next = 0;
    for (const h of config.history ?? []) {
      const empty = h.empty_layer === true;
      let size = 0;
      if (!empty) {
        if (next >= record.layers.length) throw new ImageFormatError('ERR_IMAGE_FORMAT', `image ${record.id}: config history has more non-empty entries than the image has layers (${record.layers.length})`);
        size = await layerSize(next++);
      }
      const created = h.created ? Math.floor(Date.parse(h.created) / 1000) : 0;
      rows.push({ Created: Number.isFinite(created) ? created : 0, CreatedBy: h.created_by ?? '', Size: size, Comment: h.comment ?? '', EmptyLayer: empty });
    }
    while (next < record.layers.length) rows.push({ Created: 0, CreatedBy: '', Size: await layerSize(next++), Comment: '', EmptyLayer: false });
    const tags = record.repoTags.map((t) => familiarName(parseReference(t)));
    return rows.reverse().map((r, i) => (i === 0 ? { Id: record.id, Tags: tags, ...r } : { Id: '<missing>', Tags: null, ...r }));
  }

  /**
   * Pushes an image from the store to the registry `ref` names (`targetRef` when given, else
   * `ref` itself): each blob is checked with HEAD, mounted from the repository it was pulled
   * from when that is on the same registry, uploaded otherwise; then the manifest is PUT.
   * @param options.targetRef where to push (default `ref`)
   * @param options.auth credentials (default: `~/.docker/config.json`, else anonymous)
   * @param options.insecure allow http / unverified TLS to a non-loopback registry (default false)
   * @returns the pushed manifest's digest
   */
  async push(ref: string, options: { targetRef?: string; auth?: RegistryAuth; insecure?: boolean; signal?: AbortSignal } = {}): Promise<string> {
    const { targetRef, auth, insecure, signal } = options;
    const record = await this.record(ref);
    const target = parseReference(targetRef ?? ref, targetRef ? 'targetRef' : 'ref');
    const client = new RegistryClient({
      domain: target.domain,
      ...(auth ? { auth } : {}),
      ...(insecure !== undefined ? { insecure } : {}),
      ...(this.options.dockerConfigPath ? { dockerConfigPath: this.options.dockerConfigPath } : {}),
    });
    try {
      const source = record.repoDigests.map((d) => parseReference(d)).find((r) => r.domain === target.domain && r.path !== target.path);
      const read = (digest: string) => async (offset: number, length: number) => {
        const fh = await open(this.store.blobPath(digest), 'r');
        try {
          const buf = Buffer.alloc(length);
          const { bytesRead } = await fh.read(buf, 0, length, offset);
          return buf.subarray(0, bytesRead);
        } finally {
          await fh.close();
        }
      };
      const configSize = await this.store.blobSize(record.configDigest);
      if (configSize === undefined) throw new NotFoundError(`config ${record.configDigest} of ${ref} is missing from the store`);
      const blobs = [{ digest: record.configDigest, size: configSize }, ...record.layers];
      for (const b of blobs) {
        if (!(await this.store.hasBlob(b.digest))) throw new NotFoundError(`blob ${b.digest} of ${ref} is missing from the store; pull the image again`);
        await client.pushBlob(target.path, b, read(b.digest), { ...(source ? { mountFrom: source.path } : {}), ...(signal ? { signal } : {}) });
      }
      const manifest = await this.store.readBlob(record.manifestDigest);
      return await client.putManifest(target.path, target.digest ?? target.tag!, manifest, record.mediaType, signal);
    } finally {
      client.close();
    }
  }

  /** The image's config as stored (parsed and validated), Docker's and OCI's shape. */
  async config(ref: string): Promise<ImageConfig> {
    return this.configOf(await this.record(ref));
  }

  /** Docker's `image inspect`: id, tags and digests (familiar form), config, rootfs diff ids, sizes. */
  async inspect(ref: string): Promise<ImageInspect> {
    const record = await this.record(ref);
    const config = await this.configOf(record);
    const diffIds = record.layers.map((l) => l.diffId);
    return {
      Id: record.id,
      RepoTags: record.repoTags.map((t) => familiarName(parseReference(t))),
      RepoDigests: record.repoDigests.map((d) => familiarName(parseReference(d))),
      ...(config.created ? { Created: config.created } : {}),
      ...(config.author ? { Author: config.author } : {}),
      Architecture: config.architecture,
      Os: config.os,
      ...(config.variant ? { Variant: config.variant } : {}),
      Config: config.config ?? null,
      RootFS: { Type: 'layers', Layers: diffIds, DiffIDs: diffIds },
      Size: await this.sizeOf(record),
      DownloadSize: record.layers.reduce((a, l) => a + l.size, 0),
      ManifestDigest: record.manifestDigest,
      Metadata: { PulledAt: record.pulledAt },
    };
  }

  /**
   * Writes images to a tar stream, like `docker save`: the docker-save format (`manifest.json`,
   * `repositories`) and, in the same archive, an OCI image layout (`oci-layout`, `index.json`,
   * `blobs/sha256/…`), as Docker ≥ 25 does. Layers are written uncompressed (their digests are
   * their diff ids), configs byte for byte (image ids survive a save/load round trip).
   *
   * ```ts
   * await pipeline(rt.images.save(['busybox:latest', 'app']), createWriteStream('images.tar'));
   * ```
   * @param refs `name:tag` (that tag), `name` (every tag of the repository), an id or
   *   `name@digest` (the image, untagged in the archive)
   * @param options.signal stops the stream with an `AbortError`
   * @returns a stream; unknown images and store damage surface as its `error` event
   */
  save(refs: string | readonly string[], options: { signal?: AbortSignal } = {}): Readable {
    const list = typeof refs === 'string' ? [refs] : [...refs];
    if (list.length === 0) throw new ValidationError('refs', 'name at least one image');
    const { signal } = options;
    const self = this;
    async function* generate(): AsyncGenerator<Buffer> {
      await self.init();
      // Shared: a concurrent remove/prune must not delete a blob half-way through the stream.
      const gc = await self.store.lock('gc', { mode: 'shared', signal });
      try {
        const targets = await resolveSaveTargets(self.table, list);
        yield* saveArchive(self.store, targets, signal);
      } finally {
        gc.release();
      }
    }
    return Readable.from(generate(), { objectMode: false, highWaterMark: 1024 * 1024 });
  }

  /**
   * Loads images from a tar stream or file, like `docker load`: a `docker save` archive (any
   * Docker version, including the older `<id>/layer.tar` layout) or an OCI image layout
   * archive (`skopeo copy … oci-archive:`), plain, gzip or zstd. Every blob's digest and every
   * layer's diff id is verified while reading; a malformed or tampered archive rejects with a
   * typed error (`ImageFormatError`, `DigestMismatchError`, `SizeMismatchError`,
   * `UnsafeLayerEntryError`) and leaves the store as it was. Tags in the archive
   * (`RepoTags`, or `io.containerd.image.name` / a `name:tag` `org.opencontainers.image.ref.name`)
   * are applied, moving them from other images.
   * @param options.signal cancels the load
   * @param options.maxLayerSize uncompressed bytes one layer (and one archive member, and a
   *   compressed archive as a whole) may have; past it `LayerTooLargeError`. Default the
   *   runtime's (64 GiB).
   * @returns the loaded images, in archive order
   */
  async load(archive: Readable | AsyncIterable<Uint8Array> | string, options: { signal?: AbortSignal; maxLayerSize?: number } = {}): Promise<Image[]> {
    const maxLayerSize = this.layerLimit(options?.maxLayerSize);
    const source = toChunks(archive, 'archive');
    await this.init();
    const gc = await this.store.lock('gc', { mode: 'shared', signal: options.signal });
    let records: ImageRecord[];
    try {
      records = await loadArchive(this.store, this.table, source, options.signal, maxLayerSize);
    } finally {
      gc.release();
    }
    return Promise.all(records.map((r) => this.imageOf(r)));
  }

  /**
   * Creates a one-layer image from a tarball of a root file system, like `docker import`.
   * The tarball may be plain, gzip or zstd (detected).
   *
   * ```ts
   * const img = await rt.images.import('/tmp/rootfs.tar.gz', { ref: 'local/rootfs:1', changes: ['CMD ["/bin/sh"]', 'ENV LANG=C.UTF-8'] });
   * ```
   * @param rootfsTar a path or a stream of the tarball
   * @param options see {@link ImportOptions}: `ref` (default none: dangling), `config`
   *   (default `{}`), `changes`, `message`, `platform` (default the host's), `signal`,
   *   `maxLayerSize` (default the runtime's, 64 GiB)
   */
  async import(rootfsTar: Readable | AsyncIterable<Uint8Array> | string, options: ImportOptions = {}): Promise<Image> {
    prepareImport(options); // option errors before the stream is touched
    const maxLayerSize = this.layerLimit(options.maxLayerSize);
    if (typeof rootfsTar !== 'string' && !isAsyncIterable(rootfsTar)) throw new ValidationError('rootfsTar', 'must be a path or a readable stream');
    await this.init();
    const gc = await this.store.lock('gc', { mode: 'shared', signal: options.signal });
    let record: ImageRecord;
    try {
      record = await importRootfs(this.store, this.table, rootfsTar, { ...options, maxLayerSize });
    } finally {
      gc.release();
    }
    return this.imageOf(record);
  }

  /** What the container side needs: overlay lower dirs (top layer first) and the config. */
  async rootfsFor(ref: string): Promise<{ lowerDirs: string[]; config: ImageConfig; image: ImageRecord }> {
    const record = await this.record(ref);
    const lowerDirs: string[] = [];
    for (const l of [...record.layers].reverse()) {
      if (!(await this.store.hasLayer(l.chainId))) throw new NotFoundError(`layer ${l.chainId} of image ${ref} is missing from the store; pull the image again`, { path: this.store.layerDir(l.chainId) });
      lowerDirs.push(this.store.layerDir(l.chainId));
    }
    return { lowerDirs, config: await this.configOf(record), image: record };
  }

  /**
   * Writes the image's flattened root file system into `destDir` (created; must be empty if it
   * exists), like `umoci unpack`: the merged view of the image's stored layer dirs is copied
   * (whiteouts and opaque directories applied), or, when a layer dir is missing, the layers'
   * blobs are applied in order with whiteouts as deletions.
   * Every path is resolved inside `destDir` by the kernel on every call (no cached parent
   * directories, also on the threads that write small files), so a concurrent writer in
   * `destDir` cannot redirect a write out of it.
   *
   * `destDir` is made mode 0700 (as umoci makes its bundles), also when it already existed:
   * the image's setuid-root files keep their bits, and only the owner of `destDir` may reach
   * them. An existing `destDir` owned by another user is refused. Device nodes are skipped
   * unless `devices: true` (a character or block device in an image is a host device here).
   * @param options.signal cancels the unpack (what was written stays; remove `destDir`)
   * @param options.devices create the image's character and block devices. Default false.
   * @param options.maxLayerSize uncompressed bytes per layer. Default the runtime's (64 GiB).
   * @throws ValidationError when `destDir` is not empty or not ours; the unpack errors of `pull`
   */
  async unpack(ref: string, destDir: string, options: UnpackOptions = {}): Promise<void> {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
    const { signal, devices = false } = options;
    if (typeof devices !== 'boolean') throw new ValidationError('devices', 'must be a boolean');
    const maxLayerSize = this.layerLimit(options.maxLayerSize);
    if (typeof destDir !== 'string' || destDir === '') throw new ValidationError('destDir', 'must be a directory path');
    await this.record(ref); // an unknown image fails before destDir is made
    await mkdir(destDir, { recursive: true, mode: 0o700 });
    const native = fsOps();
    const rootFd = native.fsOpenRoot(destDir);
    let wasTopDir: boolean | null = null;
    try {
      // Checked and tightened through the fd we write below, so a rename of destDir in
      // between cannot make us trust one directory and fill another.
      const st = fstatSync(rootFd);
      const uid = process.geteuid?.() ?? st.uid;
      if (st.uid !== uid) throw new ValidationError('destDir', `${destDir} belongs to uid ${st.uid}, not to us (uid ${uid}); unpack into a directory of our own`);
      if (native.fsReadDirAt(rootFd, '').length > 0) throw new ValidationError('destDir', `${destDir} is not empty`);
      fchmodSync(rootFd, 0o700);
      // Each top-level directory of the tree in an ext4 group picked as for a directory in `/`,
      // from a random point (ContentStore.spreadLayerDirs says why: the create cost in a group
      // where trees were just deleted); the flag is put back as it was once the copy is done.
      wasTopDir = setTopDir(rootFd, true, native);
      // Shared, as for save: `remove`/`prune` must not delete a layer dir or blob mid-copy
      // (a vanished entry would read as "not there" and the tree would silently miss it).
      const gcLock = await this.store.lock('gc', { mode: 'shared', signal });
      try {
        // Again under the lock: a `remove` that ran since the first read must be seen as one
        // (NotFoundError), not as layers that vanished.
        const current = await this.record(ref);
        const layerDirs = await this.storedLayerDirs(current);
        if (this.store.ownerNamespace) {
          // Without root the files take the image's owners inside the containers' user
          // namespace: the helper copies the stored layers as below, or applies the blobs.
          if (layerDirs) {
            await this.store.ownerNamespace.copyLayers({ layerDirs, dir: destDir, devices, image: ref });
            return;
          }
          const layers = current.layers.map((l) => ({ blob: this.store.blobPath(l.digest), mediaType: l.mediaType, digest: l.digest, diffId: l.diffId }));
          await this.store.ownerNamespace.flatten({ layers, dir: destDir, maxSize: maxLayerSize, devices });
          return;
        }
        if (layerDirs) {
          await copyMergedLayers(native, layerDirs, rootFd, { devices, threads: WRITE_THREADS, image: ref, spreadTopDirs: wasTopDir !== null, ...(signal ? { signal } : {}) });
          return;
        }
        // Some layer dir is missing (a store written before layers were kept, or damaged):
        // apply the verified blobs instead.
        const applier = new LayerApplier(rootFd, 'flatten', current.layers[0]?.digest ?? '', native, { devices, parallel: WRITE_THREADS });
        for (const l of current.layers) {
          applier.nextLayer(l.digest);
          await applyLayer(readFileChunks(this.store.blobPath(l.digest)), applier, { layer: l.digest, compression: layerCompression(l.mediaType), diffId: l.diffId, maxSize: maxLayerSize, ...(signal ? { signal } : {}) });
        }
        applier.finish();
      } finally {
        gcLock.release();
      }
    } finally {
      if (wasTopDir === false) setTopDir(rootFd, false, native);
      closeSync(rootFd);
    }
  }

  /** The image's layer dirs, top first, when every one is in the store. */
  private async storedLayerDirs(record: ImageRecord): Promise<string[] | undefined> {
    const dirs: string[] = [];
    for (const l of [...record.layers].reverse()) {
      if (!(await this.store.hasLayer(l.chainId))) return undefined;
      dirs.push(this.store.layerDir(l.chainId));
    }
    return dirs;
  }
}

function isAsyncIterable(v: unknown): v is AsyncIterable<Uint8Array> {
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

async function* toBuffers(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  for await (const c of source) yield Buffer.isBuffer(c) ? c : Buffer.from(c);
}

function toChunks(input: Readable | AsyncIterable<Uint8Array> | string, option: string): AsyncIterable<Buffer> {
  if (typeof input === 'string') return readFileChunks(input);
  if (!isAsyncIterable(input)) throw new ValidationError(option, 'must be a path or a readable stream');
  return toBuffers(input);
}

/** Keeps `ContainerConfig` in this module's public surface for the re-export in index.ts. */
export type { ContainerConfig };
