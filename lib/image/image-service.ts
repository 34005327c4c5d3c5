/**
 * The image service: pull (manifest -> config -> layers, each layer downloaded, verified and
 * unpacked once, concurrently and as it streams), the local image table (get, list, tag,
 * remove with reference counting), inspect in Docker's shape, `unpack` of a flattened rootfs,
 * and `rootfsFor`, which gives the container side its overlay lower dirs.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { RegistryAuth } from './auth.js';
import { ContentStore, type BlobSource } from './content-store.js';
import { ImageFormatError, LayerFormatError, PlatformNotFoundError, SizeMismatchError } from './errors.js';
import { fsOps } from './fs-ops.js';
import {
  formatPlatform, hostPlatform, layerCompression, parseImageConfig, parseManifest, parsePlatform, platformMatches, selectPlatform,
  type ImageConfig, type ImageManifest, type Platform,
} from './manifest.js';
import { familiarName, formatReference, parseReference, type ImageReference } from './reference.js';
import { isNetworkError, RegistryClient } from './registry-client.js';
import { applyLayer, LayerApplier } from './unpack.js';

export type LayerState = 'waiting' | 'downloading' | 'verifying' | 'extracting' | 'done' | 'cached';

export interface PullProgress {
  /** The layer's (compressed) digest. */
  layer: string;
  /** Position in the manifest, base layer 0. */
  index: number;
  state: LayerState;
  bytesDone: number;
  bytesTotal: number;
  /** All layers together. */
  total: { bytesDone: number; bytesTotal: number; layersDone: number; layers: number };
}

export interface PullOptions {
  /** `os/arch[/variant]` or an object; default the host's (e.g. linux/amd64). */
  platform?: string | Platform;
  auth?: RegistryAuth;
  /** Allow plain http / unverified TLS for a non-loopback registry. */
  insecure?: boolean;
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
  /** Layers downloaded at once. Default 4. */
  concurrency?: number;
}

export interface ImageLayerRecord {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  chainId: string;
}

/** What the store knows about one image (one platform manifest). */
export interface ImageRecord {
  /** The image id: the config digest, as Docker reports it. */
  id: string;
  manifestDigest: string;
  /** The index (manifest list) it was selected from, when pulled through one. */
  indexDigest?: string;
  mediaType: string;
  configDigest: string;
  platform: Platform;
  layers: ImageLayerRecord[];
  /** Canonical `name:tag` references pointing at this image. */
  repoTags: string[];
  /** Canonical `name@digest` references. */
  repoDigests: string[];
  pulledAt: string;
}

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
  /** Uncompressed size of all layers, bytes. */
  Size: number;
  /** Compressed size of the manifest's layers, bytes. */
  DownloadSize: number;
  ManifestDigest: string;
  Metadata: { PulledAt: string };
}

export interface RemoveResult {
  untagged: string[];
  deleted: string[];
}

export interface ImageServiceOptions {
  /** Path of a Docker `config.json` for credentials (default `~/.docker/config.json`). */
  dockerConfigPath?: string;
  /** Whether a container still uses a layer; such layers survive `remove`. */
  isLayerInUse?: (chainId: string) => boolean;
}

interface StoredRecord extends Omit<ImageRecord, 'repoTags' | 'repoDigests'> {}

interface RefTable {
  tags: Record<string, string>;
  digests: Record<string, string>;
}

/** Chain ids as the OCI image spec defines them: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

class Semaphore {
  private free: number;
  private readonly waiters: Array<() => void> = [];
  constructor(n: number) {
    this.free = n;
  }
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/** A bounded async queue: the download pushes, the unpacker iterates. */
class ChunkQueue implements AsyncIterable<Buffer> {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private ended = false;
  private error: unknown;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;
  private consumerGone: unknown;
  private discarding = false;
  constructor(private readonly highWater = 8 * 1024 * 1024) {}

