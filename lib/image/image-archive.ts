/**
 * `docker save` / `docker load` archives. What `save` writes is, like Docker ≥ 25's, two
 * formats in one tar:
 *
 *   blobs/sha256/<diff id>      each layer, uncompressed (so a blob's digest is its diff id)
 *   blobs/sha256/<config>       the image config, byte for byte (the image id survives)
 *   blobs/sha256/<manifest>     an OCI manifest over those blobs
 *   index.json, oci-layout      the OCI image layout (one descriptor per tag, containerd's
 *                               `io.containerd.image.name` + `org.opencontainers.image.ref.name`)
 *   manifest.json, repositories the docker-save format (`Config`, `RepoTags`, `Layers`)
 *
 * `load` reads either (and older docker-save archives: `<id>/layer.tar`, symlinked duplicate
 * layers; a gzip- or zstd-compressed archive): every member is staged under tmp/ and hashed as
 * it streams in (a `blobs/sha256/<hex>` member that does not hash to its name is refused at
 * once), then every layer is unpacked into tmp/ and its diff id checked, and only when all of
 * that succeeded do blobs, layers, records and tags become visible.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, ValidationError, isSystemError } from '../errors.js';
import type { ContentStore } from './content-store.js';
import { DigestMismatchError, ImageFormatError, LayerTooLargeError, SizeMismatchError } from './errors.js';
import { chainIds, isIdLike, type ImageLayerRecord, type ImageRecord, type ImageTable, type StoredRecord } from './image-table.js';
import { readFileChunks, stageLayer, type StagedLayer } from './layer-staging.js';
import {
  hostPlatform, layerCompression, MediaType, parseImageConfig, parseManifest, selectPlatform,
  type Descriptor, type ImageConfig, type LayerCompression, type Platform,
} from './manifest.js';
import { familiarName, formatReference, parseReference } from './reference.js';
import { TarFormatError, TarReader, type TarHeader, type TarSink } from './tar-reader.js';
import { tarHeader, tarPadding, tarTrailer } from './tar-writer.js';
import { decompress, DEFAULT_MAX_LAYER_SIZE, type DecompressOptions } from './unpack.js';

const MAX_JSON_BYTES = 16 * 1024 * 1024;
const OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}';
const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The OCI manifest `save` writes for an image (and `load` rebuilds for a docker-save entry). */
export function archiveManifest(config: { digest: string; size: number }, layers: Array<{ mediaType: string; digest: string; size: number }>): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  }));
}

// ---- save ----------------------------------------------------------------------------------

/** One image to save and the tags (canonical) to name it by in the archive. */
export interface SaveTarget {
  record: ImageRecord;
  tags: string[];
}

/**
 * Which images and tags `refs` name, as `docker save` reads them: `name:tag` (that tag),
 * `name` alone (every tag of the repository), an id or `name@digest` (the image, untagged).
 */
export async function resolveSaveTargets(table: ImageTable, refs: string[]): Promise<SaveTarget[]> {
  const refTable = await table.readRefs();
  const byDigest = new Map<string, SaveTarget>();
  const add = async (manifestDigest: string, tag?: string) => {
    let t = byDigest.get(manifestDigest);
    if (!t) {
      const stored = await table.readRecord(manifestDigest);
      if (!stored) throw new NotFoundError(`image ${manifestDigest} not found (its record is missing)`);
      t = { record: table.withRefs(stored, refTable), tags: [] };
      byDigest.set(manifestDigest, t);
    }
    if (tag !== undefined && !t.tags.includes(tag)) t.tags.push(tag);
  };
  for (const [i, ref] of refs.entries()) {
    if (typeof ref !== 'string' || ref === '') throw new ValidationError(`refs[${i}]`, 'must be an image reference or id');
    if (isIdLike(ref)) {
      await add(await table.resolve(ref, refTable));
      continue;
    }
    const parsed = parseReference(ref, `refs[${i}]`);
    if (parsed.digest !== undefined) {
      await add(await table.resolve(ref, refTable));
      continue;
    }
    const nameOnly = !ref.slice(ref.lastIndexOf('/') + 1).includes(':');
    if (nameOnly) {
      const tags = Object.keys(refTable.tags).filter((t) => parseReference(t).name === parsed.name).sort();
      if (tags.length === 0) throw new NotFoundError(`no image of repository ${familiarName({ ...parsed, tag: undefined } as typeof parsed)} in the store`);
      for (const t of tags) await add(refTable.tags[t]!, t);
      continue;
    }
    await add(await table.resolve(ref, refTable), formatReference(parsed));
  }
  return [...byDigest.values()];
}

