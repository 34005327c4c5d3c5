/**
 * A process named by pid *and* start time: pids are reused, the pair is not. State files record
 * the pair for a container's PID 1, for the Node process that owns a container, a lease or a
 * volume, and in the names of `run()` cgroups; this module is the one reader of
 * /proc/<pid>/stat behind all of them.
 * @module
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot when the process started, in decimal. */
  startTime: string;
}

/**
 * One line of /proc/<pid>/stat is well under this (52 numbers and a command name of at most
 * 15 bytes, escaped): one read(2) gets it whole.
 */
const STAT_BUFFER = Buffer.allocUnsafe(4096);

/**
 * The text of /proc/<pid>/stat, in three system calls where `readFileSync` makes five (it
 * fstat()s, and reads again for the end of a file whose size procfs reports as 0): `list()`
 * does this once per running container.
 */
function readStat(pid: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/stat`, 'r');
  } catch {
    return undefined;
  }
  try {
    const n = readSync(fd, STAT_BUFFER, 0, STAT_BUFFER.length, 0);
    return STAT_BUFFER.toString('latin1', 0, n);
  } catch {
    return undefined; // ESRCH: it exited between open and read
  } finally {
    closeSync(fd);
  }
}

/** Fields of /proc/<pid>/stat after the command name (index 0 is field 3, the state). */
export function statFields(pid: number): string[] | undefined {
  const text = readStat(pid);
  if (text === undefined) return undefined;
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
