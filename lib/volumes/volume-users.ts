/**
 * Who uses a volume, recorded in its metadata under its lock so that every process sharing the
 * state directory sees the same answer, and when such a record is stale.
 *
 * - `run`: a `run()` in some process. Stale once that process is gone: the container died with
 *   it (parent-death signal), so the mount is gone too.
 * - `container`: a container (running or not: Docker refuses to remove a volume a stopped
 *   container still references). Stale once the container's directory is gone and the process
 *   that attached it is gone too (so a container being created, whose directory is not renamed
 *   into place yet, is never mistaken for a removed one).
 *
 * Processes are named by pid *and* start time: pids are reused, the pair is not.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ProcessRef {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot when the process started. */
  startTime: string;
}

export type VolumeUserKind = 'run' | 'container';

/** One user of a volume as stored in its metadata. */
export interface VolumeUser {
  kind: VolumeUserKind;
  /** The run's or the container's id. */
  id: string;
  /** The process that attached the volume. */
  owner: ProcessRef;
  /** RFC 3339. */
  since: string;
  /** Where it is mounted. */
  targets: string[];
}

function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const close = text.lastIndexOf(')');
  return close < 0 ? undefined : text.slice(close + 2).trim().split(' ');
}

let self: ProcessRef | undefined;

/** This process. */
export function selfRef(): ProcessRef {
  self ??= { pid: process.pid, startTime: statFields(process.pid)?.[19] ?? '0' };
  return self;
}

/** True while the process `ref` names exists (and is not a zombie). */
export function isProcessAlive(ref: ProcessRef): boolean {
  if (!(ref.pid > 0)) return false;
  const fields = statFields(ref.pid);
  if (!fields || fields[19] !== ref.startTime) return false;
  return fields[0] !== 'Z' && fields[0] !== 'X';
}

/** Whether a recorded user no longer holds the volume. `root` is the state directory. */
export function isStaleUser(user: VolumeUser, root: string): boolean {
  if (user.kind === 'run') return !isProcessAlive(user.owner);
  // The layout is fixed by docs/design/containers.md: <root>/containers/<id>/config.json.
  if (existsSync(join(root, 'containers', user.id, 'config.json'))) return false;
  return !isProcessAlive(user.owner);
}

export function sameUser(a: Pick<VolumeUser, 'kind' | 'id'>, b: Pick<VolumeUser, 'kind' | 'id'>): boolean {
  return a.kind === b.kind && a.id === b.id;
}