  async push(chunk: Buffer): Promise<void> {
    if (this.discarding) return;
    if (this.consumerGone !== undefined) throw this.consumerGone;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.wakeConsumer?.();
    while (this.bytes > this.highWater && this.consumerGone === undefined && !this.discarding) await new Promise<void>((r) => (this.wakeProducer = r));
    if (this.consumerGone !== undefined) throw this.consumerGone;
  }
  end(): void {
    this.ended = true;
    this.wakeConsumer?.();
  }
  fail(e: unknown): void {
    this.error = e;
    this.wakeConsumer?.();
  }
  /** The consumer stopped but the producer should run to its end: drop what it pushes. */
  discard(): void {
    this.discarding = true;
    this.chunks = [];
    this.bytes = 0;
    this.wakeProducer?.();
  }
  /** The consumer stopped (with this error): release a waiting producer. */
  abandon(e: unknown): void {
    this.consumerGone = e ?? new Error('consumer stopped');
    this.wakeProducer?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      if (this.chunks.length > 0) {
        const c = this.chunks.shift()!;
        this.bytes -= c.length;
        if (this.bytes <= this.highWater) this.wakeProducer?.();
        yield c;
        continue;
      }
      if (this.error !== undefined) throw this.error;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
      this.wakeConsumer = undefined;
    }
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

async function* readFileChunks(path: string): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) yield chunk as Buffer;
}

export class ImageService {
  readonly store: ContentStore;
  private readonly options: ImageServiceOptions;
  private initialised: Promise<void> | undefined;

  /** @param root the state root; the store lives directly in it (`blobs/`, `layers/`, `images/`). */
  constructor(root: string, options: ImageServiceOptions = {}) {
    this.store = new ContentStore(root);
    this.options = options;
  }

  private async init(): Promise<void> {
    this.initialised ??= (async () => {
      await this.store.init();
      await this.store.cleanTmp();
      await mkdir(join(this.store.imagesDir, 'manifests'), { recursive: true, mode: 0o700 });
    })();
    return this.initialised;
  }

  private recordPath(manifestDigest: string): string {
    return join(this.store.imagesDir, 'manifests', `${manifestDigest.slice('sha256:'.length)}.json`);
  }

  private get refsPath(): string {
    return join(this.store.imagesDir, 'refs.json');
  }

  private async readRefs(): Promise<RefTable> {
    return (await this.store.readJson<RefTable>(this.refsPath)) ?? { tags: {}, digests: {} };
  }

  private async updateRefs(fn: (refs: RefTable) => void | Promise<void>): Promise<void> {
    const lock = await this.store.lock('images');
    try {
      const refs = await this.readRefs();
      await fn(refs);
      await this.store.writeJson(this.refsPath, refs);
    } finally {
      lock.release();
    }
  }

