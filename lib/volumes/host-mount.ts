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
import { accessSync, constants as FS, readFileSync } from 'node:fs';
import { SystemError, UnsupportedError } from '../errors.js';

const SEARCH = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
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

/** One line of /proc/self/mountinfo, the fields berth looks at. */
export interface MountInfo {
  mountPoint: string;
  fstype: string;
  source: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses mountinfo text (this process's mount namespace by default). */
export function readMountInfo(text = readFileSync('/proc/self/mountinfo', 'utf8')): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0 || fields.length < dash + 4) continue;
    out.push({ mountPoint: unescape(fields[4]!), fstype: fields[dash + 1]!, source: unescape(fields[dash + 2]!), superOptions: fields[dash + 3]! });
  }
  return out;
}

/** The topmost mount at exactly `path`, if any. */
export function mountAt(path: string, table = readMountInfo()): MountInfo | undefined {
  let found: MountInfo | undefined;
  for (const m of table) if (m.mountPoint === path) found = m;
  return found;
}

/** The mount that holds `path` (longest mount-point prefix). */
export function mountHolding(path: string, table = readMountInfo()): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of table) {
    const prefix = m.mountPoint === '/' ? '/' : `${m.mountPoint}/`;
    if ((path === m.mountPoint || path.startsWith(prefix)) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
