/**
 * A {@link CopyPlan} as a layer tar: entries in sorted order, parents first, written with
 * berth's tar writer; file contents read through the confined source tree. Content that
 * changed size since it was hashed is cut or zero-padded to the planned size, so the tar
 * always matches its headers.
 * @module
 */
import { closeSync, fstatSync, read } from 'node:fs';
import { promisify } from 'node:util';
import { tarHeader, tarPadding, tarTrailer } from '../image/tar-writer.js';
import type { CopyPlan } from './copy-plan.js';

const readAsync = promisify(read);
const CHUNK = 256 * 1024;

export async function* copyLayerTar(plan: CopyPlan, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (const e of plan.entries) {
    signal?.throwIfAborted();
    const base = { name: e.path, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime };
    switch (e.kind) {
      case 'dir':
      case 'fifo':
        yield tarHeader({ ...base, type: e.kind });
        break;
      case 'symlink':
        yield tarHeader({ ...base, type: 'symlink', linkname: e.linkname! });
        break;
      case 'file': {
        yield tarHeader({ ...base, type: 'file', size: e.size });
        if (e.content) yield e.content;
        else if (e.source) {
          const fd = e.source.layer.openFile(e.source.path);
          try {
            let done = 0;
            if (fstatSync(fd).isFile()) {
              while (done < e.size) {
                const buf = Buffer.allocUnsafe(Math.min(CHUNK, e.size - done));
                const { bytesRead } = await readAsync(fd, buf, 0, buf.length, done);
                if (bytesRead === 0) break;
                done += bytesRead;
                yield buf.subarray(0, bytesRead);
              }
            }
            if (done < e.size) yield Buffer.alloc(e.size - done);
          } finally {
            closeSync(fd);
          }
        }
        yield tarPadding(e.size);
        break;
      }
    }
  }
  yield tarTrailer();
}
