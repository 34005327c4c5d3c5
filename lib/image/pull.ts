/**
 * `images.pull()`: resolve the reference (an index selects the platform), fetch and verify the
 * config, then download every layer and unpack it as it streams, up to `concurrency` at once.
 * Blobs and unpacked layers wait in tmp/ until the whole image is verified; one syncfs, then
 * renames, make them durable and visible together, so a failed pull leaves the store as it was
 * (except for verified blobs, kept so the next pull does not fetch them again).
 * @module
 */
import { rm } from 'node:fs/promises';
import { AbortError, ValidationError } from '../errors.js';
import type { RegistryAuth } from './auth.js';
import type { BlobSource, ContentStore, LayerMeta, StoreLock } from './content-store.js';
import { ContentTooLargeError, ImageFormatError, LayerFormatError, PlatformNotFoundError, SizeMismatchError } from './errors.js';
import { chainIds, type ImageLayerRecord, type ImageRecord, type ImageTable, type StoredRecord } from './image-table.js';
import type { LayerProgress, LayerState, PullEmit, PullProgress, TotalProgress } from './image.js';
import { ProgressCoalescer } from './pull-progress.js';
import { LayerStage, readFileChunks } from './layer-staging.js';
import {
  formatPlatform, hostPlatform, layerCompression, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, parseImageConfig, parseManifest, parsePlatform, platformMatches, selectPlatform,
  type ImageManifest, type Platform,
} from './manifest.js';
import { formatReference, parseReference, type ImageReference } from './reference.js';
import { isNetworkError, RegistryClient } from './registry-client.js';
import { applyLayer, type LayerApplier, maxLayerSizeOption } from './unpack.js';
import { WeightedSlots } from './weighted-slots.js';

/** Options of {@link ImageService.pull}. */
export interface PullOptions {
  /** `os/arch[/variant]` or an object, for multi-platform images. Default the host's (e.g. `linux/amd64`). */
  platform?: string | Platform;
  /** Credentials. Default: the `auths` entry of `~/.docker/config.json` for the registry, else anonymous. */
  auth?: RegistryAuth;
  /** Allow plain http and unverified TLS for a non-loopback registry. Default false (loopback registries may always use http). */
  insecure?: boolean;
  /**
   * Called for every layer state change and, while a layer downloads, at most 10 times a second
   * per layer (always with its final count), with the totals: a progress bar needs no
   * throttling of its own. Same data as the task's `progress` + `total` events.
   */
  onProgress?: (event: PullProgress) => void;
  /** Cancels the pull; it rejects with an `AbortError` and leaves nothing half-written visible. */
  signal?: AbortSignal;
  /** Layers downloaded at once. Default 4. */
  concurrency?: number;
  /**
   * Refuse a layer whose uncompressed content passes this many bytes (`LayerTooLargeError`),
   * the defence against decompression bombs. Default: the runtime's `maxLayerSize` (64 GiB).
   */
  maxLayerSize?: number;
}

/** What a pull needs from the image service. */
export interface PullContext {
  store: ContentStore;
  table: ImageTable;
  /** Path of a Docker `config.json` for credentials. */
  dockerConfigPath?: string;
  /** The service's `maxLayerSize`, used when the pull does not give one. */
  maxLayerSize: number;
  /** Creates the store's directories (once). */
  ready(): Promise<void>;
}

