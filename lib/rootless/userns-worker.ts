/**
 * The program the rootless user-namespace helper runs (see ./userns-helper.ts): it is root of
 * a user namespace with the caller's id map, so the files it makes get the image's owners
 * through that map. Reads one JSON request on stdin, writes one JSON line on stdout:
 * `{ ok: true, result }` or `{ ok: false, error }` (the error's class name and fields, rebuilt
 * as the same class by the helper). Not part of the public API.
 * @internal
 * @module
 */
import { closeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { closePrivateRoot, fsOps, openPrivateRoot } from '../image/fs-ops.js';
import { readFileChunks, WRITE_THREADS } from '../image/layer-staging.js';
import { layerCompression } from '../image/manifest.js';
import { applyLayer, LayerApplier } from '../image/unpack.js';
import type { NamespacedFlattenRequest, NamespacedLayerRequest } from '../image/owner-namespace.js';
import type { WorkerRequest } from './userns-protocol.js';

/** In a user namespace only `user.*` xattrs are the namespace root's to set; overlay reads this one with `userxattr`. */
const USERNS_OPAQUE = 'user.overlay.opaque';

async function stageLayer(r: NamespacedLayerRequest, idLimit: number): Promise<unknown> {
  const fs = fsOps();
  const rootFd = openPrivateRoot(r.dir, fs);
  // mknod of a real device is refused in a user namespace: devices become whiteouts (see ApplierOptions.devices).
  const applier = new LayerApplier(rootFd, 'layer', r.digest, fs, { parallel: WRITE_THREADS, devices: false, opaqueXattr: USERNS_OPAQUE, idLimit });
  try {
    const applied = await applyLayer(readFileChunks(r.blob), applier, { layer: r.digest, compression: layerCompression(r.mediaType), maxSize: r.maxSize, ...(r.diffId ? { diffId: r.diffId } : {}) });
    const lowerFds: number[] = [];
    try {
      for (const d of r.lowerDirs) lowerFds.push(fs.fsOpenRoot(d));
      applier.resolveAgainstLowers(lowerFds);
    } finally {
      for (const fd of lowerFds) closeSync(fd);
    }
    applier.finish();
    return { chainId: r.chainId, diffId: applied.diffId, size: applied.size, contentSize: applier.contentBytes };
  } finally {
    applier.abort();
    closePrivateRoot(rootFd, fs);
  }
}

async function flatten(r: NamespacedFlattenRequest, idLimit: number): Promise<unknown> {
  const fs = fsOps();
  const rootFd = openPrivateRoot(r.dir, fs);
  const applier = new LayerApplier(rootFd, 'flatten', r.layers[0]?.digest ?? '', fs, { devices: r.devices, parallel: WRITE_THREADS, idLimit });
  try {
    for (const l of r.layers) {
      applier.nextLayer(l.digest);
      await applyLayer(readFileChunks(l.blob), applier, { layer: l.digest, compression: layerCompression(l.mediaType), diffId: l.diffId, maxSize: r.maxSize });
    }
    applier.finish();
    return null;
  } finally {
    applier.abort();
    closePrivateRoot(rootFd, fs);
  }
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case 'stage':
      return stageLayer(req.layer, req.idLimit);
    case 'flatten':
      return flatten(req.flatten, req.idLimit);
    case 'remove':
      for (const p of req.paths) await rm(p, { recursive: true, force: true });
      return null;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

try {
  const result = await handle(JSON.parse(await readStdin()) as WorkerRequest);
  process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`);
} catch (error) {
  const e = error as Error & Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const k of Object.keys(e)) if (typeof e[k] !== 'object' && typeof e[k] !== 'function') fields[k] = e[k];
  process.stdout.write(`${JSON.stringify({ ok: false, error: { name: e.name, message: e.message, fields } })}\n`);
  process.exitCode = 1;
}
