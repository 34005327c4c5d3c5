/**
 * Where layer trees are written when this process cannot give their files the image's owners:
 * berth without root. A layer's files belong to container ids (root, `www-data` 33, ...) that
 * only a user namespace with the subordinate map can hold, so a helper process inside that
 * namespace unpacks, flattens and removes them (`rootless/userns-helper.ts` implements this; the
 * runtime passes it in, as it passes the builder, since `image/` sits below `rootless/`).
 * A root process has none and writes the trees itself.
 * @module
 */
import type { LayerMeta } from './content-store.js';

/** One layer blob to unpack in layer mode into `dir` (a fresh directory of the store's tmp/). */
export interface NamespacedLayerRequest {
  blob: string;
  mediaType: string;
  digest: string;
  diffId?: string;
  chainId: string;
  dir: string;
  /** The layers below, top first (committed or staged). */
  lowerDirs: string[];
  maxSize: number;
}

/** An image's layer blobs flattened into `dir` (`images.unpack`). */
export interface NamespacedFlattenRequest {
  layers: Array<{ blob: string; mediaType: string; digest: string; diffId: string }>;
  dir: string;
  maxSize: number;
  devices: boolean;
}

/**
 * An image's stored layer dirs (top first) whose merged view is copied into `dir`
 * (`images.unpack` when every layer is in the store, as root does in ./flatten-copy.ts).
 */
export interface NamespacedCopyRequest {
  layerDirs: string[];
  dir: string;
  devices: boolean;
  /** Names the image in errors. */
  image: string;
}

/** See the module comment. Every method rejects with the typed error the helper met. */
export interface OwnerNamespace {
  /** Unpacks one layer as `stageLayer` does and returns its metadata. */
  stageLayer(request: NamespacedLayerRequest): Promise<LayerMeta>;
  /** Flattens layers into a directory, as `images.unpack` does. */
  flatten(request: NamespacedFlattenRequest): Promise<void>;
  /** Copies the merged view of stored layer dirs into a directory, as `images.unpack` does as root. */
  copyLayers(request: NamespacedCopyRequest): Promise<void>;
  /** Starts the helper ahead of the first request (a pull calls it before its downloads), when that saves time. */
  warm?(): void;
  /** Removes trees whose files may belong to other container ids (`rm -rf` each; absent paths are fine). */
  removeTrees(paths: string[]): Promise<void>;
}
