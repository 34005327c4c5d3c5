/**
 * `docker import`: a tarball of a root file system (plain, gzip or zstd, detected from its
 * first bytes) becomes a one-layer image with a config made from `config` and `changes`.
 * The tarball is staged and hashed, its diff id computed, the layer unpacked and verified in
 * tmp/; only then do blob, layer, config, manifest, record and tag become visible.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { NotFoundError, ValidationError } from '../errors.js';
import { applyConfigChanges } from './config-changes.js';
import type { ContentStore } from './content-store.js';
import { archiveManifest, magicCompression } from './image-archive.js';
import type { ImageRecord, ImageTable, StoredRecord } from './image-table.js';
import { readFileChunks, stageLayer } from './layer-staging.js';
import { hostPlatform, MediaType, parsePlatform, type ContainerConfig, type ImageConfig, type Platform } from './manifest.js';
import { formatReference, parseReference } from './reference.js';
import { LayerTooLargeError } from './errors.js';
import { decompress, maxLayerSizeOption } from './unpack.js';

/** Options of `rt.images.import()`. */
export interface ImportOptions {
  /** Tag for the new image (`name[:tag]`, `latest` when no tag). Default: none (the image is dangling, as with `docker import` without a repository). */
  ref?: string;
  /** Runtime defaults of the image (Docker's `Config`: Cmd, Env, WorkingDir, User, …). Default `{}`. */
  config?: ContainerConfig;
  /** Dockerfile instructions applied after `config`, as `docker import --change`: `CMD ["sh"]`, `ENV A=b`, `WORKDIR /app`, … Default none. */
  changes?: readonly string[];
  /** The history comment. Default `Imported from <path>` (`-` for a stream), as Docker writes. */
  message?: string;
  /** `os/arch[/variant]` recorded in the config. Default the host's. */
  platform?: string | Platform;
  signal?: AbortSignal;
  /**
   * Refuse a tarball whose size, compressed or uncompressed, passes this many bytes
   * (`LayerTooLargeError`): the defence against decompression bombs. Default the runtime's
   * `maxLayerSize` (64 GiB).
   */
  maxLayerSize?: number;
}

const LAYER_TYPE = { none: MediaType.OciLayer, gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd } as const;

/** Validates the options that do not need the tarball; throws before anything is read. */
export function prepareImport(options: ImportOptions): { tag?: string; config: ContainerConfig; platform: Platform } {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  let tag: string | undefined;
  if (options.ref !== undefined) {
    const ref = parseReference(options.ref, 'ref');
    if (ref.digest !== undefined) throw new ValidationError('ref', 'an imported image cannot be named by digest; give name[:tag]');
    tag = formatReference(ref);
  }
  if (options.config !== undefined && (typeof options.config !== 'object' || options.config === null || Array.isArray(options.config))) throw new ValidationError('config', 'must be an object (Docker\'s Config: Cmd, Env, …)');
  if (options.changes !== undefined && !Array.isArray(options.changes)) throw new ValidationError('changes', 'must be an array of Dockerfile instructions');
  if (options.message !== undefined && typeof options.message !== 'string') throw new ValidationError('message', 'must be a string');
  const config = applyConfigChanges(options.config ?? {}, options.changes ?? []);
  const platform = options.platform !== undefined ? parsePlatform(options.platform) : hostPlatform();
  return { ...(tag ? { tag } : {}), config, platform };
}

export async function importRootfs(store: ContentStore, table: ImageTable, input: Readable | AsyncIterable<Uint8Array> | string, options: ImportOptions): Promise<ImageRecord> {
  const { tag, config: containerConfig, platform } = prepareImport(options);
  const { signal } = options;
  const limit = maxLayerSizeOption(options.maxLayerSize);
  const staging = await store.stagingDir();
  let stagedDir: string | undefined;
  try {
    // 1. The tarball, hashed as it is copied.
    const blobFile = join(staging, 'layer');
    const hash = createHash('sha256');
    let size = 0;
    let head = Buffer.alloc(0);
    const fd = openSync(blobFile, 'wx', 0o600);
    try {
      let source: AsyncIterable<Uint8Array>;
      if (typeof input === 'string') {
        const stream = createReadStream(input);
        await new Promise<void>((resolve, reject) => {
          stream.once('open', () => resolve());
          stream.once('error', (e) => reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? new NotFoundError(`rootfs tarball ${input} does not exist`, { path: input, cause: e }) : e));
        });
        source = stream;
      } else {
        source = input;
      }
      for await (const raw of source) {
        signal?.throwIfAborted();
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
        if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        hash.update(chunk);
        size += chunk.length;
        if (size > limit) throw new LayerTooLargeError(typeof input === 'string' ? input : 'rootfs tarball', limit);
      }
    } finally {
      closeSync(fd);
    }
    if (size === 0) throw new ValidationError('rootfsTar', 'is empty');
    const blobDigest = `sha256:${hash.digest('hex')}`;
    const compression = magicCompression(head);
    const mediaType = LAYER_TYPE[compression];

    // 2. The diff id (the uncompressed tar's digest) names the layer.
    const diffHash = createHash('sha256');
    for await (const c of decompress(readFileChunks(blobFile), compression, { layer: blobDigest, limit })) {
      signal?.throwIfAborted();
      diffHash.update(c);
    }
    const diffId = `sha256:${diffHash.digest('hex')}`;
    const chainId = diffId;

    // 3. Unpack (refusing escapes, verifying the tar) unless the store has this layer already.
    let meta;
    if (!(await store.hasLayer(chainId))) {
      const s = await stageLayer(store, { digest: blobDigest, mediaType, diffId, chainId }, readFileChunks(blobFile), [], signal, limit);
      stagedDir = s.dir;
      meta = s.meta;
    }

    const now = new Date().toISOString();
    const imageConfig: ImageConfig = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      created: now,
      config: containerConfig,
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: now, comment: options.message ?? `Imported from ${typeof input === 'string' ? input : '-'}` }],
    };
    const configBytes = Buffer.from(JSON.stringify(imageConfig));
    const layer = { digest: blobDigest, size, mediaType, diffId, chainId };
    const configDigest = await store.putBlob(configBytes);
    const manifestBytes = archiveManifest({ digest: configDigest, size: configBytes.length }, [layer]);

    // 4. Durable, then visible in dependency order.
    await store.durable();
    await store.commitBlobFile(blobFile, blobDigest);
    const manifestDigest = await store.putBlob(manifestBytes);
    if (stagedDir !== undefined && meta !== undefined) {
      const lock = await store.lock(`layer-${chainId.slice(7)}`, { signal });
      try {
        await store.commitLayer(stagedDir, meta);
        stagedDir = undefined;
      } finally {
        lock.release();
      }
    }
    await store.durable();
    const record: StoredRecord = {
      id: configDigest, manifestDigest, mediaType: MediaType.OciManifest, configDigest,
      platform: { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}) },
      layers: [layer], pulledAt: now,
    };
    await table.writeRecord(record);
    if (tag) await table.updateRefs((refs) => void (refs.tags[tag] = manifestDigest));
    return table.withRefs(record, await table.readRefs());
  } finally {
    if (stagedDir !== undefined) await store.removeTree(stagedDir);
    await rm(staging, { recursive: true, force: true });
  }
}