/** What a pull has produced in tmp/ and still has to make durable and visible. */
interface StagedPull {
  /** Blobs downloaded and verified, waiting in tmp/ (`IngestOptions.defer`). */
  partials: Array<{ digest: string; size: number }>;
  /** Small blobs (index, manifest) written to tmp/. */
  files: Array<{ path: string; digest: string }>;
  /** Unpacked layers, base first. */
  layers: Array<{ tmp: string; metaTmp: string; meta: LayerMeta }>;
  /** Everything to remove if the pull fails. */
  temps: string[];
  /** Layer locks held until the layers are in the store. */
  locks: StoreLock[];
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

function deferredValue<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * Pulls `refString` into the store, like `docker pull` (see `ImageService.pull`): manifest,
 * config, then the layers, staged in tmp/ and made durable and visible together.
 */
export async function pullImage(ctx: PullContext, refString: string, options: PullOptions, emitEvent: PullEmit | undefined): Promise<ImageRecord> {
  const ref = parseReference(refString);
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1)) {
    throw new ValidationError('concurrency', 'must be a positive integer');
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new ValidationError('onProgress', 'must be a function');
  const maxLayerSize = maxLayerSizeOption(options.maxLayerSize, 'maxLayerSize', ctx.maxLayerSize);
  const want = options.platform !== undefined ? parsePlatform(options.platform) : hostPlatform();
  await ctx.ready();
  const { signal } = options;
  if (signal?.aborted) throw new AbortError('pull aborted', { cause: signal.reason });
  const client = new RegistryClient({
    domain: ref.domain,
    ...(options.auth ? { auth: options.auth } : {}),
    ...(options.insecure !== undefined ? { insecure: options.insecure } : {}),
    ...(ctx.dockerConfigPath ? { dockerConfigPath: ctx.dockerConfigPath } : {}),
  });
  const staged: StagedPull = { partials: [], files: [], layers: [], temps: [], locks: [] };
  // Shared: any number of pulls; `remove` and `prune` take it exclusively before deleting
  // anything, so they never delete a blob or layer that an unfinished pull has just made.
  const gcLock = await ctx.store.lock('gc', { mode: 'shared', signal });
  try {
    const top = await client.getManifest(ref.path, ref.digest ?? ref.tag!, signal);
    let parsed = parseManifest(top.bytes, top.mediaType);
    let manifestBytes = top.bytes;
    let manifestDigest = top.digest;
    let indexDigest: string | undefined;
    if (parsed.kind === 'index') {
      const desc = selectPlatform(parsed, want);
      if (desc.size > MAX_MANIFEST_BYTES) throw new ContentTooLargeError('manifest', desc.digest, desc.size, MAX_MANIFEST_BYTES);
      staged.files.push({ path: await ctx.store.stageBytes(top.bytes), digest: top.digest });
      indexDigest = top.digest;
      const m = await client.getManifest(ref.path, desc.digest, signal);
      if (m.bytes.length !== desc.size) throw new SizeMismatchError(desc.size, m.bytes.length, `manifest ${desc.digest}`);
      parsed = parseManifest(m.bytes, desc.mediaType);
      if (parsed.kind === 'index') throw new ImageFormatError('ERR_IMAGE_FORMAT', `index ${top.digest} points at another index (${desc.digest}); nested indexes are not supported`);
      manifestBytes = m.bytes;
      manifestDigest = m.digest;
    }
    const manifest: ImageManifest = parsed;
    // On the descriptor's word before a byte is fetched; `ingest` then refuses any byte past
    // the declared size, so the config that is parsed is never larger than this either.
    if (manifest.config.size > MAX_CONFIG_BYTES) throw new ContentTooLargeError('config', manifest.config.digest, manifest.config.size, MAX_CONFIG_BYTES);
    const configSource: BlobSource = { open: (offset, s) => client.openBlob(ref.path, manifest.config.digest, offset, s) };
    if ((await ctx.store.ingest(manifest.config, { source: configSource, ...(signal ? { signal } : {}), isRetryable: isNetworkError, defer: true })) === 'fetched') {
      staged.partials.push(manifest.config);
    }
    const config = parseImageConfig(await ctx.store.readPartial(manifest.config.digest), manifest.config.mediaType, manifest.layers.length);
    const configPlatform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
    if (options.platform !== undefined && !platformMatches(configPlatform, want)) {
      throw new PlatformNotFoundError(`image ${formatReference(ref)} is ${formatPlatform(configPlatform)}, not the requested ${formatPlatform(want)}`);
    }
    const diffIds = config.rootfs.diff_ids;
    const chains = chainIds(diffIds);
    const layers: ImageLayerRecord[] = manifest.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: diffIds[i]!, chainId: chains[i]! }));
    for (const l of layers) layerCompression(l.mediaType); // unsupported media types fail before any download

    await pullLayers(ctx.store, client, ref, layers, options, maxLayerSize, emitEvent, staged);
    staged.files.push({ path: await ctx.store.stageBytes(manifestBytes), digest: manifestDigest });

    // Everything is downloaded, verified and unpacked in tmp/. An abort that came while the
    // last layers finished still wins: nothing of this pull becomes visible after it.
    if (signal?.aborted) throw new AbortError('pull aborted', { cause: signal.reason });
    // One syncfs makes it durable; then blobs and layers (base first) become visible; one
    // more makes the renames durable before a record names them.
    await ctx.store.durable();
    for (const p of staged.partials) await ctx.store.commitPartial(p);
    for (const f of staged.files.splice(0)) await ctx.store.commitBlobFile(f.path, f.digest);
    for (const l of staged.layers) {
      await ctx.store.publishLayer(l.tmp, l.metaTmp, l.meta);
      staged.temps = staged.temps.filter((t) => t !== l.tmp && t !== l.metaTmp);
    }
    await ctx.store.durable();

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
    await ctx.table.writeRecord(record);
    await ctx.table.updateRefs((refs) => {
      if (ref.tag !== undefined && ref.digest === undefined) refs.tags[formatReference(ref)] = manifestDigest;
      refs.digests[`${ref.name}@${indexDigest ?? manifestDigest}`] = manifestDigest;
    });
    return ctx.table.withRefs(record, await ctx.table.readRefs());
  } catch (e) {
    // Blobs that were downloaded and verified before the failure are kept, as a stored blob
    // (the next pull does not download them again; `prune` removes them if it never comes).
    if (staged.partials.length > 0) {
      await ctx.store.durable().then(async () => {
        for (const p of staged.partials) await ctx.store.commitPartial(p);
      }).catch(() => {});
    }
    // Wherever the abort was noticed (a download, a decompression step, a lock wait), the
    // caller gets the one typed error, with its reason as the cause.
    if (signal?.aborted && !(e instanceof AbortError)) throw new AbortError('pull aborted', { cause: signal.reason });
    throw e;
  } finally {
    // Unpacked layers and staged files of a failed pull go.
    for (const t of staged.temps) await ctx.store.removeTree(t);
    for (const f of staged.files) await rm(f.path, { force: true });
    for (const l of staged.locks) l.release();
    gcLock.release();
    client.close();
  }
}