function* member(name: string, body: Buffer): Generator<Buffer> {
  yield tarHeader({ name, type: 'file', size: body.length });
  yield body;
  yield tarPadding(body.length);
}

/** The archive's bytes, member by member. Layers are decompressed from the store as they go. */
export async function* saveArchive(store: ContentStore, targets: SaveTarget[], signal?: AbortSignal): AsyncGenerator<Buffer> {
  yield tarHeader({ name: 'blobs/', type: 'dir' });
  yield tarHeader({ name: 'blobs/sha256/', type: 'dir' });
  const written = new Map<string, number>(); // diff id -> tar size
  const manifestItems: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const descriptors: Descriptor[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { record, tags } of targets) {
    for (const layer of record.layers) {
      signal?.throwIfAborted();
      if (written.has(layer.diffId)) continue;
      const compression = layerCompression(layer.mediaType);
      const blob = store.blobPath(layer.digest);
      if (!(await store.hasBlob(layer.digest))) throw new NotFoundError(`blob ${layer.digest} of image ${record.id} is missing from the store; pull the image again`, { path: blob });
      let size = compression === 'none' ? await store.blobSize(layer.digest) : (await store.layerMeta(layer.chainId))?.size;
      if (size === undefined) {
        size = 0; // the layer was unpacked by an old version that did not record it: count first
        for await (const c of decompress(readFileChunks(blob), compression)) size += c.length;
      }
      yield tarHeader({ name: `blobs/sha256/${layer.diffId.slice(7)}`, type: 'file', size });
      const hash = createHash('sha256');
      let n = 0;
      for await (const chunk of decompress(readFileChunks(blob), compression)) {
        n += chunk.length;
        if (n > size) throw new SizeMismatchError(size, n, `stored layer ${layer.digest} (uncompressed)`);
        hash.update(chunk);
        yield chunk;
      }
      if (n !== size) throw new SizeMismatchError(size, n, `stored layer ${layer.digest} (uncompressed)`);
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== layer.diffId) throw new DigestMismatchError(layer.diffId, actual, `stored layer ${layer.digest} (uncompressed)`);
      yield tarPadding(size);
      written.set(layer.diffId, size);
    }
    const config = await store.readBlob(record.configDigest);
    yield* member(`blobs/sha256/${record.configDigest.slice(7)}`, config);
    const manifest = archiveManifest(
      { digest: record.configDigest, size: config.length },
      record.layers.map((l) => ({ mediaType: MediaType.OciLayer, digest: l.diffId, size: written.get(l.diffId)! })),
    );
    const manifestDigest = sha256(manifest);
    yield* member(`blobs/sha256/${manifestDigest.slice(7)}`, manifest);
    const platform: Platform = { architecture: record.platform.architecture, os: record.platform.os, ...(record.platform.variant ? { variant: record.platform.variant } : {}) };
    const base = { mediaType: MediaType.OciManifest, digest: manifestDigest, size: manifest.length, platform };
    if (tags.length === 0) descriptors.push(base);
    for (const t of tags) {
      const ref = parseReference(t);
      descriptors.push({ ...base, annotations: { [ANNOTATION_IMAGE_NAME]: formatReference(ref), [ANNOTATION_REF_NAME]: ref.tag! } });
      const repo = familiarName({ ...ref, tag: undefined } as typeof ref);
      (repositories[repo] ??= {})[ref.tag!] = record.layers.at(-1)?.diffId.slice(7) ?? '';
    }
    manifestItems.push({
      Config: `blobs/sha256/${record.configDigest.slice(7)}`,
      RepoTags: tags.length > 0 ? tags.map((t) => familiarName(parseReference(t))) : null,
      Layers: record.layers.map((l) => `blobs/sha256/${l.diffId.slice(7)}`),
    });
  }
  yield* member('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: descriptors })));
  yield* member('manifest.json', Buffer.from(`${JSON.stringify(manifestItems)}\n`));
  if (Object.keys(repositories).length > 0) yield* member('repositories', Buffer.from(`${JSON.stringify(repositories)}\n`));
  yield* member('oci-layout', Buffer.from(OCI_LAYOUT));
  yield tarTrailer();
}

