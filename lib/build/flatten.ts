/**
 * A stage's (or image's) layers flattened into one directory, for `RUN --mount=type=bind,from=`:
 * a bind mount needs one host directory, and the layers are several. The merged view is
 * streamed as a tar (`mergedArchive`: whiteouts applied, read confined) into the unpacker's
 * flatten mode (confined writes, no devices), under the build's scratch dir.
 * @module
 */
import { closeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { mergedArchive } from '../storage/rootfs-archive.js';
import type { ContentStore } from '../image/content-store.js';
import { LayerApplier, applyLayer } from '../image/unpack.js';

export async function flattenLayers(store: ContentStore, lowerDirs: readonly string[], dest: string, signal?: AbortSignal): Promise<void> {
  await mkdir(dest, { recursive: true, mode: 0o755 });
  const fs = store.fs;
  const rootFd = fs.fsOpenRoot(dest);
  try {
    const applier = new LayerApplier(rootFd, 'flatten', 'stage', fs, { devices: false });
    await applyLayer(mergedArchive([...lowerDirs], signal), applier, { layer: 'stage', compression: 'none', ...(signal ? { signal } : {}) });
    applier.finish();
  } finally {
    closeSync(rootFd);
  }
}
