/**
 * The program the rootless user-namespace helper runs (see ./userns-helper.ts): it is root of
 * a user namespace with the caller's id map, so the files it makes get the image's owners
 * through that map. It lives as long as berth keeps it (a runtime's pulls, unpacks and
 * removals): it reads one JSON request per line on stdin and writes one reply line per request
 * on stdout, `{ id, ok: true, result }` or `{ id, ok: false, error }` (the error's class name
 * and fields, rebuilt as the same class by berth). Requests run concurrently; each has its own
 * descriptors and write pool, so a failed one leaves nothing behind in this process. End of
 * file on stdin (berth let go of it, or died) ends it once the requests in flight are answered.
 * Not part of the public API.
 * @internal
 * @module
 */
import { closeSync } from 'node:fs';
import { UnsupportedError, isSystemError } from '../errors.js';
import { filesystemTypeOf } from '../host/filesystem.js';
import { rm } from 'node:fs/promises';
import { copyMergedLayers } from '../image/flatten-copy.js';
import { closePrivateRoot, fsOps, openPrivateRoot } from '../image/fs-ops.js';
import { readFileChunks, WRITE_THREADS } from '../image/layer-staging.js';
import { layerCompression } from '../image/manifest.js';
import { applyLayer, LayerApplier } from '../image/unpack.js';
import type { NamespacedCopyRequest, NamespacedFlattenRequest, NamespacedLayerRequest } from '../image/owner-namespace.js';
import { MAX_LINE, type WorkerEnvelope, type WorkerReply, type WorkerRequest } from './userns-protocol.js';

/** In a user namespace only `user.*` xattrs are the namespace root's to set; overlay reads this one with `userxattr`. */
const USERNS_OPAQUE = 'user.overlay.opaque';

/**
 * A whiteout (char device 0/0) refused: Linux lets a user namespace make one on ext4, xfs,
 * btrfs and tmpfs, but not on every filesystem (overlay refuses it). The layer format needs
 * them, so say so rather than a bare EPERM.
 */
function whiteoutRefused(error: unknown, dir: string): Error | undefined {
  if (!isSystemError(error) || error.code !== 'EPERM' || error.syscall !== 'mknodat') return undefined;
  const fs = filesystemTypeOf(dir);
  return new UnsupportedError(
    `${error.message}: a layer's whiteouts are char devices 0/0, which a user namespace cannot make on the state directory's filesystem (${fs}); fix: a state directory on ext4, xfs, btrfs or tmpfs (Runtime.open({ root }))`,
    { path: dir, cause: error },
  );
}

async function stageLayer(r: NamespacedLayerRequest, idLimit: number): Promise<unknown> {
  try {
    return await stageLayerIn(r, idLimit);
  } catch (error) {
    throw whiteoutRefused(error, r.dir) ?? error;
  }
}

async function stageLayerIn(r: NamespacedLayerRequest, idLimit: number): Promise<unknown> {
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

async function copyLayers(r: NamespacedCopyRequest): Promise<unknown> {
  const fs = fsOps();
  // Not private: copyMergedLayers resolves the root again on every call (the user's directory).
  const rootFd = fs.fsOpenRoot(r.dir);
  try {
    await copyMergedLayers(fs, r.layerDirs, rootFd, { devices: r.devices, threads: WRITE_THREADS, image: r.image });
    return null;
  } finally {
    closeSync(rootFd);
  }
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case 'stage':
      return stageLayer(req.layer, req.idLimit);
    case 'flatten':
      return flatten(req.flatten, req.idLimit);
    case 'copy':
      return copyLayers(req.copy);
    case 'remove':
      for (const p of req.paths) await rm(p, { recursive: true, force: true });
      return null;
  }
}

function errorReply(id: number, error: unknown): WorkerReply {
  const e = (error instanceof Error ? error : new Error(String(error))) as Error & Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const k of Object.keys(e)) if (typeof e[k] !== 'object' && typeof e[k] !== 'function') fields[k] = e[k];
  return { id, ok: false, error: { name: e.name, message: e.message, fields } };
}

function send(reply: WorkerReply): void {
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}

async function serve(line: string): Promise<void> {
  let envelope: WorkerEnvelope;
  try {
    envelope = JSON.parse(line) as WorkerEnvelope;
  } catch (error) {
    // Not berth's: berth writes one JSON object per line. Nothing to answer to.
    process.stderr.write(`userns-worker: a request line is not JSON (${(error as Error).message})\n`);
    return;
  }
  try {
    send({ id: envelope.id, ok: true, result: await handle(envelope.request) });
  } catch (error) {
    send(errorReply(envelope.id, error));
  }
}

const inFlight = new Set<Promise<void>>();
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  buffered += chunk;
  for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (line.trim() === '') continue;
    const p = serve(line).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  if (buffered.length > MAX_LINE) {
    process.stderr.write(`userns-worker: a request line is longer than ${MAX_LINE} bytes\n`);
    process.exit(2);
  }
});
process.stdin.on('end', () => {
  // berth is done with us (or gone): answer what is in flight, then exit, whatever else a
  // module left open.
  void Promise.allSettled([...inFlight]).then(() => process.stdout.write('', () => process.exit(0)));
});