// ---- load ----------------------------------------------------------------------------------

interface StagedFile {
  /** Path of the staged copy. */
  file: string;
  size: number;
  digest: string;
}

function archiveError(message: string, cause?: unknown): ImageFormatError {
  return new ImageFormatError('ERR_IMAGE_FORMAT', `image archive: ${message}`, undefined, cause === undefined ? {} : { cause });
}

/** Normalises a member name or link target inside the archive; undefined if it leaves it. */
function archivePath(raw: string, base = ''): string | undefined {
  if (raw.includes('\0')) return undefined;
  const parts = raw.startsWith('/') ? [] : base.split('/').filter((p) => p !== '');
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    parts.push(p);
  }
  return parts.join('/');
}

/** Writes every regular member to its own file under `dir`, hashing as it goes. */
class StagingSink implements TarSink {
  readonly files = new Map<string, StagedFile>();
  readonly links = new Map<string, string>();
  private fd = -1;
  private hash: Hash | undefined;
  private name = '';
  private size = 0;
  private n = 0;

  constructor(private readonly dir: string, private readonly maxMember: number) {}

  entry(h: TarHeader): void {
    const name = archivePath(h.name);
    if (name === undefined || h.name.startsWith('/')) throw archiveError(`member ${JSON.stringify(h.name)} has an unsafe name`);
    if (h.type === 'file') {
      // Refused on the header's word, before a byte is staged: a member is a layer (or JSON).
      if (h.size > this.maxMember) throw new LayerTooLargeError(`image archive member ${name}`, this.maxMember);
      this.name = name;
      this.size = 0;
      this.hash = createHash('sha256');
      this.fd = openSync(join(this.dir, `m${this.n++}`), 'wx', 0o600);
    } else if (h.type === 'symlink' || h.type === 'link') {
      // Older docker-save archives link duplicate layers (`<id>/layer.tar -> ../<other>/layer.tar`).
      const target = h.type === 'symlink' ? archivePath(h.linkname, name.split('/').slice(0, -1).join('/')) : archivePath(h.linkname);
      if (target === undefined || h.linkname.startsWith('/')) throw archiveError(`member ${JSON.stringify(h.name)} links outside the archive (${JSON.stringify(h.linkname)})`);
      this.links.set(name, target);
    }
  }

  data(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    this.hash!.update(chunk);
    this.size += chunk.length;
  }

  entryEnd(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
    const digest = `sha256:${this.hash!.digest('hex')}`;
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(this.name);
    if (m && `sha256:${m[1]}` !== digest) throw new DigestMismatchError(`sha256:${m[1]}`, digest, `image archive member ${this.name}`);
    this.files.set(this.name, { file: join(this.dir, `m${this.n - 1}`), size: this.size, digest });
  }

  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  lookup(name: string): StagedFile | undefined {
    let p: string | undefined = archivePath(name);
    for (let hops = 0; p !== undefined && hops < 16; hops++) {
      const f = this.files.get(p);
      if (f) return f;
      p = this.links.get(p);
    }
    return undefined;
  }
}

function compressionOfFile(path: string): LayerCompression {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    const n = readSync(fd, b, 0, 4, 0);
    return magicCompression(b.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/** gzip (1f 8b), zstd (28 b5 2f fd), else uncompressed. */
export function magicCompression(head: Buffer): LayerCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

const LAYER_TYPE: Record<LayerCompression, string> = { none: MediaType.OciLayer, gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd };

/** The first chunk and the rest again, after peeking at the first for a compression magic. */
export async function* sniffedDecompress(source: AsyncIterable<Buffer>, options: DecompressOptions = {}): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length < 4) {
    const more = await it.next();
    if (more.done) break;
    first = { done: false, value: Buffer.concat([first.value, more.value]) };
  }
  if (first.done) return;
  const head = first.value;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  yield* decompress(all(), magicCompression(head), options);
}

/** One image the archive holds, checked and ready to commit. */
interface LoadPlan {
  config: ImageConfig;
  configBytes: Buffer;
  configDigest: string;
  manifestBytes: Buffer;
  manifestDigest: string;
  mediaType: string;
  platform: Platform;
  layers: Array<{ record: ImageLayerRecord; file: StagedFile }>;
  tags: string[];
}

