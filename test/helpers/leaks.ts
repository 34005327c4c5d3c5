/**
 * Snapshots of what a run could leave behind on the host: mounts, berth cgroups, fds, zombie
 * and leftover child processes of this process. Compare a snapshot taken before a batch of runs
 * with one taken after.
 * @module
 */
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The cgroup filesystem root on this host. */
export const CGROUP_ROOT = '/sys/fs/cgroup';
/** The parent directory berth creates its cgroups under, in every hierarchy. */
export const BERTH_PARENT_NAME = 'berth';

/** This process's mount table lines (/proc/self/mountinfo), which include unique mount ids. */
export function mountLines(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l !== '');
}

function subdirs(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => {
    try {
      return statSync(join(dir, n)).isDirectory();
    } catch {
      return false;
    }
  });
}

/**
 * Every cgroup directory under a `berth/` parent: `<root>/<hierarchy>/berth/<id>` (v1 and the
 * hybrid `unified` v2 mount) and `<root>/berth/<id>` (a pure v2 host).
 * @param root the cgroup filesystem root; a fixture directory in self-tests.
 */
export function berthCgroupDirs(root = CGROUP_ROOT): string[] {
  const out: string[] = [];
  for (const id of subdirs(join(root, BERTH_PARENT_NAME))) out.push(join(root, BERTH_PARENT_NAME, id));
  for (const h of subdirs(root)) {
    if (h === BERTH_PARENT_NAME) continue;
    const parent = join(root, h, BERTH_PARENT_NAME);
    for (const id of subdirs(parent)) out.push(join(parent, id));
  }
  return out.sort();
}

/** The `berth` parent directories that exist: `<root>/berth` and `<root>/<hierarchy>/berth`. */
export function berthParentDirs(root = CGROUP_ROOT): string[] {
  const out = existsSync(join(root, BERTH_PARENT_NAME)) ? [join(root, BERTH_PARENT_NAME)] : [];
  for (const h of subdirs(root)) if (h !== BERTH_PARENT_NAME && existsSync(join(root, h, BERTH_PARENT_NAME))) out.push(join(root, h, BERTH_PARENT_NAME));
  return out.sort();
}

/** pids in a cgroup dir (v1 `cgroup.procs`, else `tasks`); empty when unreadable. */
export function cgroupPids(dir: string): number[] {
  for (const f of ['cgroup.procs', 'tasks']) {
    try {
      return readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      // try the next name
    }
  }
  return [];
}

/** Whether `pid` is `ancestor` or descends from it (bounded walk up the ppid chain). */
export function descendsFrom(pid: number, ancestor = process.pid): boolean {
  let p = pid;
  for (let i = 0; i < 64 && p > 1; i++) {
    if (p === ancestor) return true;
    const info = readStat(String(p));
    if (!info) return false;
    p = info.ppid;
  }
  return false;
}

/**
 * Whether a berth cgroup could be this process's: empty, or holding one of its descendants.
 * Other processes on the machine may run berth containers at the same time; a populated cgroup
 * none of whose tasks descends from us is theirs.
 */
export function ownedOrEmpty(dir: string): boolean {
  const pids = cgroupPids(dir);
  return pids.length === 0 || pids.some((p) => descendsFrom(p));
}

/** One open file descriptor of this process and what it points at. */
export interface OpenFd {
  fd: number;
  target: string;
}

/**
 * berth keeps a few network namespaces ready (and the pool thread's way home) at fd 4096 and
 * above, and moves the one it hands to a launch back down (src-native/netns-pool.cc). So a
 * network-namespace fd up there is the pool's; one below, a launch's that was not closed: a leak.
 * At most this many are the pool's (its size, plus the way home).
 */
const POOL_FD_FLOOR = 4096;
const POOL_FDS_MAX = 5;

function isPoolFd(fd: number, target: string): boolean {
  return fd >= POOL_FD_FLOOR && target.startsWith('net:[');
}

/** This process's open fds (the directory handle used to list them is excluded). */
export function openFds(): OpenFd[] {
  const out: OpenFd[] = [];
  const pool: OpenFd[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue; // the fd readdir itself used, already closed
    }
    (isPoolFd(Number(name), target) ? pool : out).push({ fd: Number(name), target });
  }
  // More than the pool can hold up there is no longer the pool: report them all.
  if (pool.length > POOL_FDS_MAX) out.push(...pool);
  return out.sort((a, b) => a.fd - b.fd);
}

