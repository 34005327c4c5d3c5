/**
 * A step's layer tar -> a blob and an unpacked layer in the content store, exactly as
 * `images.import()` commits one: the tar is hashed while it is written (its digest is its diff
 * id: build layers are stored uncompressed), unpacked and verified under tmp/ against the
 * layers below it, made durable, then published under the layer's lock. A step whose tar holds
 * no entry makes no layer (Docker's `empty_layer`).
 * @module
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../image/content-store.js';
import { chainIds, type ImageLayerRecord } from '../image/image-table.js';
import { readFileChunks, stageLayer } from '../image/layer-staging.js';
import { MediaType } from '../image/manifest.js';

/** Bytes of a tar holding no entry: the two zero blocks of the trailer. */
const EMPTY_TAR = 1024;

/**
 * Writes `tar` into the store as the layer above `parents`.
 * @param lowerDirs the unpacked layer directories below, top first
 * @returns the layer's record, or null for an empty tar
 */
export async function publishLayer(
  store: ContentStore,
  tar: AsyncIterable<Buffer>,
  parents: readonly ImageLayerRecord[],
  lowerDirs: readonly string[],
  signal?: AbortSignal,
): Promise<ImageLayerRecord | null> {
  const staging = await store.stagingDir();
  try {
    const file = join(staging, 'layer.tar');
    const hash = createHash('sha256');
    await pipeline(
      Readable.from(tar),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          hash.update(c);
          yield c;
        }
      },
      createWriteStream(file, { mode: 0o600 }),
      ...(signal ? [{ signal }] : []) as [],
    );
    const size = (await stat(file)).size;
    if (size <= EMPTY_TAR) return null;
    const diffId = `sha256:${hash.digest('hex')}`;
    const chainId = chainIds([...parents.map((p) => p.diffId), diffId]).at(-1)!;
    const layer: ImageLayerRecord = { digest: diffId, size, mediaType: MediaType.OciLayer, diffId, chainId };
    if (!(await store.hasLayer(chainId))) {
      const staged = await stageLayer(store, layer, readFileChunks(file), [...lowerDirs], signal);
      try {
        await store.durable();
        await store.commitBlobFile(file, diffId);
        const lock = await store.lock(`layer-${chainId.slice(7)}`, { signal });
        try {
          if (!(await store.hasLayer(chainId))) await store.commitLayer(staged.dir, staged.meta);
        } finally {
          lock.release();
        }
      } finally {
        await rm(staged.dir, { recursive: true, force: true });
      }
    } else {
      await store.durable();
      await store.commitBlobFile(file, diffId);
    }
    return layer;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
