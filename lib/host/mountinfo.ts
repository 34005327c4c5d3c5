/**
 * The mount table of this process's mount namespace (`/proc/self/mountinfo`), read by the
 * volumes' host mounts and the fuse-overlayfs driver's host-side mounts.
 * @module
 */
import { readFileSync } from 'node:fs';

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
