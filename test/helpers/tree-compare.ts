/**
 * Describes a directory tree entry by entry — type, mode, owner, size, content hash, link
 * target, device numbers, hard-link group, xattrs — so two unpackers' outputs can be compared.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, readFileSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { fsOps } from '../../lib/image/fs-ops.js';

export interface TreeEntry {
  type: string;
  mode: string;
  owner: string;
  size?: number;
  sha256?: string;
  target?: string;
  rdev?: string;
  /** Every path sharing this entry's inode (sorted), for files with nlink > 1 inside the tree. */
  links?: string[];
  xattrs?: Record<string, string>;
  mtime?: number;
}

function typeOf(st: Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

export function describeTree(root: string, { mtimes = false, ignoreXattrs = [] as string[] } = {}): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const inodes = new Map<string, string[]>();
  const fs = fsOps();
  const rootFd = fs.fsOpenRoot(root);
  try {
    const walk = (rel: string) => {
      for (const name of readdirSync(join(root, rel)).sort()) {
        const path = rel === '' ? name : `${rel}/${name}`;
        const abs = join(root, path);
        const st = lstatSync(abs);
        const type = typeOf(st);
        const e: TreeEntry = { type, mode: (st.mode & 0o7777).toString(8), owner: `${st.uid}:${st.gid}` };
        if (type === 'symlink') e.mode = 'n/a';
        if (type === 'file') {
          e.size = st.size;
          e.sha256 = createHash('sha256').update(readFileSync(abs)).digest('hex');
          if (st.nlink > 1) {
            const key = `${st.dev}:${st.ino}`;
            inodes.set(key, [...(inodes.get(key) ?? []), path]);
          }
        }
        if (type === 'symlink') e.target = readlinkSync(abs);
        if (type === 'char' || type === 'block') e.rdev = `${Math.floor(st.rdev / 256)}:${st.rdev % 256}`;
        const xattrs = fs.fsListXattrsAt(rootFd, path).filter(([n]) => !ignoreXattrs.some((p) => n.startsWith(p)));
        if (xattrs.length > 0) e.xattrs = Object.fromEntries(xattrs.map(([n, v]) => [n, v.toString('hex')]).sort());
        // A whiteout (char 0:0) is made by the unpacker, not taken from the tar: its mtime is the
        // moment it was made, which differs between two unpacks whenever a second ticks over.
        const whiteout = type === 'char' && st.rdev === 0;
        if (mtimes && type !== 'dir' && !whiteout) e.mtime = Math.floor(st.mtimeMs / 1000);
        out.set(path, e);
        if (type === 'dir') walk(path);
      }
    };
    walk('');
  } finally {
    closeSync(rootFd);
  }
  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    const sorted = group.sort();
    for (const p of sorted) out.get(p)!.links = sorted;
  }
  return out;
}

/** Lines describing every difference, empty when the trees match. */
export function diffTrees(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, labels = ['ours', 'theirs']): string[] {
  const diffs: string[] = [];
  for (const [path, ea] of a) {
    const eb = b.get(path);
    if (!eb) {
      diffs.push(`${path}: only in ${labels[0]} (${ea.type})`);
      continue;
    }
    const ja = JSON.stringify(ea);
    const jb = JSON.stringify(eb);
    if (ja !== jb) diffs.push(`${path}: ${labels[0]} ${ja} != ${labels[1]} ${jb}`);
  }
  for (const [path, eb] of b) if (!a.has(path)) diffs.push(`${path}: only in ${labels[1]} (${eb.type})`);
  return diffs;
}
