/**
 * Resolves the `user` option (`'name'`, `'uid'`, `'name:group'`, `'uid:gid'`, ...) against a root
 * filesystem's `/etc/passwd` and `/etc/group`, with runc's rules (`libcontainer/user.GetExecUser`),
 * which are the rules every Docker user has learned.
 * @module
 */

import { NotFoundError, ValidationError } from '../errors.js';

/** One usable line of a passwd file. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

/** One usable line of a group file. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The identity a container process runs as. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups: every group listing the user as a member (implicit-group form only). */
  additionalGids: number[];
  /** `$HOME`: the passwd entry's home, or `/` when there is no entry. */
  home: string;
  /** The passwd entry's name, when one matched. */
  name?: string;
}

/** The largest valid id: the kernel reserves `(uid_t)-1` as "no change" in setresuid and chown. */
export const MAX_ID = 2 ** 32 - 2;

/**
 * Parses passwd text. Comments, blank lines, NIS `+`/`-` lines and lines whose uid or gid is not
 * a number are skipped rather than guessed at: a misread id could turn into root.
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const fields of lines(text)) {
    const [name = '', , uidText, gidText, gecos = '', home = '', shell = ''] = fields;
    const uid = parseId(uidText);
    const gid = parseId(gidText);
    if (name === '' || uid === undefined || gid === undefined) continue;
    entries.push({ name, uid, gid, gecos, home, shell });
  }
  return entries;
}

/** Parses group text with the same tolerance as {@link parsePasswd}; a missing member list is empty. */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const fields of lines(text)) {
    const [name = '', , gidText, memberText = ''] = fields;
    const gid = parseId(gidText);
    if (name === '' || gid === undefined) continue;
    const members = memberText.split(',').map((m) => m.trim()).filter((m) => m !== '');
    entries.push({ name, gid, members });
  }
  return entries;
}

function* lines(text: string): Generator<string[]> {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    yield line.split(':');
  }
}

function parseId(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}

/** The contents of the image's `/etc/passwd` and `/etc/group`; `undefined` when the file is absent. */
export interface UserFiles {
  passwd?: string;
  group?: string;
}

/**
 * Resolves Docker's `--user` syntax against the image's passwd and group files.
 *
 * - `undefined` or `''`: root, `0:0`, home from root's passwd entry or `/`.
 * - `'name'`/`'uid'`: the passwd entry (first match wins); a numeric uid without an entry is
 *   fine (gid 0, home `/`), a name without one is a {@link NotFoundError}.
 * - `'user:group'` with either part a name or a number: the group replaces the passwd gid, a
 *   numeric gid without an entry is fine, a group name without one is a {@link NotFoundError}.
 * - Supplementary groups come from the group file's member lists, and only in the implicit
 *   form: naming a group explicitly means exactly that group, as in runc.
 *
 * A numeric part is always an id, never a name, even if a user is literally called `1000`.
 * @throws {NotFoundError} (`ERR_NOT_FOUND`, option `user`) for a user or group name with no entry.
 * @throws {ValidationError} (option `user`) for a malformed spec or an id outside 0..2^32-2.
 */
export function resolveUser(user: string | undefined, files: UserFiles = {}): ResolvedUser {
  if (user !== undefined && typeof user !== 'string') {
    throw new ValidationError('user', `must be a string such as "1000:1000" or "nobody", got ${typeof user}`);
  }
  const spec = user ?? '';
  const parts = spec.split(':');
  if (parts.length > 2) {
    throw new ValidationError('user', `invalid user ${JSON.stringify(spec)}: expected "user" or "user:group"`);
  }
  const [userArg = '', groupArg = ''] = parts;
  const uidArg = numericId(userArg, spec, 'uid');
  const gidArg = numericId(groupArg, spec, 'gid');
  const passwd = files.passwd === undefined ? [] : parsePasswd(files.passwd);

  const entry = passwd.find((e) => {
    if (userArg === '') return e.uid === 0;
    return uidArg !== undefined ? e.uid === uidArg : e.name === userArg;
  });
  let uid = 0;
  let gid = 0;
  let home = '/';
  if (entry !== undefined) {
    ({ uid, gid } = entry);
    if (entry.home !== '') home = entry.home;
  } else if (userArg !== '') {
    if (uidArg === undefined) {
      throw new NotFoundError(`unable to find user ${userArg}: no matching entries in passwd file`, { option: 'user' });
    }
    uid = uidArg;
  }

  let additionalGids: number[] = [];
  if (groupArg !== '' || entry !== undefined) {
    const groups = files.group === undefined ? [] : parseGroup(files.group);
    if (groupArg !== '') {
      const group = groups.find((g) => (gidArg !== undefined ? g.gid === gidArg : g.name === groupArg));
      if (group !== undefined) {
        gid = group.gid;
      } else if (gidArg !== undefined) {
        gid = gidArg;
      } else {
        throw new NotFoundError(`unable to find group ${groupArg}: no matching entries in group file`, { option: 'user' });
      }
    } else {
      const gids = groups.filter((g) => g.members.includes(entry!.name)).map((g) => g.gid);
      additionalGids = [...new Set(gids)];
    }
  }

  // Entries from the image are checked too: an id the kernel cannot take would only fail later,
  // inside the container, as a bare EINVAL from setresuid.
  checkRange(uid, spec, 'uid');
  checkRange(gid, spec, 'gid');
  for (const extra of additionalGids) checkRange(extra, spec, 'supplementary gid');
  return entry === undefined ? { uid, gid, additionalGids, home } : { uid, gid, additionalGids, home, name: entry.name };
}

/** A decimal part is an id (a sign makes it one too, so `-1` is out of range, not a user name). */
function numericId(part: string, spec: string, what: 'uid' | 'gid'): number | undefined {
  if (!/^[+-]?\d+$/.test(part)) return undefined;
  const id = Number(part);
  checkRange(id, spec, what);
  return id;
}

function checkRange(id: number, spec: string, what: string): void {
  if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) {
    throw new ValidationError('user', `invalid user ${JSON.stringify(spec)}: ${what} ${id} is outside 0..${MAX_ID}`);
  }
}
