/**
 * A real unprivileged user for rootless tests (issue 15). The test process (root) creates the
 * account with `useradd`, with or without a subordinate id range in /etc/subuid and
 * /etc/subgid, and runs programs as it through `setpriv --reuid --regid --init-groups` with a
 * clean environment (HOME, XDG_DATA_HOME, XDG_RUNTIME_DIR, PATH): the program sees exactly what
 * a developer's shell would give it. `remove()` kills what is left of the user (its own uid and
 * its subordinate ids: a container's processes run as those), deletes the account, its home,
 * its ranges and its runtime dir.
 *
 * Shared with the rootless-networking work: keep it free of anything berth-specific.
 * @module
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openToUsers } from './device-mode.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A subordinate id range: `start` .. `start + count - 1`. */
export interface SubRange {
  start: number;
  count: number;
}

/** What a program run as the user produced. */
export interface UserRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunAsOptions {
  /** Added to (or, with `undefined`, removed from) the user's environment. */
  env?: Record<string, string | undefined>;
  /** Working directory; default the user's home. */
  cwd?: string;
  /** Kill the program (SIGKILL) after this long; a guard against a hang, not a timing assertion. Default 120 s. */
  guardMs?: number;
  /** Written to the program's stdin, then EOF. */
  input?: string;
}

export interface CreateUserOptions {
  /** Give the user 65536 subordinate uids and gids (useradd's own allocation). Default true. */
  subids?: boolean;
  /** Prefix of the account name (a random suffix is added). Default `berth-rl`. */
  prefix?: string;
  /** Device nodes opened to all users while the account exists (test/helpers/device-mode.ts); `remove()` puts their modes back. */
  openDevices?: readonly string[];
}

/** The tools the helper needs, with the Debian package of each. */
const TOOLS: Array<[string, string]> = [
  ['/usr/sbin/useradd', 'passwd'],
  ['/usr/sbin/userdel', 'passwd'],
  ['/usr/bin/setpriv', 'util-linux'],
];

/** A skip reason for `describe(..., { skip })`, or false when rootless tests can run here. */
export function rootlessSkipReason(): string | false {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (to create the test user)';
  for (const [tool, pkg] of TOOLS) if (!existsSync(tool)) return `${tool} is missing: apt-get install ${pkg}`;
  try {
    if (readFileSync('/proc/sys/kernel/unprivileged_userns_clone', 'utf8').trim() === '0') return 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)';
  } catch {
    // the sysctl exists only on Debian/Ubuntu kernels; absent means allowed
  }
  return false;
}

function rangeOf(file: string, name: string): SubRange | undefined {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [who, start, count] = line.split(':');
    if (who === name && start !== undefined && count !== undefined) return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

/** Uids of a process from /proc/<pid>/status (real, effective, saved, fs), or undefined if it is gone. */
function uidsOf(pid: string): number[] | undefined {
  try {
    const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? m.slice(1).map(Number) : undefined;
  } catch {
    return undefined;
  }
}

function isEsbuildService(pid: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'esbuild';
  } catch {
    return false;
  }
}

/** A test user; see the module comment. */
export class RootlessUser {
  private constructor(
    readonly name: string,
    readonly uid: number,
    readonly gid: number,
    readonly home: string,
    readonly runtimeDir: string,
    readonly subuid: SubRange | undefined,
    readonly subgid: SubRange | undefined,
  ) {}

  /** What puts back the modes of the devices opened for this user. */
  private readonly restoreDevices: Array<() => void> = [];

