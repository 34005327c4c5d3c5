/**
 * A path's extended attribute names, read through berth's confined native calls (as root, so
 * `trusted.*` shows too): how the unpack tests tell overlay's `user.` spelling from `trusted.`.
 * @module
 */
import { closeSync } from 'node:fs';
import { fsOps } from '../../lib/image/fs-ops.js';

/** The names of the extended attributes of `rel` below `dir`. */
export function xattrNames(dir: string, rel: string): string[] {
  const fs = fsOps();
  const root = fs.fsOpenRoot(dir);
  try {
    return fs.fsListXattrsAt(root, rel).map(([name]) => name);
  } finally {
    closeSync(root);
  }
}
