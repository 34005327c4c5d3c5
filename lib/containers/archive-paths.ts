/**
 * The pure half of `docker cp`: reading a path given for a container or the host, the id maps
 * between a container's ids and the host's, and where a copy lands (file vs directory
 * destination, a trailing `/`, a source ending in `/.`), decided before any byte moves, so
 * that every refusal names the path and happens before anything is written.
 * @module
 */
import { posix } from 'node:path';
import { NotFoundError, ValidationError } from '../errors.js';
import { ArchiveConflictError } from './archive-errors.js';
import type { IdMapping } from '../launch/run-options.js';

/** A path as `docker cp` reads it: cleaned lexically, with the two trailing forms remembered. */
export interface CopyPath {
  /** As given, for messages. */
  given: string;
  /** Absolute and cleaned (`/a/b`); `/` for the root. */
  abs: string;
  /** Relative to the root (`a/b`); `''` for the root itself. */
  rel: string;
  /** The last component (`b`; `.` for the root). */
  base: string;
  /** Ends in `/` or `/.`: it must be a directory, and a symlink there is followed. */
  dirOnly: boolean;
  /** Ends in `/.`: a directory's contents, not the directory itself. */
  contents: boolean;
}

/**
 * Reads a container path (absolute; a relative one is taken from `/`, as `docker cp` does with
 * the container's root as its working directory). `..` is applied lexically, as Docker's
 * `filepath.Clean` does; whatever symlinks the path meets are resolved later, in the root.
 * @throws ValidationError naming `option` for a non-string, empty or NUL-carrying path.
 */
export function parseCopyPath(value: unknown, option: string): CopyPath {
  if (typeof value !== 'string' || value === '') throw new ValidationError(option, `must be a non-empty path, got ${JSON.stringify(value)}`);
  if (value.includes('\0')) throw new ValidationError(option, `path ${JSON.stringify(value)} contains a NUL byte`);
  const contents = value === '.' || value.endsWith('/.');
  const dirOnly = contents || value.endsWith('/');
  const abs = posix.normalize(posix.join('/', value));
  const clean = abs.length > 1 && abs.endsWith('/') ? abs.slice(0, -1) : abs;
  const rel = clean.slice(1);
  return { given: value, abs: clean, rel, base: rel === '' ? '.' : posix.basename(clean), dirOnly, contents };
}

/**
 * What is at a destination: `undefined` when nothing is; `dir` when it is a directory (or a
 * symlink to one, followed where the copy is made).
 */
export type DestinationKind = 'dir' | 'other' | undefined;

/** Where a copy's source lands: the directory it is extracted into and the name its top gets. */
export interface CopyPlan {
  /** The destination directory (relative to its root: `''` is the root). */
  dir: string;
  /**
   * The archive name of the source's top entry below `dir`: the source's own name, the
   * destination's (a copy that creates or replaces it), or `.` (a directory's contents into an
   * existing directory).
   */
  topName: string;
  /** The copy creates the destination (nothing was there). */
  creates: boolean;
}

/**
 * Docker's rules for a copy of `source` (a directory or not) to `dest`:
 * - an existing directory receives the source under its own name (`/.`: its contents);
 * - an existing non-directory is replaced by a file source, and refuses a directory;
 * - a missing destination is created with the source's contents under the destination's name,
 *   if its parent is a directory; a file source cannot go to a missing `…/` destination.
 * @param parentIsDir whether the destination's parent is an existing directory
 * @throws NotFoundError for a missing parent or a missing `…/` destination; ArchiveConflictError for a
 *   directory onto a non-directory.
 */
export function planCopy(source: { isDir: boolean; path: CopyPath }, dest: CopyPath, destKind: DestinationKind, parentIsDir: boolean, where: string): CopyPlan {
  if (destKind === 'dir') return { dir: dest.rel, topName: source.path.contents ? '.' : source.path.base, creates: false };
  if (destKind === 'other') {
    if (source.isDir) throw new ArchiveConflictError(`cannot copy directory ${source.path.given} onto ${where} ${dest.given}: it is not a directory`, dest.given);
    if (dest.dirOnly) throw new ArchiveConflictError(`${where} ${dest.given} is not a directory`, dest.given);
    return { dir: parentRel(dest.rel), topName: dest.base, creates: false };
  }
  if (dest.dirOnly && !source.isDir) throw new NotFoundError(`${where} directory ${dest.given} does not exist`, { path: dest.given });
  if (dest.rel === '' || !parentIsDir) throw new NotFoundError(`${where} ${dest.given}: its parent directory does not exist`, { path: dest.given });
  return { dir: parentRel(dest.rel), topName: dest.base, creates: true };
}

/** The parent of a root-relative path (`''` for a top-level name). */
export function parentRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** `dir/name` for root-relative paths. */
export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** The kernel's overflow id: what a process in a user namespace sees for an unmapped host id. */
export const OVERFLOW_ID = 65534;

/**
 * A container's uid or gid map (container id -> host id), both ways. Without a user namespace
 * it is the identity.
 */
export class IdMap {
  readonly #ranges: readonly IdMapping[] | undefined;
  readonly #unmappedHost: 'overflow' | 'keep';

  /**
   * @param unmappedHost what a host id outside the map reads as: `overflow` (65534, as a process
   *   inside sees it) or `keep` (a stopped container's image layers, which its idmapped mounts
   *   show with the ids they hold on disk).
   */
  constructor(ranges: readonly IdMapping[] | undefined, unmappedHost: 'overflow' | 'keep' = 'overflow') {
    this.#ranges = ranges && ranges.length > 0 ? ranges : undefined;
    this.#unmappedHost = unmappedHost;
  }

  /** Parses `/proc/<pid>/uid_map` (`inside outside count` lines). */
  static fromProcText(text: string): IdMap {
    const ranges: IdMapping[] = [];
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/).map(Number);
      if (f.length === 3 && f.every(Number.isSafeInteger)) ranges.push({ containerId: f[0]!, hostId: f[1]!, size: f[2]! });
    }
    // The identity map of the host's own namespace is "0 0 4294967295".
    const identity = ranges.length === 1 && ranges[0]!.containerId === 0 && ranges[0]!.hostId === 0 && ranges[0]!.size === 4294967295;
    return new IdMap(identity ? undefined : ranges);
  }

  get identity(): boolean {
    return this.#ranges === undefined;
  }

  /** The host id of container id `id`, or undefined when the map leaves it out. */
  toHost(id: number): number | undefined {
    if (!this.#ranges) return id;
    for (const r of this.#ranges) if (id >= r.containerId && id < r.containerId + r.size) return r.hostId + (id - r.containerId);
    return undefined;
  }

  /** The container id of host id `id`. */
  toContainer(id: number): number {
    if (!this.#ranges) return id;
    for (const r of this.#ranges) if (id >= r.hostId && id < r.hostId + r.size) return r.containerId + (id - r.hostId);
    return this.#unmappedHost === 'keep' ? id : OVERFLOW_ID;
  }
}