  /**
   * Pulls an image: resolves the tag, selects the platform from an index, downloads and
   * verifies the config and every layer, unpacks each layer once into `layers/<chainid>/`.
   */
  async pull(refString: string, options: PullOptions = {}): Promise<ImageRecord> {
    const ref = parseReference(refString);
    if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1)) {
      throw new ValidationError('concurrency', 'must be a positive integer');
    }
    const want = options.platform !== undefined ? parsePlatform(options.platform) : hostPlatform();
    await this.init();
    const { signal } = options;
    const client = new RegistryClient({
      domain: ref.domain,
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.insecure !== undefined ? { insecure: options.insecure } : {}),
      ...(this.options.dockerConfigPath ? { dockerConfigPath: this.options.dockerConfigPath } : {}),
    });
    // Shared: any number of pulls; `remove` takes it exclusively before deleting anything, so it
    // never deletes a blob or layer that an unfinished pull has just made.
    const gcLock = await this.store.lock('gc', { mode: 'shared', signal });
    try {
      const top = await client.getManifest(ref.path, ref.digest ?? ref.tag!, signal);
      let parsed = parseManifest(top.bytes, top.mediaType);
      let manifestBytes = top.bytes;
      let manifestDigest = top.digest;
      let indexDigest: string | undefined;
      if (parsed.kind === 'index') {
        const desc = selectPlatform(parsed, want);
        await this.store.putBlob(top.bytes, { digest: top.digest });
        indexDigest = top.digest;
        const m = await client.getManifest(ref.path, desc.digest, signal);
        if (m.bytes.length !== desc.size) throw new SizeMismatchError(desc.size, m.bytes.length, `manifest ${desc.digest}`);
        parsed = parseManifest(m.bytes, desc.mediaType);
        if (parsed.kind === 'index') throw new ImageFormatError('ERR_IMAGE_FORMAT', `index ${top.digest} points at another index (${desc.digest}); nested indexes are not supported`);
        manifestBytes = m.bytes;
        manifestDigest = m.digest;
      }
      const manifest: ImageManifest = parsed;
      const configSource: BlobSource = { open: (offset, s) => client.openBlob(ref.path, manifest.config.digest, offset, s) };
      await this.store.ingest(manifest.config, { source: configSource, ...(signal ? { signal } : {}), isRetryable: isNetworkError });
      const config = parseImageConfig(await this.store.readBlob(manifest.config.digest), manifest.config.mediaType, manifest.layers.length);
      const configPlatform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
      if (options.platform !== undefined && !platformMatches(configPlatform, want)) {
        throw new PlatformNotFoundError(`image ${formatReference(ref)} is ${formatPlatform(configPlatform)}, not the requested ${formatPlatform(want)}`);
      }
      const diffIds = config.rootfs.diff_ids;
      const chains = chainIds(diffIds);
      const layers: ImageLayerRecord[] = manifest.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: diffIds[i]!, chainId: chains[i]! }));
      for (const l of layers) layerCompression(l.mediaType); // unsupported media types fail before any download

      await this.pullLayers(client, ref, layers, options);

      await this.store.putBlob(manifestBytes, { digest: manifestDigest });
      const record: StoredRecord = {
        id: manifest.config.digest,
        manifestDigest,
        ...(indexDigest ? { indexDigest } : {}),
        mediaType: manifest.mediaType,
        configDigest: manifest.config.digest,
        platform: configPlatform,
        layers,
        pulledAt: new Date().toISOString(),
      };
      await this.store.writeJson(this.recordPath(manifestDigest), record);
      await this.updateRefs((refs) => {
        if (ref.tag !== undefined && ref.digest === undefined) refs.tags[formatReference(ref)] = manifestDigest;
        refs.digests[`${ref.name}@${indexDigest ?? manifestDigest}`] = manifestDigest;
      });
      return this.withRefs(record, await this.readRefs());
    } finally {
      gcLock.release();
      client.close();
    }
  }

  private async pullLayers(client: RegistryClient, ref: ImageReference, layers: ImageLayerRecord[], options: PullOptions): Promise<void> {
    const { signal, onProgress } = options;
    const slots = new Semaphore(options.concurrency ?? 4);
    const committed = layers.map(() => deferred());
    const done = layers.map(() => 0);
    const bytesTotal = layers.reduce((a, l) => a + l.size, 0);
    let layersDone = 0;
    const emit = (i: number, state: LayerState) => {
      if (state === 'done' || state === 'cached') {
        layersDone++;
        done[i] = layers[i]!.size;
      }
      onProgress?.({
        layer: layers[i]!.digest, index: i, state, bytesDone: done[i]!, bytesTotal: layers[i]!.size,
        total: { bytesDone: done.reduce((a, b) => a + b, 0), bytesTotal, layersDone, layers: layers.length },
      });
    };
    const native = fsOps();

    const task = async (i: number): Promise<void> => {
      const layer = layers[i]!;
      emit(i, 'waiting');
      const release = await slots.acquire();
      const lock = await this.store.lock(`layer-${layer.chainId.slice(7)}`, { signal }).catch((e) => {
        release();
        throw e;
      });
      try {
        const haveLayer = await this.store.hasLayer(layer.chainId);
        const haveBlob = await this.store.hasBlob(layer.digest);
        const source: BlobSource = { open: (offset, s) => client.openBlob(ref.path, layer.digest, offset, s) };
        const onBlobProgress = (n: number) => {
          done[i] = n;
          emit(i, 'downloading');
        };
        if (haveLayer) {
          if (!haveBlob) {
            emit(i, 'downloading');
            await this.store.ingest(layer, { source, onProgress: onBlobProgress, ...(signal ? { signal } : {}), isRetryable: isNetworkError });
            release();
            emit(i, 'done');
          } else {
            release();
            emit(i, 'cached');
          }
          return;
        }
        const tmp = await this.store.layerTempDir(layer.chainId);
        let rootFd = -1;
        try {
          rootFd = native.fsOpenRoot(tmp);
          const applier = new LayerApplier(rootFd, 'layer', layer.digest);
          const compression = layerCompression(layer.mediaType);
          let result: { diffId: string; size: number };
          if (haveBlob) {
            emit(i, 'extracting');
            result = await applyLayer(readFileChunks(this.store.blobPath(layer.digest)), applier, { layer: layer.digest, compression, diffId: layer.diffId, ...(signal ? { signal } : {}) });
          } else {
            emit(i, 'downloading');
            result = await this.downloadAndApply(layer, source, applier, compression, onBlobProgress, signal);
          }
          release();
          emit(i, 'verifying');
          // Lower layers must be complete: hard links into them are copied up, and implicit
          // directories take their metadata.
          for (let j = 0; j < i; j++) await committed[j]!.promise;
          emit(i, 'extracting');
          const lowerFds: number[] = [];
          try {
            for (let j = i - 1; j >= 0; j--) lowerFds.push(native.fsOpenRoot(this.store.layerDir(layers[j]!.chainId)));
            applier.resolveAgainstLowers(lowerFds);
          } finally {
            for (const fd of lowerFds) closeSync(fd);
          }
          applier.finish();
          native.fsSync(rootFd);
          closeSync(rootFd);
          rootFd = -1;
          await this.store.commitLayer(tmp, { chainId: layer.chainId, diffId: result.diffId, size: result.size });
          emit(i, 'done');
        } catch (e) {
          if (rootFd >= 0) closeSync(rootFd);
          await rm(tmp, { recursive: true, force: true });
          throw e;
        }
      } finally {
        release();
        lock.release();
      }
    };

    const results = await Promise.allSettled(
      layers.map((_, i) =>
        task(i).then(
          () => committed[i]!.resolve(),
          (e) => {
            committed[i]!.reject(e);
            throw e;
          },
        ),
      ),
    );
    // Report the root cause: a lower layer's failure makes every layer above it fail too.
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Streams a layer blob from the registry into the store and, at the same time, the unpacker. */
  private async downloadAndApply(
    layer: ImageLayerRecord,
    source: BlobSource,
    applier: LayerApplier,
    compression: ReturnType<typeof layerCompression>,
    onProgress: (n: number) => void,
    signal: AbortSignal | undefined,
  ): Promise<{ diffId: string; size: number }> {
    const queue = new ChunkQueue();
    const stop = new AbortController();
    const ingestSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    const applying = applyLayer(queue, applier, { layer: layer.digest, compression, diffId: layer.diffId, ...(signal ? { signal } : {}) }).catch((e) => {
      if (e instanceof LayerFormatError) {
        // Garbage in the stream: finish the download anyway, so that a blob which does not
        // match its digest is reported as that (the cause) rather than as a broken tar.
        queue.discard();
      } else {
        queue.abandon(e);
        stop.abort(e);
      }
      throw e;
    });
    const ingesting = (async () => {
      try {
        const r = await this.store.ingest(layer, { source, onData: (c) => queue.push(c), onProgress: (n) => onProgress(n), signal: ingestSignal, isRetryable: isNetworkError });
        // Another process stored the blob while we waited for its lock: unpack from the store.
        if (r === 'cached') for await (const c of readFileChunks(this.store.blobPath(layer.digest))) await queue.push(c);
        queue.end();
      } catch (e) {
        queue.fail(e);
        throw e;
      }
    })();
    const [ingested, applied] = await Promise.allSettled([ingesting, applying]);
    // A download that failed on its own (verification, network) explains any unpack failure it
    // caused; a download we aborted because the unpacker refused the content does not.
    if (ingested.status === 'rejected' && !stop.signal.aborted) throw ingested.reason;
    if (applied.status === 'rejected') throw applied.reason;
    if (ingested.status === 'rejected') throw ingested.reason;
    return applied.value;
  }

  private withRefs(record: StoredRecord, refs: RefTable): ImageRecord {
    const repoTags = Object.entries(refs.tags).filter(([, d]) => d === record.manifestDigest).map(([t]) => t).sort();
    const repoDigests = Object.entries(refs.digests).filter(([, d]) => d === record.manifestDigest).map(([t]) => t).sort();
    return { ...record, repoTags, repoDigests };
  }

  private async allRecords(): Promise<StoredRecord[]> {
    await this.init();
    const dir = join(this.store.imagesDir, 'manifests');
    const out: StoredRecord[] = [];
    for (const name of await readdir(dir)) {
      if (!/^[a-f0-9]{64}\.json$/.test(name)) continue;
      const r = await this.store.readJson<StoredRecord>(join(dir, name));
      if (r) out.push(r);
    }
    return out;
  }

  /** All images in the store, with their tags and digests. */
  async list(): Promise<ImageRecord[]> {
    const refs = await this.readRefs();
    return (await this.allRecords()).map((r) => this.withRefs(r, refs));
  }

  /**
   * Finds an image by reference (`busybox`, `name:tag`, `name@sha256:…`), by id
   * (`sha256:<config hex>` or an unambiguous hex prefix of at least 4), or by manifest digest.
   */
  async get(ref: string): Promise<ImageRecord> {
    await this.init();
    const refs = await this.readRefs();
    const manifestDigest = await this.resolve(ref, refs);
    const record = await this.store.readJson<StoredRecord>(this.recordPath(manifestDigest));
    if (!record) throw new NotFoundError(`image ${ref} not found (its record is missing)`);
    return this.withRefs(record, refs);
  }

  private async resolve(ref: string, refs: RefTable): Promise<string> {
    const idLike = /^(sha256:)?([a-f0-9]{4,64})$/.exec(ref);
    if (idLike) {
      const hex = idLike[2]!;
      const matches = (await this.allRecords()).filter((r) => r.id.slice(7).startsWith(hex) || (hex.length === 64 && r.manifestDigest.slice(7) === hex));
      const ids = new Set(matches.map((m) => m.id));
      if (ids.size > 1) throw new ConflictError(`image id prefix ${ref} is ambiguous (${ids.size} images)`);
      // One id, several manifests (e.g. the same image with gzip and zstd layers): the newest.
      if (matches.length > 0) return matches.sort((a, b) => b.pulledAt.localeCompare(a.pulledAt))[0]!.manifestDigest;
      if (idLike[1] || hex.length === 64) throw new NotFoundError(`image ${ref} not found`);
    }
    const parsed = parseReference(ref);
    if (parsed.digest !== undefined) {
      const key = `${parsed.name}@${parsed.digest}`;
      if (refs.digests[key]) return refs.digests[key]!;
      for (const r of await this.allRecords()) if (r.manifestDigest === parsed.digest || r.indexDigest === parsed.digest) return r.manifestDigest;
      throw new NotFoundError(`image ${familiarName(parsed)} not found`);
    }
    const found = refs.tags[formatReference(parsed)];
    if (!found) throw new NotFoundError(`image ${familiarName(parsed)} not found`);
    return found;
  }

  /** Adds a tag (`newRef`, normalised; `latest` when omitted) for an existing image. */
  async tag(ref: string, newRef: string): Promise<ImageRecord> {
    const record = await this.get(ref);
    const target = parseReference(newRef, 'newRef');
    if (target.digest !== undefined) throw new ValidationError('newRef', 'a tag cannot contain a digest');
    await this.updateRefs((refs) => {
      refs.tags[formatReference(target)] = record.manifestDigest;
    });
    return this.get(formatReference(target));
  }

  /**
   * Removes a tag; when no tag or digest reference is left (or when removing by id), deletes
   * the image and every blob and layer no other image uses. Removing by id an image that has
   * several tags needs `force`, as in Docker.
   */
  async remove(ref: string, { force = false }: { force?: boolean } = {}): Promise<RemoveResult> {
    await this.init();
    const result: RemoveResult = { untagged: [], deleted: [] };
    const gc = await this.store.lock('gc');
    try {
      let doomed: StoredRecord | undefined;
      await this.updateRefs(async (refs) => {
        const manifestDigest = await this.resolve(ref, refs);
        const record = await this.store.readJson<StoredRecord>(this.recordPath(manifestDigest));
        if (!record) throw new NotFoundError(`image ${ref} not found`);
        const tags = Object.keys(refs.tags).filter((t) => refs.tags[t] === manifestDigest);
        const byName = !/^(sha256:)?[a-f0-9]{4,64}$/.test(ref) && parseReference(ref).digest === undefined;
        if (byName) {
          const key = formatReference(parseReference(ref));
          delete refs.tags[key];
          result.untagged.push(key);
          if (tags.length > 1) return;
        } else if (tags.length > 1 && !force) {
          throw new ConflictError(`image ${ref} is referenced by ${tags.length} tags (${tags.join(', ')}); remove them one by one or pass force: true`);
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
        doomed = record;
      });
      if (doomed) await this.deleteUnused(doomed, result);
    } finally {
      gc.release();
    }
    return result;
  }

  private async deleteUnused(doomed: StoredRecord, result: RemoveResult): Promise<void> {
    await rm(this.recordPath(doomed.manifestDigest), { force: true });
    const others = (await this.allRecords()).filter((r) => r.manifestDigest !== doomed.manifestDigest);
    const usedBlobs = new Set<string>();
    const usedLayers = new Set<string>();
    for (const r of others) {
      usedBlobs.add(r.manifestDigest);
      usedBlobs.add(r.configDigest);
      if (r.indexDigest) usedBlobs.add(r.indexDigest);
      for (const l of r.layers) {
        usedBlobs.add(l.digest);
        usedLayers.add(l.chainId);
      }
    }
    const blobs = [doomed.manifestDigest, doomed.configDigest, ...(doomed.indexDigest ? [doomed.indexDigest] : []), ...doomed.layers.map((l) => l.digest)];
    for (const b of new Set(blobs)) {
      if (usedBlobs.has(b)) continue;
      await this.store.removeBlob(b);
      result.deleted.push(b);
    }
    for (const l of doomed.layers) {
      if (usedLayers.has(l.chainId) || this.options.isLayerInUse?.(l.chainId)) continue;
      const lock = await this.store.lock(`layer-${l.chainId.slice(7)}`);
      try {
        await this.store.removeLayer(l.chainId);
      } finally {
        lock.release();
      }
      result.deleted.push(l.chainId);
    }
    result.deleted.unshift(doomed.id);
  }

  /**
   * Pushes an image from the store to the registry `ref` names (`targetRef` when given, else
   * `ref` itself): each blob is checked with HEAD, mounted from the repository it was pulled
   * from when that is on the same registry, uploaded otherwise; then the manifest is PUT.
   * Returns the pushed manifest's digest.
   */
  async push(ref: string, { targetRef, auth, insecure, signal }: { targetRef?: string; auth?: RegistryAuth; insecure?: boolean; signal?: AbortSignal } = {}): Promise<string> {
    const record = await this.get(ref);
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

  /** The image's config (parsed and validated). */
  async config(ref: string): Promise<ImageConfig> {
    const record = await this.get(ref);
    return parseImageConfig(await this.store.readBlob(record.configDigest), record.mediaType.includes('oci') ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json', record.layers.length);
  }

  /** Docker-like `image inspect`. */
  async inspect(ref: string): Promise<ImageInspect> {
    const record = await this.get(ref);
    const config = await this.config(record.manifestDigest);
    let size = 0;
    for (const l of record.layers) size += (await this.store.layerMeta(l.chainId))?.size ?? l.size;
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
      Size: size,
      DownloadSize: record.layers.reduce((a, l) => a + l.size, 0),
      ManifestDigest: record.manifestDigest,
      Metadata: { PulledAt: record.pulledAt },
    };
  }

  /** What the container side needs: overlay lower dirs (top layer first) and the config. */
  async rootfsFor(ref: string): Promise<{ lowerDirs: string[]; config: ImageConfig; image: ImageRecord }> {
    const record = await this.get(ref);
    const lowerDirs: string[] = [];
    for (const l of [...record.layers].reverse()) {
      if (!(await this.store.hasLayer(l.chainId))) throw new NotFoundError(`layer ${l.chainId} of image ${ref} is missing from the store; pull the image again`, { path: this.store.layerDir(l.chainId) });
      lowerDirs.push(this.store.layerDir(l.chainId));
    }
    return { lowerDirs, config: await this.config(record.manifestDigest), image: record };
  }

  /**
   * Writes the image's flattened root file system into `destDir` (created; must be empty if it
   * exists), applying the layers' blobs in order with whiteouts as deletions, like `umoci unpack`.
   */
  async unpack(ref: string, destDir: string, { signal }: { signal?: AbortSignal } = {}): Promise<void> {
    const record = await this.get(ref);
    await mkdir(destDir, { recursive: true, mode: 0o755 });
    if ((await readdir(destDir)).length > 0) throw new ValidationError('destDir', `${destDir} is not empty`);
    const native = fsOps();
    const rootFd = native.fsOpenRoot(destDir);
    try {
      const applier = new LayerApplier(rootFd, 'flatten', record.layers[0]?.digest ?? '');
      for (const l of record.layers) {
        applier.nextLayer(l.digest);
        await applyLayer(readFileChunks(this.store.blobPath(l.digest)), applier, { layer: l.digest, compression: layerCompression(l.mediaType), diffId: l.diffId, ...(signal ? { signal } : {}) });
      }
      applier.finish();
    } finally {
      closeSync(rootFd);
    }
  }
}
