/**
 * `docker cp` for berth: `putArchive`, `getArchive`, `statPath`, `copyTo` and `copyFrom` of a
 * container, with Docker's semantics (archive-paths.ts), on its root as container-root.ts
 * opens it, read by archive-source.ts and written by archive-extract.ts.
 *
 * Ownership follows `docker cp`: files copied into a container belong to its root (with
 * `archive: true`, and always for `putArchive`, the archive's ids, taken as the container's
 * and mapped through its user namespace); files copied out belong to the invoking user (with
 * `archive: true`, the container's ids). Copies to the host drop set-id bits and every
 * extended attribute but `user.*`, and skip device nodes: a hostile container must not plant a
 * set-uid-root binary, a file capability or a device node of the host's disk on the host.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { dirname, resolve as resolveHost } from 'node:path';
import { Readable } from 'node:stream';
import { AbortError, NotFoundError, UnsupportedError, ValidationError, isBerthError, isSystemError } from '../errors.js';
import { fsOps, type FsOpsBinding, type FsRootMode } from '../image/fs-ops.js';
import { ConfinedDir } from '../image/merged-view.js';
import { isOverlayXattr } from '../image/overlay-format.js';
import { fromNativeError } from '../native.js';
import { TarFormatError, TarReader } from '../image/tar-reader.js';
import { ArchiveConflictError, UnsafeArchiveEntryError } from './archive-errors.js';
import { ArchiveExtractor, type ExtractOptions } from './archive-extract.js';
import { parentRel, parseCopyPath, planCopy, type CopyPath, type DestinationKind } from './archive-paths.js';
import { PseudoFsGuard, pathStat, resolveSource, sourceArchive, type OwnerMapper, type PathStat } from './archive-source.js';
import { containerLabel, openContainerRoot, type ContainerRootAccess, type OpenedContainerRoot } from './container-root.js';

export type { PathStat } from './archive-source.js';

/** Options of `putArchive()` and `getArchive()`. */
export interface ArchiveOptions {
  /** The path in the container: the directory to extract into, or what to archive. */
  path: string;
  /** Stops the copy; a file being written is removed. */
  signal?: AbortSignal;
}

/** Options of `copyTo()` and `copyFrom()`. */
export interface CopyOptions {
  /**
   * Keep the source's owner ids (`docker cp -a`): into a container, the host ids taken as the
   * container's; out of one, the container's ids. Default false: the container's root going
   * in, the invoking user coming out.
   */
  archive?: boolean;
  signal?: AbortSignal;
}

/** A `getArchive()` stream, with the stat of the archived path (Docker's `X-Docker-Container-Path-Stat`). */
export type ArchiveStream = Readable & { readonly stat: PathStat };

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ValidationError('signal', 'must be an AbortSignal');
  return signal as AbortSignal | undefined;
}

/** A stopped container's root lacks its mounts: a path in one would silently miss the volume. */
function refuseHidden(opened: OpenedContainerRoot, path: CopyPath): void {
  for (const target of opened.hiddenMounts) {
    const t = target.replace(/\/+$/, '') || '/';
    if (path.abs === t || path.abs.startsWith(t === '/' ? '/' : `${t}/`)) {
      throw new UnsupportedError(
        `${containerLabel(opened.record)} is not running, and ${path.given} is in its mount at ${target}, which only a running container shows: start it, or copy into the volume or bind source`,
        { path: path.given },
      );
    }
  }
}

function where(opened: OpenedContainerRoot, path: CopyPath): string {
  return `${containerLabel(opened.record)}:${path.abs}`;
}

/**
 * A running user-namespaced container's root belongs to its user namespace: entries are made
 * as its root's host ids there (see `FsRootMode.createAs`).
 */
function creatorOf(opened: OpenedContainerRoot): FsRootMode {
  if (!opened.live || (opened.uids.identity && opened.gids.identity)) return {};
  const uid = opened.uids.toHost(0);
  const gid = opened.gids.toHost(0);
  return uid === undefined || gid === undefined ? {} : { createAs: { uid, gid } };
}

/** Opens a destination directory below a root as a root of its own (strict below it). */
function openDestDir(root: ConfinedDir, rel: string, label: string, given: string, fs: FsOpsBinding, mode: FsRootMode = {}): ConfinedDir {
  let fd: number;
  try {
    fd = fs.fsOpenRootAt(root.fd, rel, { crossMounts: true, ...mode });
  } catch (error) {
    if (isSystemError(error) && (error.code === 'ENOENT' || error.code === 'ELOOP')) throw new NotFoundError(`${label}: no such directory: ${given}`, { path: given, cause: error });
    if (isSystemError(error) && error.code === 'ENOTDIR') throw new ArchiveConflictError(`${label}: ${given} is not a directory`, given);
    throw error;
  }
  const dir = ConfinedDir.adopt(`${label}`, fd, fs);
  const pseudo = new PseudoFsGuard().check(dir, '', fs.fsLstatAt(fd, '')!, fs);
  if (pseudo !== undefined) {
    dir.close();
    throw new UnsupportedError(`${label}: ${given} is on a ${pseudo} file system, which berth does not write to`, { path: given });
  }
  return dir;
}

