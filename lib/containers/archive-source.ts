/**
 * The reading half of `docker cp`: what a path names (`statPath`) and its tar stream
 * (`getArchive`), below a root fd — a container's root, or on the host the directory holding
 * a `copyTo` source.
 *
 * The path itself is resolved in the root's mode: in a container's root its symlinks are
 * followed the way the container would follow them, inside the root (`RESOLVE_IN_ROOT`; a
 * final symlink only for a path ending in `/`). What is below a directory source is then
 * walked in the strict mode, from a root fd of that directory: no symlink is ever followed on
 * the way, so a container that swaps a directory for a symlink to `/` mid-copy makes berth
 * find nothing there, never the host's files. Files are opened only after their type is
 * checked on the pinned inode (`fsOpenAt`), so a swapped-in FIFO or device is never opened.
 *
 * Kernel pseudo file systems mounted in a container (`/proc`, `/sys`, cgroups) are not
 * copied: berth reads with the host's privileges, and a container could otherwise point a
 * copy at its `/proc/kcore` (the host's memory) with an ordinary symlink. Their mount points
 * appear as empty directories, as Docker shows them.
 * @module
 */
import { closeSync, statfsSync } from 'node:fs';
import { NotFoundError, UnsupportedError, isSystemError } from '../errors.js';
import type { FsOpsBinding, FsStat } from '../image/fs-ops.js';
import { ConfinedDir } from '../image/merged-view.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../image/overlay-format.js';
import { tarHeader, tarTrailer } from '../image/tar-writer.js';
import { ArchiveConflictError } from './archive-errors.js';
import { joinRel, type CopyPath } from './archive-paths.js';
import { entryBytes } from '../storage/rootfs-archive.js';

/**
 * What a path names, as Docker's `X-Docker-Container-Path-Stat` header tells it (with the
 * POSIX `mode`, type bits included, rather than Go's).
 */
export interface PathStat {
  /** The last component of the path (`.` for the root). */
  name: string;
  size: number;
  /** `st_mode`: type and permission bits. */
  mode: number;
  mtime: Date;
  /** A symlink's target as stored; `''` for anything else. */
  linkTarget: string;
}

/** Owner ids as the archive should carry them (a container's ids for its files). */
export type OwnerMapper = (uid: number, gid: number) => { uid: number; gid: number };

/** `statfs` magic numbers of file systems whose files the kernel makes up (linux/magic.h). */
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'], [0x74726163, 'tracefs'], [0x73636673, 'securityfs'], [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'], [0xde5e81e4, 'efivarfs'], [0x6165676c, 'pstore'], [0xf97cff8c, 'selinuxfs'],
  [0x65735543, 'fusectl'], [0x42494e4d, 'binfmt_misc'], [0x19800202, 'mqueue'],
]);

const isDir = (st: FsStat): boolean => (st.mode & S_IFMT) === S_IFDIR;

/** What a source path resolved to. */
export type ResolvedSource =
  | { kind: 'tree'; dir: ConfinedDir; stat: FsStat; path: CopyPath }
  | { kind: 'single'; stat: FsStat; path: CopyPath };

/**
 * Remembers, per device, whether it is a pseudo file system: one `statfs` per mount met.
 * @internal
 */
export class PseudoFsGuard {
  readonly #known = new Map<number, string | null>();

