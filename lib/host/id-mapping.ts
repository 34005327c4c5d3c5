/**
 * What a user namespace's id map can be for a given user: the setuid `newuidmap`/`newgidmap`
 * helpers (Debian `uidmap`) and the user's subordinate ranges in `/etc/subuid` and
 * `/etc/subgid`. Root needs none of it (rootful containers share the host's ids); the rootless
 * runtime maps container ids through them, or falls back to a single-id map.
 * @module
 */
import { readFileSync, statSync } from 'node:fs';

/** One helper binary: where it is and whether it can do its job (setuid root). */
export interface IdMapHelper {
  /** Absolute path, or `null` when not found in `/usr/bin`, `/bin`, `/usr/sbin`, `/sbin` or PATH. */
  readonly path: string | null;
  /** Owned by root with the setuid bit: without it, it cannot write another user's id map. */
  readonly setuid: boolean;
}

/** A subordinate id range of `/etc/subuid` or `/etc/subgid`: ids `start` .. `start + count - 1`. */
export interface SubIdRange {
  readonly start: number;
  readonly count: number;
}

/** How container ids map to host ids. */
export type IdMappingMode =
  /** Rootful: the container's ids are the host's (no user namespace). */
  | 'host'
  /** A user namespace with container root -> the user and 1..65535 -> the subordinate range (Podman's layout). */
  | 'subordinate'
  /** A user namespace mapping only container root -> the user; `chown` to other ids fails. */
  | 'single';

/** The id mapping facts of one user. */
export interface IdMappingInfo {
  readonly mode: IdMappingMode;
  /** Why this mode (which helper or range is missing, or that the runtime is root). */
  readonly reason: string;
  readonly newuidmap: IdMapHelper;
  readonly newgidmap: IdMapHelper;
  readonly subuid: readonly SubIdRange[];
  readonly subgid: readonly SubIdRange[];
}

const SYSTEM_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];

/** The first executable file named `name` in the system dirs, then PATH. */
function findBinary(name: string): string | null {
  const dirs = [...SYSTEM_DIRS, ...(process.env['PATH'] ?? '').split(':').filter((d) => d.startsWith('/'))];
  for (const d of dirs) {
    try {
      if (statSync(`${d}/${name}`).isFile()) return `${d}/${name}`;
    } catch {
      // not in this directory
    }
  }
  return null;
}

function helper(name: string): IdMapHelper {
  const path = findBinary(name);
  if (path === null) return { path, setuid: false };
  const st = statSync(path);
  return { path, setuid: st.uid === 0 && (st.mode & 0o4000) !== 0 };
}

/**
 * The ranges of `/etc/subuid`-format `text` that belong to the user, matched by name or by
 * uid as shadow-utils does (`name:start:count` or `uid:start:count`); malformed lines are skipped.
 */
export function parseSubIds(text: string, user: { name: string | undefined; uid: number }): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (who === undefined || start === undefined || count === undefined) continue;
    if (who !== user.name && who !== String(user.uid)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && s >= 0 && c > 0) out.push({ start: s, count: c });
  }
  return out;
}

function readSubIds(path: string, user: { name: string | undefined; uid: number }): SubIdRange[] {
  try {
    return parseSubIds(readFileSync(path, 'utf8'), user);
  } catch {
    return [];
  }
}

/** The user name of `uid` from `/etc/passwd`, if it has one. */
export function userNameOf(uid: number, passwd = '/etc/passwd'): string | undefined {
  try {
    for (const line of readFileSync(passwd, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && f[2] === String(uid)) return f[0];
    }
  } catch {
    // no passwd file: a uid without a name
  }
  return undefined;
}

/**
 * The id mapping `uid` would get: `host` for root, else `subordinate` when both helpers are
 * setuid and the user has a range of at least 65536 ids in both files, else `single`.
 * Never throws.
 */
export function probeIdMapping(uid: number, name: string | undefined = userNameOf(uid)): IdMappingInfo {
  const newuidmap = helper('newuidmap');
  const newgidmap = helper('newgidmap');
  const user = { name, uid };
  const subuid = readSubIds('/etc/subuid', user);
  const subgid = readSubIds('/etc/subgid', user);
  const facts = { newuidmap, newgidmap, subuid, subgid };
  if (uid === 0) return { mode: 'host', reason: 'root: containers use the host ids', ...facts };
  const missing: string[] = [];
  if (!newuidmap.setuid || !newgidmap.setuid) missing.push(newuidmap.path === null || newgidmap.path === null ? 'newuidmap/newgidmap not installed' : 'newuidmap/newgidmap not setuid root');
  if (!subuid.some((r) => r.count >= 65536)) missing.push(`no /etc/subuid range of 65536 ids for ${name ?? uid}`);
  if (!subgid.some((r) => r.count >= 65536)) missing.push(`no /etc/subgid range of 65536 ids for ${name ?? uid}`);
  if (missing.length === 0) return { mode: 'subordinate', reason: 'newuidmap/newgidmap and subordinate ranges present', ...facts };
  return { mode: 'single', reason: missing.join('; '), ...facts };
}
