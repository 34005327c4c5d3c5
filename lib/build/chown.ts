/**
 * `--chown=user[:group]` of COPY/ADD: names resolved in the stage's own `/etc/passwd` and
 * `/etc/group`, read through the confined view of its layers. As in Docker, a missing group
 * part means "the same as the user part" (`--chown=app` is `app:app`; `--chown=10` is `10:10`).
 * @module
 */
import { closeSync, fstatSync } from 'node:fs';
import type { MergedView } from '../image/merged-view.js';
import { parseGroup, parsePasswd } from '../rootfs/passwd.js';
import { BuildSourceNotFoundError, DockerfileSyntaxError, type SourceLocation } from './build-errors.js';
import { readOpenFile } from './read-open-file.js';

const MAX_ACCOUNT_FILE = 4 * 1024 * 1024;

function readSmall(view: MergedView, path: string): string | undefined {
  const rel = view.resolve(path);
  if (rel === null) return undefined;
  const e = view.lookup(rel);
  if (!e) return undefined;
  let fd: number;
  try {
    fd = e.layer.openFile(rel);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_ACCOUNT_FILE) return undefined;
    return readOpenFile(fd, st.size).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const ID = /^[0-9]+$/;
const MAX_ID = 2 ** 32 - 2;

/** The numeric owner of a `--chown` value in the stage `view`. */
export function resolveChown(value: string, view: MergedView, loc: SourceLocation): { uid: number; gid: number } {
  const parts = value.split(':');
  if (parts.length > 2 || parts[0] === '') throw new DockerfileSyntaxError(loc, `invalid --chown value ${JSON.stringify(value)}: expected user[:group]`);
  const user = parts[0]!;
  const group = parts[1] ?? user;
  const id = (text: string, kind: string): number => {
    const n = Number(text);
    if (n > MAX_ID) throw new DockerfileSyntaxError(loc, `--chown: ${kind} ${text} is out of range`);
    return n;
  };
  let uid: number;
  if (ID.test(user)) uid = id(user, 'uid');
  else {
    const passwd = readSmall(view, '/etc/passwd');
    const entry = passwd === undefined ? undefined : parsePasswd(passwd).find((e) => e.name === user);
    if (!entry) throw new BuildSourceNotFoundError(loc, `--chown: unable to find user ${user}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  let gid: number;
  if (ID.test(group)) gid = id(group, 'gid');
  else {
    const groups = readSmall(view, '/etc/group');
    const entry = groups === undefined ? undefined : parseGroup(groups).find((e) => e.name === group);
    if (!entry) throw new BuildSourceNotFoundError(loc, `--chown: unable to find group ${group}: no matching entries in group file`);
    gid = entry.gid;
  }
  return { uid, gid };
}