/**
 * Descriptors open now that were not open in `before` (or now point elsewhere). Others may
 * have closed meanwhile (the runtime's own lazily opened files): only new ones are leaks, so
 * compare sets, never counts.
 */
export function newFdsSince(before: readonly OpenFd[]): OpenFd[] {
  const had = new Set(before.map((f) => `${f.fd}:${f.target}`));
  return openFds().filter((f) => !had.has(`${f.fd}:${f.target}`));
}

/** How many threads this process has now. libuv starts its pool on first use: tests that
 * compare counts start it first (any `fs.promises` call) so that it does not count. */
export function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

/** A process as /proc/<pid>/stat describes it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  comm: string;
}

function readStat(pid: string): ProcInfo | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited meanwhile
  }
  // comm may hold spaces and parentheses: it ends at the last ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  return { pid: Number(pid), comm: text.slice(open + 1, close), state: rest[0]!, ppid: Number(rest[1]) };
}

/** Processes whose parent is `ppid` (default: this process), zombies included. */
export function childProcesses(ppid = process.pid): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = readStat(name);
    if (info && info.ppid === ppid) out.push(info);
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Zombie children of `ppid` (default: this process). */
export function zombieChildren(ppid = process.pid): ProcInfo[] {
  return childProcesses(ppid).filter((p) => p.state === 'Z');
}

/**
 * Processes anywhere on the host whose environment holds `NAME=value`, whatever their parent:
 * finds container processes that outlived their run even after being reparented.
 */
export function processesWithEnv(name: string, value: string): ProcInfo[] {
  const needle = Buffer.from(`${name}=${value}\0`);
  const out: ProcInfo[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let env: Buffer;
    try {
      env = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    if (env.includes(needle)) {
      const info = readStat(pid);
      if (info) out.push(info);
    }
  }
  return out;
}

/** Everything a leak check compares. */
export interface LeakSnapshot {
  mounts: string[];
  cgroups: string[];
  fds: OpenFd[];
  children: ProcInfo[];
  zombies: ProcInfo[];
}

export function snapshot(): LeakSnapshot {
  return { mounts: mountLines(), cgroups: berthCgroupDirs(), fds: openFds(), children: childProcesses(), zombies: zombieChildren() };
}

/** What `after` has that `before` did not. */
export interface LeakDiff {
  mounts: string[];
  cgroups: string[];
  fds: OpenFd[];
  children: ProcInfo[];
  zombies: ProcInfo[];
}

export function diff(before: LeakSnapshot, after: LeakSnapshot): LeakDiff {
  const mounts = new Set(before.mounts);
  const cgroups = new Set(before.cgroups);
  const fds = new Set(before.fds.map((f) => `${f.fd}:${f.target}`));
  const kids = new Set(before.children.map((p) => p.pid));
  return {
    mounts: after.mounts.filter((m) => !mounts.has(m)),
    cgroups: after.cgroups.filter((c) => !cgroups.has(c)),
    fds: after.fds.filter((f) => !fds.has(`${f.fd}:${f.target}`)),
    children: after.children.filter((p) => !kids.has(p.pid)),
    zombies: after.zombies,
  };
}

export function isClean(d: LeakDiff): boolean {
  return d.mounts.length + d.cgroups.length + d.fds.length + d.children.length + d.zombies.length === 0;
}

/**
 * Takes snapshots until nothing new is left compared with `before`, or `attempts` are used up
 * (asynchronous cleanup such as stream closing may need a few event-loop turns). Returns the
 * last difference. Cgroups populated only by other processes' containers are left out.
 */
export async function settledDiff(before: LeakSnapshot, attempts = 20, pauseMs = 50): Promise<LeakDiff> {
  const take = (): LeakDiff => {
    const d = diff(before, snapshot());
    d.cgroups = d.cgroups.filter((c) => ownedOrEmpty(c));
    return d;
  };
  let d = take();
  for (let i = 1; i < attempts && !isClean(d); i++) {
    await sleep(pauseMs);
    d = take();
  }
  return d;
}

