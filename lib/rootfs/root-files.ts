/**
 * Reading a file of an image or a `{ rootfs }` directory on the host (`/etc/passwd`,
 * `/etc/group` for the `user` option), the way the container will see it.
 *
 * The image is hostile: its `/etc` may be a symlink to `/etc` or `../../../../etc`, its
 * `/etc/passwd` a symlink to the host's. A host path such as `join(rootfs, 'etc/passwd')`
 * resolves those symlinks against the host's root and reads the host's files. Here every
 * component is looked up beneath a layer's root by the kernel (`openat2` with
 * `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS`, see {@link MergedView}); symlinks are followed in
 * TypeScript inside the merged view, so `/` and `..` stay at the image's root; and the file is
 * opened only after its type is checked on the pinned inode (`fsOpenAt`).
 * @module
 */
import { closeSync, readSync } from 'node:fs';
import { isSystemError } from '../errors.js';
import { MergedView } from '../image/merged-view.js';
import { S_IFMT, S_IFREG } from '../image/overlay-format.js';

/** Larger than any real passwd or group file; a bigger one is cut here rather than read whole. */
export const ROOT_FILE_LIMIT = 4 * 1024 * 1024;

/**
 * The contents of `paths` (absolute, as in the container) in the merged view of `layerDirs`
 * (top first; a `{ rootfs }` directory is one layer), each undefined when it is missing, not a
 * regular file, or names something outside through too many symlinks. One view for all of
 * them: a launch reads passwd and group, and opening the layers is most of the cost.
 */
export function readRootFiles(layerDirs: readonly string[], paths: readonly string[], limit = ROOT_FILE_LIMIT): Array<string | undefined> {
  let tree: MergedView;
  try {
    tree = MergedView.open(layerDirs);
  } catch (error) {
    if (isSystemError(error)) return paths.map(() => undefined);
    throw error;
  }
  try {
    return paths.map((path) => readInView(tree, path, limit));
  } finally {
    tree.close();
  }
}

/** One file of {@link readRootFiles}. */
export function readRootFile(layerDirs: readonly string[], path: string, limit = ROOT_FILE_LIMIT): string | undefined {
  return readRootFiles(layerDirs, [path], limit)[0];
}

function readInView(tree: MergedView, path: string, limit: number): string | undefined {
  try {
    const rel = tree.resolve(path);
    if (rel === null || rel === '') return undefined;
    const entry = tree.lookup(rel);
    if (!entry || (entry.stat.mode & S_IFMT) !== S_IFREG) return undefined;
    const fd = entry.layer.openFile(rel);
    try {
      const buf = Buffer.allocUnsafe(Math.min(limit, Math.max(entry.stat.size, 0) + 1));
      let n = 0;
      while (n < buf.length) {
        const r = readSync(fd, buf, n, buf.length - n, n);
        if (r === 0) break;
        n += r;
      }
      return buf.toString('utf8', 0, Math.min(n, limit));
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    // Swapped, removed or refused (a device or FIFO where a file was): as good as absent.
    if (isSystemError(error)) return undefined;
    throw error;
  }
}