/**
 * Downloads and unpacks the layers into tmp/, up to `concurrency` at once (largest first, see `WeightedSlots`),
 * each streaming through the unpacker as it downloads. A layer resolves against its lower layers (hard links
 * into them are copied up, implicit directories take their metadata) as soon as they are
 * complete, wherever they are (tmp/ or already in the store). Nothing is made durable or
 * visible here: the caller does that once for the whole image. The layer locks are kept
 * (in `staged.locks`) until then, so another process wanting the same layer waits and then
 * finds it in the store.
 */
async function pullLayers(store: ContentStore, client: RegistryClient, ref: ImageReference, layers: ImageLayerRecord[], options: PullOptions, maxLayerSize: number, emitEvent: PullEmit | undefined, staged: StagedPull): Promise<void> {
  const { signal, onProgress } = options;
  const slots = new WeightedSlots(options.concurrency ?? 4);
  // Where each complete layer is, for the layers above it.
  const complete = layers.map(() => deferredValue<string>());
  const done = layers.map(() => 0);
  const bytesTotal = layers.reduce((a, l) => a + l.size, 0);
  let layersDone = 0;
  const coalescer = new ProgressCoalescer();
  const emit = (i: number, state: LayerState) => {
    if (state === 'done' || state === 'cached') {
      layersDone++;
      done[i] = layers[i]!.size;
    }
    if (!coalescer.admit(i, state, done[i]!, layers[i]!.size)) return;
    const total: TotalProgress = { bytesDone: done.reduce((a, b) => a + b, 0), bytesTotal, layersDone, layers: layers.length };
    const layer: LayerProgress = { layer: layers[i]!.digest, index: i, state, bytesDone: done[i]!, bytesTotal: layers[i]!.size };
    onProgress?.({ ...layer, total });
    emitEvent?.('progress', layer);
    emitEvent?.('total', total);
  };
  const stagedLayers: Array<StagedPull['layers'][number] | undefined> = layers.map(() => undefined);

  // Every layer lock, base first, before any work, held until the layers are in the store.
  // Base-first is one global order: a chain id fixes every layer below it, so two images that
  // share a layer share it at the same position with the same layers below — two pulls can
  // never each hold a lock the other waits for.
  for (const l of layers) staged.locks.push(await store.lock(`layer-${l.chainId.slice(7)}`, { signal }));

  const task = async (i: number): Promise<void> => {
    const layer = layers[i]!;
    const release = await slots.acquire(layer.size);
    try {
      const haveLayer = await store.hasLayer(layer.chainId);
      const haveBlob = await store.hasBlob(layer.digest);
      const source: BlobSource = { open: (offset, s) => client.openBlob(ref.path, layer.digest, offset, s) };
      const onBlobProgress = (n: number) => {
        done[i] = n;
        emit(i, 'downloading');
      };
      if (haveLayer) {
        complete[i]!.resolve(store.layerDir(layer.chainId));
        if (!haveBlob) {
          emit(i, 'downloading');
          if ((await store.ingest(layer, { source, onProgress: onBlobProgress, ...(signal ? { signal } : {}), isRetryable: isNetworkError, defer: true })) === 'fetched') staged.partials.push(layer);
          release();
          emit(i, 'done');
        } else {
          release();
          emit(i, 'cached');
        }
        return;
      }
      if (store.ownerNamespace) {
        await stageInNamespace(i, haveBlob, source, onBlobProgress, release);
        return;
      }
      const stage = await LayerStage.open(store, layer);
      staged.temps.push(stage.dir);
      try {
        const compression = layerCompression(layer.mediaType);
        let result: { diffId: string; size: number };
        if (haveBlob) {
          emit(i, 'extracting');
          result = await applyLayer(readFileChunks(store.blobPath(layer.digest)), stage.applier, { layer: layer.digest, compression, diffId: layer.diffId, maxSize: maxLayerSize, ...(signal ? { signal } : {}) });
        } else {
          emit(i, 'downloading');
          const fetched = await downloadAndApply(store, layer, source, stage.applier, { compression, maxSize: maxLayerSize }, onBlobProgress, signal);
          result = fetched.applied;
          if (fetched.ingested === 'fetched') staged.partials.push(layer);
        }
        release();
        emit(i, 'verifying');
        await stage.applier.settled(signal);
        const lowerDirs = (await Promise.all(complete.slice(0, i).map((c) => c.promise))).reverse();
        emit(i, 'extracting');
        const meta = stage.finish(layer.chainId, result, lowerDirs);
        complete[i]!.resolve(stage.dir);
        const metaTmp = await store.stageLayerMeta(meta);
        staged.temps.push(metaTmp);
        stagedLayers[i] = { tmp: stage.dir, metaTmp, meta };
        emit(i, 'done');
      } finally {
        stage.close(); // after finish() only a no-op; on failure it stops the write pool
      }
    } finally {
      release();
    }
  };

  /**
   * Rootless: the blob is downloaded whole, then the helper in the containers' user namespace
   * unpacks it (so its files get the image's owners through the id map) once the layers below
   * are complete. No unpack while downloading: the helper is another process, reading the blob
   * from the store.
   */
  const stageInNamespace = async (i: number, haveBlob: boolean, source: BlobSource, onBlobProgress: (n: number) => void, release: () => void): Promise<void> => {
    const layer = layers[i]!;
    // The helper's start (a Node process) overlaps the download instead of following it.
    store.ownerNamespace!.warm?.();
    const dir = await store.layerTempDir(layer.chainId);
    staged.temps.push(dir);
    let blob = store.blobPath(layer.digest);
    if (!haveBlob) {
      emit(i, 'downloading');
      const ingested = await store.ingest(layer, { source, onProgress: onBlobProgress, ...(signal ? { signal } : {}), isRetryable: isNetworkError, defer: true });
      if (ingested === 'fetched') {
        staged.partials.push(layer);
        blob = store.partialPath(layer.digest);
      }
    }
    // Waiting for the layers below holds no download slot (as the root path).
    release();
    emit(i, 'verifying');
    const lowerDirs = (await Promise.all(complete.slice(0, i).map((c) => c.promise))).reverse();
    if (signal?.aborted) throw new AbortError('pull aborted', { cause: signal.reason });
    emit(i, 'extracting');
    const meta = await store.ownerNamespace!.stageLayer({ blob, mediaType: layer.mediaType, digest: layer.digest, diffId: layer.diffId, chainId: layer.chainId, dir, lowerDirs, maxSize: maxLayerSize });
    complete[i]!.resolve(dir);
    const metaTmp = await store.stageLayerMeta(meta);
    staged.temps.push(metaTmp);
    stagedLayers[i] = { tmp: dir, metaTmp, meta };
    emit(i, 'done');
  };

  for (let i = 0; i < layers.length; i++) emit(i, 'waiting');
  // Largest first: the first free slots go to the layers that take longest (see WeightedSlots).
  const bySize = layers.map((_, i) => i).sort((a, b) => layers[b]!.size - layers[a]!.size || a - b);
  const running = new Map<number, Promise<void>>();
  for (const i of bySize) {
    running.set(i, task(i).catch((e) => {
      complete[i]!.reject(e);
      throw e;
    }));
  }
  const results = await Promise.allSettled(layers.map((_, i) => running.get(i)!));
  // Report the root cause (the lowest layer that failed): a lower layer's failure makes every
  // layer above it fail too.
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  for (const l of stagedLayers) if (l) staged.layers.push(l);
}

