/**
 * The build context: a directory the user names, or a tar stream unpacked into a private
 * directory under the store's tmp/ first. The Dockerfile and `.dockerignore` are read from it
 * through the confined view (a `Dockerfile` symlinked to `/etc/shadow` reads the context's own
 * `etc/shadow`, if any, never the host's).
 * @module
 */
import { closeSync, fstatSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { NotFoundError, ValidationError } from '../errors.js';
import type { ContentStore } from '../image/content-store.js';
import { LayerApplier, applyLayer } from '../image/unpack.js';
import { MergedView } from '../image/merged-view.js';
import { isDir } from '../image/overlay-format.js';
import { DockerIgnore } from './dockerignore.js';
import { readOpenFile } from './read-open-file.js';

/** Largest Dockerfile or .dockerignore berth reads (BuildKit's frontend caps it similarly). */
const MAX_CONTROL_FILE = 4 * 1024 * 1024;

export interface BuildContext {
  dir: string;
  view: MergedView;
  ignore: DockerIgnore;
  /** Closes the view and removes an unpacked tar context. */
  close(): Promise<void>;
}

/** Reads a small file of the context through the view; undefined when it is not there. */
export function readContextFile(view: MergedView, path: string, what: string): Buffer | undefined {
  const rel = view.resolve(`/${path}`);
  if (rel === null || rel === '') return undefined;
  const e = view.lookup(rel);
  if (!e || isDir(e.stat)) return undefined;
  const fd = e.layer.openFile(rel);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    if (st.size > MAX_CONTROL_FILE) throw new ValidationError(what, `${path} is larger than ${MAX_CONTROL_FILE} bytes`);
    return readOpenFile(fd, st.size);
  } finally {
    closeSync(fd);
  }
}

function isAsyncIterable(v: unknown): v is AsyncIterable<Uint8Array> {
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

async function* buffers(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  for await (const c of source) yield Buffer.isBuffer(c) ? c : Buffer.from(c);
}

/** Peeks the first chunk to tell gzip from plain tar. */
async function* withCompression(source: AsyncIterable<Buffer>, onKind: (gzip: boolean) => void): AsyncGenerator<Buffer> {
  let first = true;
  for await (const c of source) {
    if (first) onKind(c[0] === 0x1f && c[1] === 0x8b);
    first = false;
    yield c;
  }
}

/**
 * Opens the context.
 * @throws ValidationError / NotFoundError naming the `context` option
 */
export async function openContext(context: string | Readable | AsyncIterable<Uint8Array>, store: ContentStore, signal?: AbortSignal): Promise<BuildContext> {
  let dir: string;
  let owned: string | undefined;
  if (typeof context === 'string') {
    if (!context.startsWith('/')) throw new ValidationError('context', `must be an absolute directory path or a tar stream, got ${JSON.stringify(context)}`);
    let st;
    try {
      st = statSync(context);
    } catch (e) {
      throw new NotFoundError(`context: ${context} does not exist`, { option: 'context', path: context, cause: e });
    }
    if (!st.isDirectory()) throw new ValidationError('context', `${context} is not a directory`);
    dir = context;
  } else if (isAsyncIterable(context)) {
    owned = await store.stagingDir();
    dir = join(owned, 'context');
    await mkdir(dir, { mode: 0o700 });
    try {
      const fs = store.fs;
      const rootFd = fs.fsOpenRoot(dir);
      try {
        // Flatten mode, devices refused: the unpacker's confinement applies to a context as to a layer.
        const applier = new LayerApplier(rootFd, 'flatten', 'build context', fs, { devices: false });
        let gzip = false;
        const chunks = withCompression(buffers(context), (g) => (gzip = g));
        const first = await chunks.next();
        const all = (async function* () {
          if (!first.done) yield first.value;
          yield* chunks;
        })();
        await applyLayer(all, applier, { layer: 'build context', compression: gzip ? 'gzip' : 'none', ...(signal ? { signal } : {}) });
        applier.finish();
      } finally {
        closeSync(rootFd);
      }
    } catch (e) {
      await rm(owned, { recursive: true, force: true });
      throw e;
    }
  } else {
    throw new ValidationError('context', 'must be a directory path or a tar stream');
  }
  const view = MergedView.open([dir]);
  let ignore: DockerIgnore;
  try {
    const text = readContextFile(view, '.dockerignore', 'context');
    ignore = text ? DockerIgnore.parse(text.toString('utf8')) : DockerIgnore.empty();
  } catch (e) {
    view.close();
    if (owned) await rm(owned, { recursive: true, force: true });
    throw e;
  }
  return {
    dir, view, ignore,
    close: async () => {
      view.close();
      if (owned) await rm(owned, { recursive: true, force: true });
    },
  };
}
