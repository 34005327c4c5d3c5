/**
 * The built image into the store: config and manifest blobs, the image record, then the tags,
 * in that order, so a reader never sees a tag without its image. The layers are in the store
 * already (published by each step, see `layer-publish.ts`, or the base image's).
 * @module
 */
import { archiveManifest } from '../image/image-archive.js';
import type { ContentStore } from '../image/content-store.js';
import type { ImageLayerRecord, ImageTable, StoredRecord } from '../image/image-table.js';
import { MediaType, type ImageConfig, type Platform } from '../image/manifest.js';

/** Writes config, manifest, record and tags; returns the stored record. */
export async function publishImage(
  store: ContentStore,
  table: ImageTable,
  config: ImageConfig,
  layers: readonly ImageLayerRecord[],
  platform: Platform,
  tags: readonly string[],
): Promise<StoredRecord> {
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await store.putBlob(configBytes);
  const manifestBytes = archiveManifest({ digest: configDigest, size: configBytes.length }, [...layers]);
  const manifestDigest = await store.putBlob(manifestBytes);
  await store.durable();
  const record: StoredRecord = {
    id: configDigest, manifestDigest, mediaType: MediaType.OciManifest, configDigest,
    platform: { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}) },
    layers: [...layers], pulledAt: config.created ?? new Date().toISOString(),
  };
  await table.writeRecord(record);
  if (tags.length > 0) {
    await table.updateRefs((refs) => {
      for (const t of tags) refs.tags[t] = manifestDigest;
    });
  }
  return record;
}
