/**
 * Mounts that exist on the host while a volume exists: the tmpfs of a tmpfs-backed volume and
 * the loop-mounted image of a size-limited one, both on the volume's `_data`.
 *
 * These are made with util-linux's mount(8)/umount(8) and e2fsprogs' mkfs.ext4: the native
 * core has no host-namespace mount operation (its mounts happen in a container's fresh mount
 * namespace). The paths are berth's own (`<root>/volumes/<name>/_data`, root-owned, 0700
 * parents), never a path a container can change.
 * @module
 */
import { execFile } from 'node:child_process';
import { SEARCH, findTool } from '../host/tools.js';
import { SystemError, UnsupportedError } from '../errors.js';

function tool(name: string, pkg: string): string {
  const path = findTool(name);
  if (!path) throw new UnsupportedError(`${name} is needed for this volume but was not found in ${SEARCH.join(', ')}: install ${pkg}`);
  return path;
}

function runTool(path: string, args: string[], what: { syscall: string; path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(path, args, { encoding: 'utf8', timeout: 60_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const detail = (stderr || error.message).trim();
      reject(new SystemError('ERR_MOUNT_TOOL', `${path} ${args.join(' ')} failed: ${detail}`, { ...what, cause: error }));
    });
  });
}

/** Mounts a tmpfs with `data` (`size=…,mode=…`) on `target`; nosuid and nodev always. */
export function mountTmpfs(target: string, data: string): Promise<void> {
  const opts = ['nosuid', 'nodev', ...(data ? [data] : [])].join(',');
  return runTool(tool('mount', 'util-linux (mount)'), ['-t', 'tmpfs', '-o', opts, 'berth-volume', target], { syscall: 'mount', path: target });
}

/** Loop-mounts an ext4 image on `target` (mount(8) sets up and autoclears the loop device). */
export function mountLoopImage(image: string, target: string): Promise<void> {
  return runTool(tool('mount', 'util-linux (mount)'), ['-t', 'ext4', '-o', 'loop,nosuid,nodev', image, target], { syscall: 'mount', path: target });
}

/** Unmounts `target`; `lazy` detaches it even while busy (umount -l). */
export function unmount(target: string, options: { lazy?: boolean } = {}): Promise<void> {
  return runTool(tool('umount', 'util-linux (mount)'), [...(options.lazy ? ['-l'] : []), target], { syscall: 'umount', path: target });
}

/** Formats `image` (an existing file of the wanted size) as ext4, root-owned, no reserved blocks. */
export function makeExt4(image: string): Promise<void> {
  return runTool(tool('mkfs.ext4', 'e2fsprogs'), ['-q', '-F', '-m', '0', '-E', 'root_owner=0:0', image], { syscall: 'mkfs.ext4', path: image });
}

export { findTool };
export { mountAt, mountHolding, readMountInfo, type MountInfo } from '../host/mountinfo.js';
