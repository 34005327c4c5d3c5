/**
 * A process named by pid *and* start time: pids are reused, the pair is not. State files record
 * the pair for a container's PID 1, for the Node process that owns a container, a lease or a
 * volume, and in the names of `run()` cgroups; this module is the one reader of
 * /proc/<pid>/stat behind all of them.
 * @module
 */
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot when the process started, in decimal. */
  startTime: string;
}

/** Fields of /proc/<pid>/stat after the command name (index 0 is field 3, the state). */
export function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  return text.slice(close + 2).trim().split(' ');
}

/** The start time of `pid`, or undefined if no such process exists. */
export function processStartTime(pid: number): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return statFields(pid)?.[19];
}

/** True while the process that `id` names is alive (and not a zombie). */
export function isAlive(id: ProcessIdentity | undefined): boolean {
  if (!id || !(id.pid > 0)) return false;
  const fields = statFields(id.pid);
  if (!fields || fields[19] !== id.startTime) return false;
  return fields[0] !== 'Z' && fields[0] !== 'X';
}

let self: ProcessIdentity | undefined;

/** This Node process. */
export function selfIdentity(): ProcessIdentity {
  self ??= { pid: process.pid, startTime: processStartTime(process.pid) ?? '0' };
  return self;
}

/** The identity of `pid` now, if it exists. */
export function identityOf(pid: number): ProcessIdentity | undefined {
  const startTime = processStartTime(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}