/** What is at `rel` in a container's root: a directory (also through a symlink), something else, or nothing. */
function destinationKind(root: ConfinedDir, rel: string, fs: FsOpsBinding): DestinationKind {
  const st = rel === '' ? fs.fsLstatAt(root.fd, '') : root.lstat(rel);
  if (st === null) return undefined;
  try {
    fs.fsCloseRoot(fs.fsOpenRootAt(root.fd, rel));
    return 'dir';
  } catch (error) {
    if (isSystemError(error)) return 'other';
    throw error;
  }
}

function isDirIn(root: ConfinedDir, rel: string, fs: FsOpsBinding): boolean {
  return destinationKind(root, rel, fs) === 'dir';
}

/** Feeds a tar into an extractor with the stream's backpressure; removes a half-written file on failure. */
async function extract(source: AsyncIterable<Buffer> | Iterable<Buffer>, extractor: ArchiveExtractor, label: string, signal: AbortSignal | undefined): Promise<void> {
  const reader = new TarReader(extractor);
  try {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      reader.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
    }
    reader.end();
    extractor.finish();
  } catch (error) {
    extractor.abort();
    if (error instanceof TarFormatError) throw new ValidationError('tar', `${label}: not a valid tar archive: ${error.message}`, { cause: error });
    if (signal?.aborted && !isBerthError(error)) throw new AbortError(`${label}: the copy was aborted`, { cause: signal.reason });
    throw error;
  }
}

function tarChunks(tar: unknown): AsyncIterable<Buffer> | Iterable<Buffer> {
  if (Buffer.isBuffer(tar) || tar instanceof Uint8Array) return [Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength)];
  if (tar instanceof Readable) return tar;
  throw new ValidationError('tar', 'must be a Readable stream or a Buffer holding a tar archive');
}

/** Into a container: archive ids are the container's, mapped to the host's through its user namespace. */
function ownerInto(opened: OpenedContainerRoot, label: string, fixed?: { uid: number; gid: number }): ExtractOptions['owner'] {
  return (uid, gid, entry) => {
    const u = opened.uids.toHost(fixed?.uid ?? uid);
    const g = opened.gids.toHost(fixed?.gid ?? gid);
    if (u === undefined || g === undefined) {
      throw new UnsafeArchiveEntryError(label, entry, `owner ${fixed?.uid ?? uid}:${fixed?.gid ?? gid} is not mapped in the container's user namespace`);
    }
    return { uid: u, gid: g };
  };
}

function intoContainer(opened: OpenedContainerRoot, label: string, owner: ExtractOptions['owner']): ExtractOptions {
  return {
    where: label,
    owner,
    // A device node made by host root is only refused for unprivileged containers: theirs
    // could not have made it (nodev, the device cgroup), so the archive must not either.
    devices: opened.record.options.privileged === true ? 'create' : 'refuse',
    keepXattr: (name) => !isOverlayXattr(name),
    stripSetId: false,
  };
}

function containerIds(opened: OpenedContainerRoot): OwnerMapper {
  return (uid, gid) => ({ uid: opened.uids.toContainer(uid), gid: opened.gids.toContainer(gid) });
}

/**
 * Extracts a source into `destDir` under `plan.topName`. A directory that creates its
 * destination is extracted under a temporary name and renamed into place once complete, so a
 * failed copy leaves no half-copied tree under the name (files are atomic on their own).
 */
async function extractSource(
  destDir: ConfinedDir,
  plan: { topName: string; creates: boolean },
  isDir: boolean,
  tarOf: (topName: string) => AsyncIterable<Buffer>,
  extractor: (fd: number) => ArchiveExtractor,
  label: string,
  signal: AbortSignal | undefined,
  fs: FsOpsBinding,
): Promise<void> {
  if (!(plan.creates && isDir)) return extract(tarOf(plan.topName), extractor(destDir.fd), label, signal);
  const tmp = `.berth-cp-${randomBytes(6).toString('hex')}`;
  try {
    await extract(tarOf(tmp), extractor(destDir.fd), label, signal);
    fs.fsRenameAt(destDir.fd, tmp, plan.topName);
  } catch (error) {
    try {
      fs.fsRemoveAt(destDir.fd, tmp);
    } catch {
      // the destination directory itself went away
    }
    if (isSystemError(error) && error.syscall === 'renameat') {
      throw fromNativeError(error, { context: `${label}: putting the copied directory in place`, path: plan.topName });
    }
    throw error;
  }
}

