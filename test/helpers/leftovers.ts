/**
 * What a rootless test user leaves on the host: its processes (its own uid and its subordinate
 * ids, see RootlessUser.processes()) and mounts under its home or runtime dir. The end of a
 * process is asynchronous to what caused it (a SIGKILL, a parent-death signal, end of file), so
 * the checks that follow a kill wait, with a bound that guards against a hang and is never a
 * timing assertion.
 * @module
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RootlessUser } from './rootless-user.js';

/**
 * Running: not a zombie. A process that exited (with its owner, by a parent-death signal)
 * stays a zombie until its reaper collects it, and holds nothing but its pid meanwhile.
 */
export function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Not yet ended, counting zombies whose parent is still to reap them: a helper that ends with
 * its owner is reparented to PID 1 and waits there as a zombie, which has ended and is not
 * counted; a zombie of any other parent is (its parent has not waited for it).
 */
export function unreaped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return !(state === 'Z' && ppid === '1');
  } catch {
    return false;
  }
}

/** Present in /proc in any state, zombies included. */
export function present(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/** `<pid> <command line>`, or `<pid> (gone)`: what a failed leftover check prints. */
export function describeProcess(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
  } catch {
    return `${pid} (gone)`;
  }
}

/** Those of `pids` that still count (default: {@link running}) after at most `boundMs`. */
export async function untilGone(pids: readonly number[], boundMs = 10_000, counts: (pid: number) => boolean = running): Promise<number[]> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const left = pids.filter(counts);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(50);
  }
}

/** The user's processes that still count (default: {@link running}) after at most `boundMs`, described. */
export async function leftAfter(user: RootlessUser, boundMs: number, counts: (pid: number) => boolean = running): Promise<string[]> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const left = user.processes().filter(counts);
    if (left.length === 0 || Date.now() > deadline) return left.map(describeProcess);
    await sleep(50);
  }
}

/** Host mounts under the user's home or runtime dir: a rootless launch must leave none. */
export function mountsOf(user: RootlessUser): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(` ${user.home}`) || l.includes(` ${user.runtimeDir}`));
}
