/**
 * System programs berth runs (util-linux's mount(8), fuse-overlayfs, mkfs.ext4), found by
 * absolute path: Node's PATH often lacks the sbin directories.
 * @module
 */
import { accessSync, constants as FS } from 'node:fs';

/** Where system programs are looked for, in order. */
export const SEARCH: readonly string[] = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const toolCache = new Map<string, string | null>();

/** The absolute path of a system tool, or null. Node's PATH often lacks the sbin dirs. */
export function findTool(name: string): string | null {
  let path = toolCache.get(name);
  if (path === undefined) {
    path = null;
    for (const dir of SEARCH) {
      try {
        accessSync(`${dir}/${name}`, FS.X_OK);
        path = `${dir}/${name}`;
        break;
      } catch {
        // next
      }
    }
    toolCache.set(name, path);
  }
  return path;
}
