/**
 * What berth's rootless networking runs and leaves, seen from /proc and the runtime dir by the
 * program a rootless test runs as the user: the user-mode stacks (pasta, slirp4netns), the
 * `berth-helper` processes by verb, and the stacks' scratch directories.
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A process that has not ended, with its command line. */
export interface LiveProcess {
  pid: number;
  argv: string[];
}

/** argv[0] of a user-mode stack (pasta may exec its passt binary, or the avx2 build of either). */
const STACK = /(^|\/)(pasta|passt|slirp4netns)(\.avx2)?$/;

/** Every process this program can see that is not a zombie. */
export function liveProcesses(): LiveProcess[] {
  const out: LiveProcess[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1];
      if (state !== 'Z') out.push({ pid: Number(p), argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whether `p` runs a user-mode stack. */
export function isStack(p: LiveProcess): boolean {
  return STACK.test(p.argv[0]!);
}

/** Whether `p` runs `berth-helper <verb>`. */
export function isBerthHelper(p: LiveProcess, verb: string): boolean {
  return /berth-helper$/.test(p.argv[0]!) && p.argv[1] === verb;
}

/** Pids of the live user-mode stacks. */
export function stackPids(): number[] {
  return liveProcesses().filter(isStack).map((p) => p.pid);
}

/** The stacks' scratch directories in `runtimeDir`/berth (default this user's XDG_RUNTIME_DIR). */
export function scratchDirs(runtimeDir = process.env['XDG_RUNTIME_DIR']!): string[] {
  try {
    return readdirSync(join(runtimeDir, 'berth')).filter((n) => n.startsWith('berth-usermode-'));
  } catch {
    return [];
  }
}