/** `putArchive()`: extracts `tar` into the existing directory `options.path` of the container. */
export async function putArchive(access: ContainerRootAccess, tar: Readable | Buffer, options: ArchiveOptions, fs: FsOpsBinding = fsOps()): Promise<void> {
  if (options === null || typeof options !== 'object') throw new ValidationError('options', 'must be an object with a path');
  const signal = checkSignal(options.signal);
  const path = parseCopyPath(options.path, 'path');
  const chunks = tarChunks(tar);
  if (signal?.aborted) throw new AbortError('putArchive() was aborted', { cause: signal.reason });
  const opened = await openContainerRoot(access, 'write', fs);
  try {
    refuseHidden(opened, path);
    const label = where(opened, path);
    const dest = openDestDir(opened.root, path.rel, containerLabel(opened.record), path.given, fs, creatorOf(opened));
    try {
      const extractor = new ArchiveExtractor(fs, dest.fd, intoContainer(opened, label, ownerInto(opened, label)));
      await extract(chunks, extractor, label, signal);
    } finally {
      dest.close();
    }
  } finally {
    opened.close();
  }
}

/** `getArchive()`: a tar stream of `options.path` in the container, with its stat. */
export async function getArchive(access: ContainerRootAccess, options: ArchiveOptions, fs: FsOpsBinding = fsOps()): Promise<ArchiveStream> {
  if (options === null || typeof options !== 'object') throw new ValidationError('options', 'must be an object with a path');
  const signal = checkSignal(options.signal);
  const path = parseCopyPath(options.path, 'path');
  const opened = await openContainerRoot(access, 'read', fs);
  let source: ReturnType<typeof resolveSource> | undefined;
  let closed = false;
  // Once: by the generator's end, or by the stream's close (a stream destroyed before its
  // first read never runs the generator), whichever comes first. Never twice: the fd number
  // may belong to someone else by then.
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      if (source?.kind === 'tree') source.dir.close();
    } finally {
      opened.close();
    }
  };
  try {
    refuseHidden(opened, path);
    const found = resolveSource(opened.root, path, containerLabel(opened.record), fs);
    source = found;
    const stat = pathStat(opened.root, found);
    const topName = path.contents ? '.' : path.base;
    const body = (async function* () {
      try {
        yield* sourceArchive(opened.root, found, { topName, owner: containerIds(opened), signal, where: containerLabel(opened.record) }, fs);
      } catch (error) {
        if (signal?.aborted && !isBerthError(error)) throw new AbortError(`${where(opened, path)}: getArchive() was aborted`, { cause: signal.reason });
        throw error;
      } finally {
        close();
      }
    })();
    const stream = Readable.from(body, { objectMode: false }) as ArchiveStream;
    Object.defineProperty(stream, 'stat', { value: stat, enumerable: true });
    stream.once('close', close);
    return stream;
  } catch (error) {
    close();
    throw error;
  }
}

/** `statPath()`: what `path` names in the container (a final symlink is not followed unless the path ends in `/`). */
export async function statPath(access: ContainerRootAccess, path: string, fs: FsOpsBinding = fsOps()): Promise<PathStat> {
  const p = parseCopyPath(path, 'path');
  const opened = await openContainerRoot(access, 'read', fs);
  try {
    refuseHidden(opened, p);
    const source = resolveSource(opened.root, p, containerLabel(opened.record), fs);
    try {
      return pathStat(opened.root, source);
    } finally {
      if (source.kind === 'tree') source.dir.close();
    }
  } finally {
    opened.close();
  }
}

/** A host path as a CopyPath relative to `/`; a `…/` path is resolved first (its symlinks are the host's). */
function hostPath(value: unknown, option: string, mustExist: boolean): CopyPath {
  if (typeof value !== 'string' || value === '') throw new ValidationError(option, `must be a non-empty path, got ${JSON.stringify(value)}`);
  const trailing = value.endsWith('/.') ? '/.' : value.endsWith('/') ? '/' : '';
  let abs = resolveHost(value);
  if (mustExist && trailing !== '') {
    try {
      abs = realpathSync(abs);
    } catch (error) {
      throw new NotFoundError(`host: no such directory: ${value}`, { path: value, cause: error });
    }
  }
  return { ...parseCopyPath(`${abs}${abs === '/' ? '' : trailing}`, option), given: value };
}

