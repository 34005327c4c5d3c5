/**
 * The one request the rootless user-namespace helper process takes (./userns-worker.ts).
 * @internal
 * @module
 */
import type { NamespacedFlattenRequest, NamespacedLayerRequest } from '../image/owner-namespace.js';

export type WorkerRequest =
  | { op: 'stage'; layer: NamespacedLayerRequest; idLimit: number }
  | { op: 'flatten'; flatten: NamespacedFlattenRequest; idLimit: number }
  | { op: 'remove'; paths: string[] };

/** What the helper prints: the result, or the error's class name, message and own fields. */
export type WorkerReply = { ok: true; result: unknown } | { ok: false; error: { name: string; message: string; fields: Record<string, unknown> } };