function readJsonMember(sink: StagingSink, name: string): { bytes: Buffer; value: unknown } | undefined {
  const f = sink.lookup(name);
  if (!f) return undefined;
  if (f.size > MAX_JSON_BYTES) throw archiveError(`${name} is ${f.size} bytes, more than ${MAX_JSON_BYTES}`);
  const bytes = Buffer.alloc(f.size);
  const fd = openSync(f.file, 'r');
  try {
    let off = 0;
    while (off < f.size) {
      const n = readSync(fd, bytes, off, f.size - off, off);
      if (n === 0) break;
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  try {
    return { bytes, value: JSON.parse(bytes.toString('utf8')) };
  } catch (e) {
    throw archiveError(`${name} is not valid JSON: ${(e as Error).message}`, e);
  }
}

function needMember(sink: StagingSink, name: string, what: string): StagedFile {
  const f = sink.lookup(name);
  if (!f) throw archiveError(`${what} ${JSON.stringify(name)} is not in the archive`);
  return f;
}

function planFromParts(configFile: { bytes: Buffer; digest: string }, configMediaType: string, layerFiles: Array<{ file: StagedFile; mediaType: string; descriptorSize?: number }>, tags: string[], manifest?: { bytes: Buffer; digest: string; mediaType: string }): LoadPlan {
  const config = parseImageConfig(configFile.bytes, configMediaType, layerFiles.length);
  const diffIds = config.rootfs.diff_ids;
  const chains = chainIds(diffIds);
  const layers = layerFiles.map((l, i) => {
    if (l.descriptorSize !== undefined && l.descriptorSize !== l.file.size) throw new SizeMismatchError(l.descriptorSize, l.file.size, `image archive layer ${l.file.digest}`);
    return { record: { digest: l.file.digest, size: l.file.size, mediaType: l.mediaType, diffId: diffIds[i]!, chainId: chains[i]! }, file: l.file };
  });
  const manifestBytes = manifest?.bytes ?? archiveManifest({ digest: configFile.digest, size: configFile.bytes.length }, layers.map((l) => l.record));
  return {
    config, configBytes: configFile.bytes, configDigest: configFile.digest, manifestBytes, manifestDigest: manifest?.digest ?? sha256(manifestBytes),
    mediaType: manifest?.mediaType ?? MediaType.OciManifest,
    platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
    layers, tags,
  };
}

function canonicalTag(ref: string, what: string): string {
  try {
    const parsed = parseReference(ref);
    if (parsed.digest !== undefined) throw archiveError(`${what} ${JSON.stringify(ref)} is not a tag`);
    return formatReference(parsed);
  } catch (e) {
    if (e instanceof ImageFormatError) throw e;
    throw archiveError(`${what} ${JSON.stringify(ref)} is not a valid reference: ${(e as Error).message}`, e);
  }
}

/** docker-save: `manifest.json` = [{ Config, RepoTags, Layers }]. */
function dockerPlans(sink: StagingSink, value: unknown): LoadPlan[] {
  if (!Array.isArray(value)) throw archiveError('manifest.json is not a JSON array');
  return value.map((item: unknown, i) => {
    const where = `manifest.json[${i}]`;
    if (typeof item !== 'object' || item === null) throw archiveError(`${where} is not an object`);
    const { Config, RepoTags, Layers } = item as Record<string, unknown>;
    if (typeof Config !== 'string') throw archiveError(`${where}.Config is not a string`);
    if (!Array.isArray(Layers) || Layers.some((l) => typeof l !== 'string')) throw archiveError(`${where}.Layers is not an array of strings`);
    if (RepoTags !== undefined && RepoTags !== null && (!Array.isArray(RepoTags) || RepoTags.some((t) => typeof t !== 'string'))) throw archiveError(`${where}.RepoTags is not an array of strings`);
    const configJson = readJsonMember(sink, Config);
    if (!configJson) throw archiveError(`${where}.Config ${JSON.stringify(Config)} is not in the archive`);
    const layerFiles = (Layers as string[]).map((l) => {
      const file = needMember(sink, l, `${where} layer`);
      return { file, mediaType: LAYER_TYPE[compressionOfFile(file.file)] };
    });
    const tags = ((RepoTags as string[] | null | undefined) ?? []).map((t) => canonicalTag(t, `${where}.RepoTags`));
    return planFromParts({ bytes: configJson.bytes, digest: sha256(configJson.bytes) }, MediaType.OciConfig, layerFiles, tags);
  });
}

function blobOf(sink: StagingSink, desc: Descriptor, what: string): StagedFile {
  const f = needMember(sink, `blobs/sha256/${desc.digest.slice(7)}`, what);
  if (f.size !== desc.size) throw new SizeMismatchError(desc.size, f.size, `image archive ${what} ${desc.digest}`);
  return f;
}

function readBlobMember(sink: StagingSink, desc: Descriptor, what: string): Buffer {
  blobOf(sink, desc, what);
  return readJsonMember(sink, `blobs/sha256/${desc.digest.slice(7)}`)!.bytes;
}

/** The tag an OCI index descriptor names, when it names a repository (not just a tag). */
function descriptorTag(desc: Descriptor): string | undefined {
  const full = desc.annotations?.[ANNOTATION_IMAGE_NAME];
  if (full) return canonicalTag(full, `index.json ${ANNOTATION_IMAGE_NAME}`);
  const refName = desc.annotations?.[ANNOTATION_REF_NAME];
  // A bare `latest` or `v1` is only a tag with no repository to attach it to: such an image
  // loads untagged. `name:tag` (as skopeo writes for `oci-archive:f.tar:name:tag`) is a reference.
  if (refName && /[:/]/.test(refName)) {
    try {
      return canonicalTag(refName, `index.json ${ANNOTATION_REF_NAME}`);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** OCI image layout: `index.json` -> manifests (or indexes, for which the host's platform is chosen). */
function ociPlans(sink: StagingSink, index: { bytes: Buffer }): LoadPlan[] {
  let parsed;
  try {
    parsed = parseManifest(index.bytes, MediaType.OciIndex);
  } catch (e) {
    throw archiveError(`index.json: ${(e as Error).message}`, e);
  }
  if (parsed.kind !== 'index') throw archiveError('index.json is not an image index');
  const plans: LoadPlan[] = [];
  for (const outer of parsed.manifests) {
    let desc = outer;
    if (desc.mediaType === MediaType.OciIndex || desc.mediaType === MediaType.DockerManifestList) {
      const inner = parseManifest(readBlobMember(sink, desc, 'index'), desc.mediaType);
      if (inner.kind !== 'index') throw archiveError(`${desc.digest} is not an index`);
      desc = selectPlatform(inner, hostPlatform());
    }
    if (desc.mediaType !== MediaType.OciManifest && desc.mediaType !== MediaType.DockerManifest) continue; // artifacts, attestations
    const bytes = readBlobMember(sink, desc, 'manifest');
    const m = parseManifest(bytes, desc.mediaType);
    if (m.kind !== 'manifest') throw archiveError(`${desc.digest} is not an image manifest`);
    const configBytes = readBlobMember(sink, m.config, 'config');
    const layerFiles = m.layers.map((l) => {
      layerCompression(l.mediaType);
      return { file: blobOf(sink, l, 'layer'), mediaType: l.mediaType, descriptorSize: l.size };
    });
    const tag = descriptorTag(outer);
    plans.push(planFromParts({ bytes: configBytes, digest: m.config.digest }, m.config.mediaType, layerFiles, tag ? [tag] : [], { bytes, digest: desc.digest, mediaType: m.mediaType }));
  }
  return plans;
}

async function verifyDiffId(file: StagedFile, mediaType: string, diffId: string, limit: number, signal?: AbortSignal): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of decompress(readFileChunks(file.file), layerCompression(mediaType), { layer: file.digest, limit })) {
    signal?.throwIfAborted();
    hash.update(chunk);
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== diffId) throw new DigestMismatchError(diffId, actual, `image archive layer ${file.digest} (uncompressed content, diff id)`);
}

/**
 * Loads every image of an archive into the store. Returns the records in archive order.
 * The caller holds the `gc` lock shared. `maxLayerSize` caps each layer's uncompressed
 * content, each member, and the decompressed stream of a compressed archive.
 */
export async function loadArchive(store: ContentStore, table: ImageTable, input: AsyncIterable<Buffer>, signal?: AbortSignal, maxLayerSize = DEFAULT_MAX_LAYER_SIZE): Promise<ImageRecord[]> {
  const staging = await store.stagingDir();
  const staged: StagedLayer[] = [];
  const metaFiles: string[] = [];
  try {
    const sink = new StagingSink(staging, maxLayerSize);
    const reader = new TarReader(sink);
    try {
      for await (const chunk of sniffedDecompress(input, { layer: 'image archive', limit: maxLayerSize })) {
        signal?.throwIfAborted();
        reader.write(chunk);
      }
      reader.end();
    } catch (e) {
      sink.abort();
      if (e instanceof TarFormatError) throw archiveError(e.message, e);
      const code = (e as { code?: string }).code;
      if ((isSystemError(e) && (e.syscall === 'zstd' || e.syscall === 'gzip')) || code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') throw archiveError(`decompression failed: ${(e as Error).message}`, e);
      throw e;
    }

    const dockerManifest = readJsonMember(sink, 'manifest.json');
    const index = readJsonMember(sink, 'index.json');
    let plans: LoadPlan[];
    if (dockerManifest) plans = dockerPlans(sink, dockerManifest.value);
    else if (index) plans = ociPlans(sink, index);
    else throw archiveError('neither manifest.json (docker save) nor index.json (OCI image layout) is in the archive');
    if (plans.length === 0) throw archiveError('the archive holds no image');

    // Unpack and verify every layer the store does not have, into tmp/.
    const stagedByChain = new Map<string, string>();
    const verifiedBlobs = new Set<string>();
    for (const plan of plans) {
      const below: string[] = [];
      for (const { record, file } of plan.layers) {
        let dir: string | undefined = stagedByChain.get(record.chainId);
        if (dir === undefined && (await store.hasLayer(record.chainId))) {
          dir = store.layerDir(record.chainId);
          // The store's layer is right by construction (same chain id); the archive's blob,
          // which becomes this image's blob, must be too.
          if (!verifiedBlobs.has(`${file.digest} ${record.diffId}`)) await verifyDiffId(file, record.mediaType, record.diffId, maxLayerSize, signal);
        }
        if (dir === undefined) {
          const s = await stageLayer(store, record, readFileChunks(file.file), [...below].reverse(), signal, maxLayerSize);
          staged.push(s);
          dir = s.dir;
          stagedByChain.set(record.chainId, dir);
        }
        verifiedBlobs.add(`${file.digest} ${record.diffId}`);
        below.push(dir);
      }
    }

    // Everything verified: make it durable (one syncfs), then visible, blobs and layers before
    // the records that name them.
    for (const s of staged) metaFiles.push(await store.stageLayerMeta(s.meta));
    await store.durable();
    for (const plan of plans) {
      for (const { file } of plan.layers) await store.commitBlobFile(file.file, file.digest).catch(async (e) => {
        if (!(await store.hasBlob(file.digest))) throw e;
      });
      await store.putBlob(plan.configBytes, { digest: plan.configDigest });
      await store.putBlob(plan.manifestBytes, { digest: plan.manifestDigest });
    }
    for (const [i, s] of staged.entries()) {
      const lock = await store.lock(`layer-${s.meta.chainId.slice(7)}`, { signal });
      try {
        await store.publishLayer(s.dir, metaFiles[i]!, s.meta);
      } finally {
        lock.release();
      }
    }
    staged.length = 0;
    metaFiles.length = 0;
    await store.durable();
    const pulledAt = new Date().toISOString();
    for (const plan of plans) {
      const record: StoredRecord = {
        id: plan.configDigest, manifestDigest: plan.manifestDigest, mediaType: plan.mediaType, configDigest: plan.configDigest,
        platform: plan.platform, layers: plan.layers.map((l) => l.record), pulledAt,
      };
      await table.writeRecord(record);
    }
    await table.updateRefs((refs) => {
      for (const plan of plans) for (const t of plan.tags) refs.tags[t] = plan.manifestDigest;
    });
    const refs = await table.readRefs();
    const out: ImageRecord[] = [];
    const seen = new Set<string>();
    for (const plan of plans) {
      if (seen.has(plan.manifestDigest)) continue;
      seen.add(plan.manifestDigest);
      const stored = await table.readRecord(plan.manifestDigest);
      if (stored) out.push(table.withRefs(stored, refs));
    }
    return out;
  } finally {
    for (const s of staged) await store.removeTree(s.dir);
    for (const m of metaFiles) await rm(m, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}
