/**
 * What the rootless user-namespace helper process (./userns-worker.ts) and berth say to each
 * other: one JSON object per line each way. Requests carry an id, the replies the same id, so
 * one long-lived helper serves several requests at once (layers of two pulls, an unpack and a
 * removal); their order on the wire means nothing.
 * @internal
 * @module
 */
import type { NamespacedCopyRequest, NamespacedFlattenRequest, NamespacedLayerRequest } from '../image/owner-namespace.js';

export type WorkerRequest =
  | { op: 'stage'; layer: NamespacedLayerRequest; idLimit: number }
  | { op: 'flatten'; flatten: NamespacedFlattenRequest; idLimit: number }
  | { op: 'copy'; copy: NamespacedCopyRequest }
  | { op: 'remove'; paths: string[] };

/** One request line. */
export interface WorkerEnvelope {
  id: number;
  request: WorkerRequest;
}

/** What the helper prints for a request: the result, or the error's class name, message and own fields. */
export type WorkerReply = { id: number } & ({ ok: true; result: unknown } | { ok: false; error: { name: string; message: string; fields: Record<string, unknown> } });

/** The longest line either side accepts: a request names a few paths, a reply a layer's metadata. */
export const MAX_LINE = 1024 * 1024;