  /** The pseudo file system's name when `rel` in `layer` (a file or directory) is on one. */
  check(layer: ConfinedDir, rel: string, st: FsStat, fs: FsOpsBinding): string | undefined {
    const known = this.#known.get(st.dev);
    if (known !== undefined) return known ?? undefined;
    let fd: number;
    try {
      fd = fs.fsOpenAt(layer.fd, rel);
    } catch {
      return undefined; // gone or swapped: the read that follows finds nothing either
    }
    try {
      const name = PSEUDO_FS.get(Number(statfsSync(`/proc/self/fd/${fd}`).type)) ?? null;
      this.#known.set(st.dev, name);
      return name ?? undefined;
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Resolves a source path in `root`.
 * @param where names the root in errors (`container web`, `host`)
 * @throws NotFoundError when nothing is there; ArchiveConflictError for a `…/` path that is
 *   not a directory.
 */
export function resolveSource(root: ConfinedDir, path: CopyPath, where: string, fs: FsOpsBinding): ResolvedSource {
  const st = path.rel === '' ? fs.fsLstatAt(root.fd, '') : root.lstat(path.rel);
  if (st === null) throw new NotFoundError(`${where}: no such file or directory: ${path.given}`, { path: path.given });
  const kind = st.mode & S_IFMT;
  if (kind !== S_IFDIR && !(kind === S_IFLNK && path.dirOnly)) {
    if (path.dirOnly) throw new ArchiveConflictError(`${where}: ${path.given} is not a directory`, path.given);
    return { kind: 'single', stat: st, path };
  }
  let fd: number;
  try {
    fd = fs.fsOpenRootAt(root.fd, path.rel, { crossMounts: true });
  } catch (error) {
    if (isSystemError(error) && (error.code === 'ENOENT' || error.code === 'ELOOP')) throw new NotFoundError(`${where}: no such file or directory: ${path.given}`, { path: path.given, cause: error });
    if (isSystemError(error) && error.code === 'ENOTDIR') throw new ArchiveConflictError(`${where}: ${path.given} is not a directory`, path.given);
    throw error;
  }
  const dir = ConfinedDir.adopt(`${where}:${path.abs}`, fd, fs);
  const stat = fs.fsLstatAt(fd, '');
  return { kind: 'tree', dir, stat: stat!, path };
}

/** The stat of a resolved source, for `statPath()`. */
export function pathStat(root: ConfinedDir, source: ResolvedSource): PathStat {
  const st = source.stat;
  let linkTarget = '';
  if ((st.mode & S_IFMT) === S_IFLNK) {
    try {
      linkTarget = root.readlink(source.path.rel);
    } catch {
      // replaced meanwhile: report it as found
    }
  }
  return { name: source.path.base, size: st.size, mode: st.mode, mtime: new Date(st.mtime * 1000), linkTarget };
}

/** Options of {@link sourceArchive}. */
export interface SourceArchiveOptions {
  /** The name the source's top entry gets in the archive; `.` for a directory's contents. */
  topName: string;
  owner: OwnerMapper;
  signal?: AbortSignal | undefined;
  /** Names the root in errors. */
  where: string;
}

function mapped(st: FsStat, owner: OwnerMapper): FsStat {
  const ids = owner(st.uid, st.gid);
  return { ...st, uid: ids.uid, gid: ids.gid };
}

/**
 * The tar stream of a resolved source (the caller closes a tree's directory). A regular file
 * whose size changes while it is read is cut or zero-padded to the size in its header.
 */
export async function* sourceArchive(root: ConfinedDir, source: ResolvedSource, options: SourceArchiveOptions, fs: FsOpsBinding): AsyncGenerator<Buffer> {
  const guard = new PseudoFsGuard();
  const { topName, owner, signal } = options;
  if (source.kind === 'single') {
    const st = source.stat;
    if ((st.mode & S_IFMT) === S_IFREG) {
      const pseudo = guard.check(root, source.path.rel, st, fs);
      if (pseudo) throw new UnsupportedError(`${options.where}: ${source.path.given} is on a ${pseudo} file system, which berth does not copy`, { path: source.path.given });
    }
    let wrote = false;
    for await (const chunk of entryBytes(root, source.path.rel, mapped(st, owner), undefined, topName)) {
      wrote = true;
      yield chunk;
    }
    // Replaced or removed between the lookup and the open: an empty archive would read as a
    // successful copy of nothing.
    if (!wrote) throw new NotFoundError(`${options.where}: ${source.path.given} disappeared while it was copied`, { path: source.path.given });
    yield tarTrailer();
    return;
  }
  const tree = source.dir;
  {
    const prefix = topName === '.' ? '.' : topName;
    yield tarHeader({ name: `${prefix}/`, type: 'dir', mode: source.stat.mode & 0o7777, ...owner(source.stat.uid, source.stat.gid), mtime: source.stat.mtime, xattrs: tree.xattrs('').filter(([n]) => !n.startsWith('trusted.overlay.') && !n.startsWith('user.overlay.')) });
    if (guard.check(tree, '', source.stat, fs) !== undefined) {
      yield tarTrailer();
      return;
    }
    const links = new Map<string, string>();
    const stack: string[] = [''];
    while (stack.length > 0) {
      const rel = stack.pop()!;
      const subdirs: string[] = [];
      for (const name of tree.readdir(rel)) {
        signal?.throwIfAborted();
        const path = joinRel(rel, name);
        const st = tree.lstat(path);
        if (st === null) continue;
        const archiveName = `${prefix}/${path}`;
        let linkTo: string | undefined;
        if ((st.mode & S_IFMT) === S_IFREG) {
          if (guard.check(tree, path, st, fs) !== undefined) continue;
          if (st.nlink > 1) {
            const key = `${st.dev}:${st.ino}`;
            linkTo = links.get(key);
            if (linkTo === undefined) links.set(key, archiveName);
          }
        }
        yield* entryBytes(tree, path, mapped(st, owner), linkTo, archiveName);
        if (isDir(st) && guard.check(tree, path, st, fs) === undefined) subdirs.push(path);
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
    }
    yield tarTrailer();
  }
}