function hostKind(abs: string): DestinationKind {
  try {
    return statSync(abs).isDirectory() ? 'dir' : 'other';
  } catch {
    return undefined;
  }
}

/** `copyTo()`: copies a host file or directory into the container, as `docker cp HOST CONTAINER`. */
export async function copyTo(access: ContainerRootAccess, host: string, containerPath: string, options: CopyOptions = {}, fs: FsOpsBinding = fsOps()): Promise<void> {
  const signal = checkSignal(options.signal);
  const src = hostPath(host, 'hostPath', true);
  const dest = parseCopyPath(containerPath, 'containerPath');
  // The source's parent is the host's, trusted: opened as the root the source is read in.
  const parentDir = src.rel === '' ? '/' : dirname(src.abs);
  let hostRoot: ConfinedDir;
  try {
    hostRoot = ConfinedDir.adopt(`host:${parentDir}`, fs.fsOpenRoot(parentDir, { crossMounts: true }), fs);
  } catch (error) {
    throw new NotFoundError(`host: no such file or directory: ${host}`, { path: host, cause: error });
  }
  try {
    const relSrc: CopyPath = { ...src, rel: src.rel === '' ? '' : src.base };
    const source = resolveSource(hostRoot, relSrc, 'host', fs);
    try {
      const opened = await openContainerRoot(access, 'write', fs);
      try {
        refuseHidden(opened, dest);
        const isDir = source.kind === 'tree';
        const parentIsDir = dest.rel !== '' && isDirIn(opened.root, parentRel(dest.rel), fs);
        const plan = planCopy({ isDir, path: src }, dest, destinationKind(opened.root, dest.rel, fs), parentIsDir, containerLabel(opened.record));
        const label = where(opened, dest);
        const destDir = openDestDir(opened.root, plan.dir, containerLabel(opened.record), `/${plan.dir}`, fs, creatorOf(opened));
        try {
          const owner = ownerInto(opened, label, options.archive === true ? undefined : { uid: 0, gid: 0 });
          await extractSource(
            destDir,
            plan,
            isDir,
            (topName) => sourceArchive(hostRoot, source, { topName, owner: (uid, gid) => ({ uid, gid }), signal, where: 'host' }, fs),
            (fd) => new ArchiveExtractor(fs, fd, intoContainer(opened, label, owner)),
            label,
            signal,
            fs,
          );
        } finally {
          destDir.close();
        }
      } finally {
        opened.close();
      }
    } finally {
      if (source.kind === 'tree') source.dir.close();
    }
  } finally {
    hostRoot.close();
  }
}

/** `copyFrom()`: copies a container's file or directory to the host, as `docker cp CONTAINER HOST`. */
export async function copyFrom(access: ContainerRootAccess, containerPath: string, host: string, options: CopyOptions = {}, fs: FsOpsBinding = fsOps()): Promise<void> {
  const signal = checkSignal(options.signal);
  const src = parseCopyPath(containerPath, 'containerPath');
  const dest = hostPath(host, 'hostPath', false);
  const opened = await openContainerRoot(access, 'read', fs);
  try {
    refuseHidden(opened, src);
    const source = resolveSource(opened.root, src, containerLabel(opened.record), fs);
    try {
      const kind = hostKind(dest.abs);
      const parentIsDir = kind !== undefined || hostKind(dirname(dest.abs)) === 'dir';
      const plan = planCopy({ isDir: source.kind === 'tree', path: src }, dest, kind, parentIsDir, 'host');
      const destAbs = `/${plan.dir}`;
      let destFd: number;
      try {
        destFd = fs.fsOpenRoot(destAbs, { crossMounts: true });
      } catch (error) {
        throw new NotFoundError(`host: no such directory: ${destAbs}`, { path: destAbs, cause: error });
      }
      const destDir = ConfinedDir.adopt(`host:${destAbs}`, destFd, fs);
      try {
        const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
        const toHost: ExtractOptions = {
          where: `host ${host}`,
          owner: options.archive === true ? (uid, gid) => ({ uid, gid }) : () => self,
          devices: 'skip',
          keepXattr: (name) => name.startsWith('user.') && !isOverlayXattr(name),
          stripSetId: true,
        };
        await extractSource(
          destDir,
          plan,
          source.kind === 'tree',
          (topName) => sourceArchive(opened.root, source, { topName, owner: containerIds(opened), signal, where: containerLabel(opened.record) }, fs),
          (fd) => new ArchiveExtractor(fs, fd, toHost),
          `host ${host}`,
          signal,
          fs,
        );
      } finally {
        destDir.close();
      }
    } finally {
      if (source.kind === 'tree') source.dir.close();
    }
  } finally {
    opened.close();
  }
}