/** Streams a layer blob from the registry into the store and, at the same time, the unpacker. */
async function downloadAndApply(
  store: ContentStore,
  layer: ImageLayerRecord,
  source: BlobSource,
  applier: LayerApplier,
  { compression, maxSize }: { compression: ReturnType<typeof layerCompression>; maxSize: number },
  onProgress: (n: number) => void,
  signal: AbortSignal | undefined,
): Promise<{ applied: { diffId: string; size: number }; ingested: 'cached' | 'fetched' }> {
  const queue = new ChunkQueue();
  const stop = new AbortController();
  const ingestSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const applying = applyLayer(queue, applier, { layer: layer.digest, compression, diffId: layer.diffId, maxSize, ...(signal ? { signal } : {}) }).catch((e) => {
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
      const r = await store.ingest(layer, { source, onData: (c) => queue.push(c), onProgress: (n) => onProgress(n), signal: ingestSignal, isRetryable: isNetworkError, defer: true });
      // Another process stored the blob while we waited for its lock: unpack from the store.
      if (r === 'cached') for await (const c of readFileChunks(store.blobPath(layer.digest))) await queue.push(c);
      queue.end();
      return r;
    } catch (e) {
      queue.fail(e);
      throw e;
    }
  })();
  const [ingested, applied] = await Promise.allSettled([ingesting, applying]);
  // A download that failed on its own (verification, network) explains any unpack failure it
  // caused; a download we aborted because the unpacker refused the content does not.
  if (ingested.status === 'rejected' && !stop.signal.aborted) throw ingested.reason;
  if (applied.status === 'rejected') {
    // The blob is what its digest says, but its content was refused: do not keep it.
    if (ingested.status === 'fulfilled' && ingested.value === 'fetched') await store.discardPartial(layer.digest);
    throw applied.reason;
  }
  if (ingested.status === 'rejected') throw ingested.reason;
  return { applied: applied.value, ingested: ingested.value };
}