  /** Creates the account (and its runtime dir, mode 0700, as systemd-logind would). */
  static create(options: CreateUserOptions = {}): RootlessUser {
    const name = `${options.prefix ?? 'berth-rl'}-${randomBytes(3).toString('hex')}`;
    const subids = options.subids !== false;
    // useradd allocates a free subordinate range itself (login.defs SUB_*); a count of 0 gives none.
    const noSubids = subids ? [] : ['-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0'];
    execFileSync('/usr/sbin/useradd', ['-m', '-s', '/bin/sh', '-U', ...noSubids, name], { stdio: 'pipe' });
    let user: RootlessUser;
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      const home = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).split(':')[5]!;
      let subuid = rangeOf('/etc/subuid', name);
      let subgid = rangeOf('/etc/subgid', name);
      if (subids && (subuid === undefined || subgid === undefined)) throw new Error(`useradd gave ${name} no subordinate range (check SUB_UID_COUNT in /etc/login.defs)`);
      if (!subids && (subuid !== undefined || subgid !== undefined)) throw new Error(`useradd gave ${name} a subordinate range although asked not to`);
      const runtimeDir = `/run/user/${uid}`;
      mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
      chownSync(runtimeDir, uid, gid);
      user = new RootlessUser(name, uid, gid, home, runtimeDir, subuid, subgid);
    } catch (error) {
      execFileSync('/usr/sbin/userdel', ['-r', '-f', name], { stdio: 'ignore' });
      throw error;
    }
    try {
      for (const device of options.openDevices ?? []) user.restoreDevices.push(openToUsers(device));
    } catch (error) {
      user.remove();
      throw error;
    }
    return user;
  }

  /** The environment a login shell of the user would have (berth's rootless defaults key off it). */
  env(extra: Record<string, string | undefined> = {}): Record<string, string> {
    const base: Record<string, string | undefined> = {
      HOME: this.home,
      USER: this.name,
      LOGNAME: this.name,
      PATH: '/usr/local/bin:/usr/bin:/bin',
      XDG_DATA_HOME: join(this.home, '.local/share'),
      XDG_RUNTIME_DIR: this.runtimeDir,
      LANG: 'C.UTF-8',
      ...extra,
    };
    return Object.fromEntries(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
  }

  /** setpriv's argv for running `argv` as the user (setpriv execs it: the pid is the program's). */
  private setprivArgs(argv: string[]): string[] {
    return ['--reuid', String(this.uid), '--regid', String(this.gid), '--init-groups', '--', ...argv];
  }

  /** Runs `argv` as the user; resolves with its output once it exits. */
  run(argv: string[], options: RunAsOptions = {}): Promise<UserRun> {
    return new Promise((resolve, reject) => {
      const child = spawn('/usr/bin/setpriv', this.setprivArgs(argv), { cwd: options.cwd ?? this.home, env: this.env(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      const guard = setTimeout(() => child.kill('SIGKILL'), options.guardMs ?? 120_000);
      child.on('error', (e) => {
        clearTimeout(guard);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(guard);
        resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
      child.stdin.end(options.input ?? '');
    });
  }

  /** Runs a TypeScript program (through tsx, as the test suite runs) as the user; cwd defaults to the repository, where tsx resolves. */
  runNode(script: string, args: string[] = [], options: RunAsOptions = {}): Promise<UserRun> {
    return this.run([process.execPath, '--import', 'tsx', script, ...args], { cwd: REPO_ROOT, ...options });
  }

  /**
   * Starts a TypeScript program as the user and returns at once, for a test that must act on the
   * running program (kill it): its pid is the program's own, since setpriv execs it. stdin is
   * closed; the caller reads stdout and stderr. See test/helpers/rootless-owner.ts.
   */
  spawnNode(script: string, args: string[] = []): ChildProcessByStdio<null, Readable, Readable> {
    const argv = [process.execPath, '--import', 'tsx', script, ...args];
    return spawn('/usr/bin/setpriv', this.setprivArgs(argv), { cwd: REPO_ROOT, env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /**
   * Pids of processes running as the user or as one of its subordinate ids (its containers).
   * The esbuild service tsx starts for a TypeScript program is not counted: it is the test
   * runner's, and it exits on its own once it reads EOF from the program that just ended.
   */
  processes(): number[] {
    const mine = (id: number) => id === this.uid || (this.subuid !== undefined && id >= this.subuid.start && id < this.subuid.start + this.subuid.count);
    const out: number[] = [];
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const uids = uidsOf(pid);
      if (uids?.some(mine) && !isEsbuildService(pid)) out.push(Number(pid));
    }
    return out;
  }

  /** Kills what is left of the user (by pid), removes the account, its home, ranges and runtime dir. */
  remove(): void {
    for (const pid of this.processes()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // userdel also drops the user's /etc/subuid and /etc/subgid lines (shadow >= 4.2).
    execFileSync('/usr/sbin/userdel', ['-r', '-f', this.name], { stdio: 'ignore' });
    rmSync(this.runtimeDir, { recursive: true, force: true });
    for (const restore of this.restoreDevices.splice(0).reverse()) restore();
  }
}
