/**
 * `exec()`: a new process in a running container's namespaces and cgroup, with the
 * container's security settings (capabilities, seccomp, no_new_privs, rlimits), launched by
 * the native core's join path (`spec.join`, planned by `lib/launch/exec-plan.ts`; see
 * `docs/design/containers.md`).
 *
 * The user is resolved in the container's *current* root filesystem (its `/etc/passwd` may
 * have changed since start), read through `/proc/<pid>/root` with confined lookups: an
 * `/etc` that the container turned into a symlink can never make berth read a host file.
 * @module
 */
import { closeSync, readSync } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { checkMaxBuffer, collectBounded } from '../launch/bounded-output.js';
import { ContainerProcess, signalNumber } from '../launch/container-process.js';
import { execNamespaces, planExec } from '../launch/exec-plan.js';
import { stagingDir } from '../launch/launcher.js';
import type { NormalizedRunOptions } from '../launch/run-options.js';
import { AbortError, ConflictError, SystemError, ValidationError } from '../errors.js';
import { execHelperExecutableFd, fromNativeError, native, type NativeLaunchSpec, type NativeSpawnResult } from '../native.js';
import { resolveUser, type ResolvedUser } from '../rootfs/passwd.js';
import type { ContainerRecord } from './container-record.js';
import { ConfinedDir } from '../image/merged-view.js';
import { S_IFMT, S_IFREG } from '../image/overlay-format.js';
import { processStartTime } from '../state/process-identity.js';
import { isRootless } from '../rootless/index.js';

/** Options of `exec()`. */
export interface ExecOptions {
  /** Added to (and overriding) the container's environment. */
  env?: Record<string, string | undefined>;
  /** Default: the container's user. */
  user?: string;
  /** Default: the container's working directory. */
  workdir?: string;
  tty?: boolean;
  /** Data for stdin, then EOF; `true` keeps stdin open as a pipe (streaming form). Default /dev/null. */
  stdin?: string | Buffer | Readable | boolean;
  /** All capabilities and no seccomp for this process, as `docker exec --privileged`. */
  privileged?: boolean;
  /** Kills the exec'd process; `exec()` rejects with an AbortError. */
  signal?: AbortSignal;
  /** Result form: `'utf8'` (default) strings or `'buffer'`. */
  encoding?: 'utf8' | 'buffer';
  /**
   * Result form: bytes of stdout and of stderr kept (each; default 16 MiB). Past it the rest is
   * read and discarded and the result has `truncated: true`.
   */
  maxBuffer?: number;
}

/** The result form of `exec()`. */
export interface ExecResult<Output = string> {
  exitCode: number;
  signal: NodeJS.Signals | null;
  stdout: Output;
  stderr: Output;
  /** stdout or stderr wrote more than `maxBuffer` bytes; the rest was discarded. */
  truncated: boolean;
}

/**
 * A pidfd for the container's PID 1, checked against the recorded start time (pids are
 * reused: the check after opening proves the pidfd names the process the state file means).
 */
export function openContainerPidfd(pid: number, startTime: string | undefined): number {
  let fd: number;
  try {
    fd = native().pidfdOpen(pid);
  } catch (error) {
    throw fromNativeError(error);
  }
  if (startTime !== undefined && processStartTime(pid) !== startTime) {
    closeSync(fd);
    throw new ConflictError(`the container's process ${pid} is gone (its pid now names another process)`);
  }
  return fd;
}

function readConfined(root: ConfinedDir, rel: string): string | undefined {
  const st = root.lstat(rel);
  if (!st || (st.mode & S_IFMT) !== S_IFREG || st.size > 4 * 1024 * 1024) return undefined;
  let fd: number;
  try {
    fd = root.openFile(rel);
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
    }
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** Resolves `user` in the live container's /etc/passwd and /etc/group. */
export function resolveUserInContainer(pid: number, user: string | undefined): ResolvedUser {
  let root: ConfinedDir;
  try {
    root = ConfinedDir.open(`/proc/${pid}/root`);
  } catch (error) {
    throw new SystemError('ESRCH', `cannot open the root of container process ${pid}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return resolveUser(user, { passwd: readConfined(root, 'etc/passwd') ?? '', group: readConfined(root, 'etc/group') ?? '' });
  } finally {
    root.close();
  }
}

export interface ExecContext {
  record: ContainerRecord;
  pid: number;
  pidfd: number;
  cgroupProcs: readonly string[];
}

/**
 * A rootless container runs in a user namespace the launcher made for it (its record keeps no
 * `userns`): an exec joins that one, with the capabilities of its root. The maps here only
 * mark the plan as namespaced; the joined namespace's own maps apply (planExec drops these).
 */
function joinedUserns(): NonNullable<NormalizedRunOptions['userns']> {
  const uid = process.geteuid!();
  const gid = process.getegid!();
  return { uidMap: [{ containerId: 0, hostId: uid, size: 1 }], gidMap: [{ containerId: 0, hostId: gid, size: 1 }] };
}

/** The launch spec of an exec: the container's settings, joined instead of created. */
export function planContainerExec(ctx: ExecContext, argv: string[], opts: ExecOptions): NativeLaunchSpec {
  const rec = ctx.record;
  return planExecAs(ctx, resolveUserInContainer(ctx.pid, opts.user ?? rec.options.user ?? rec.imageConfig?.User), argv, opts);
}

/**
 * {@link planContainerExec} with the user already resolved: a detached container's health probe
 * is planned at start, as the container's own user, before any process of it can be read.
 */
export function planExecAs(ctx: Omit<ExecContext, 'pid'>, user: ResolvedUser, argv: string[], opts: ExecOptions): NativeLaunchSpec {
  const rec = ctx.record;
  const hasHome = [...rec.env, ...Object.keys(opts.env ?? {}).map((k) => `${k}=`)].some((kv) => kv.startsWith('HOME='));
  const options: NormalizedRunOptions = {
    ...rec.options,
    user: `${user.uid}:${user.gid}`,
    env: { ...(hasHome ? {} : { HOME: user.home || '/' }), ...(opts.env ?? {}) },
    hostname: rec.hostname,
    mounts: [],
    init: false,
    tty: opts.tty === true,
    ...(opts.workdir !== undefined ? { workdir: opts.workdir } : rec.options.workdir === undefined && rec.imageConfig?.WorkingDir ? { workdir: rec.imageConfig.WorkingDir } : {}),
    ...(opts.privileged ? { privileged: true } : {}),
    ...(rec.options.userns === undefined && isRootless() ? { userns: joinedUserns() } : {}),
  };
  const spec = planExec(
    {
      // The root only serves identity lookups, done above in the live container: an empty directory.
      root: { kind: 'rootfs', dir: stagingDir() },
      argv,
      options,
      stagingDir: stagingDir(),
      cgroupProcs: ctx.cgroupProcs,
      cgroupMounts: [],
      imageEnv: rec.env,
      stdinPiped: opts.stdin !== undefined && opts.stdin !== false,
    },
    {
      pidfd: ctx.pidfd,
      namespaces: execNamespaces({ network: rec.options.network ?? 'none', userns: options.userns !== undefined }),
      helperFd: execHelperExecutableFd(),
    },
  );
  return { ...spec, uid: user.uid, gid: user.gid, groups: user.additionalGids };
}

/**
 * Waits, on the event loop, until the exec'd process has exec'd (or failed to). The process is
 * visible to the container until then, so the container may stop it: `signal` kills it, and
 * nothing but this promise waits for it.
 */
async function awaitLaunch(spawned: NativeSpawnResult, signal: AbortSignal | undefined): Promise<NativeSpawnResult> {
  if (!spawned.launched) return spawned;
  const kill = () => native().sendSignal(spawned.pidfd, 9);
  signal?.addEventListener('abort', kill, { once: true });
  if (signal?.aborted) kill();
  try {
    const status = await spawned.launched;
    return { ...spawned, ttyMaster: status.ttyMaster, ...(status.execFailed ? { execFailed: status.execFailed } : {}) };
  } catch (error) {
    for (const fd of spawned.stdio) if (fd >= 0) closeSync(fd);
    native().watchExit(spawned.pidfd, () => {});
    throw fromNativeError(error);
  } finally {
    signal?.removeEventListener('abort', kill);
  }
}

/** Spawns the planned exec; `execFailed` comes back as exit code 127/126 with a message. */
export async function spawnExec(spec: NativeLaunchSpec, argv0: string, signal?: AbortSignal): Promise<{ process: ContainerProcess } | { failure: { exitCode: 126 | 127; message: string } }> {
  let spawned: NativeSpawnResult;
  try {
    spawned = await awaitLaunch(await native().spawn(spec), signal);
  } catch (error) {
    throw fromNativeError(error);
  }
  if (spawned.execFailed) {
    for (const fd of spawned.stdio) if (fd >= 0) closeSync(fd);
    // The process reported and exits by itself; reap it whenever it does.
    if (spawned.launched) native().watchExit(spawned.pidfd, () => {});
    const f = spawned.execFailed;
    const message = f.notFound
      ? `berth: exec: "${argv0}": executable file not found in $PATH\n`
      : `berth: exec: "${f.path ?? argv0}": ${f.code === 'EACCES' ? 'permission denied' : f.message}\n`;
    return { failure: { exitCode: f.notFound ? 127 : 126, message } };
  }
  return { process: new ContainerProcess(spawned) };
}

export function checkExecArgv(cmd: unknown): string[] {
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((a) => typeof a !== 'string')) {
    throw new ValidationError('cmd', 'must be a non-empty array of strings, e.g. ["ls", "/"]');
  }
  if (cmd[0] === '') throw new ValidationError('cmd[0]', 'must not be empty');
  return cmd as string[];
}

/** The streaming form of `exec()`. */
export interface ExecSession {
  /** Host pid of the exec'd process (0 when it could not be executed). */
  readonly pid: number;
  /** With `stdin: true`: the process's stdin. */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** `null` with a TTY. */
  readonly stderr: Readable | null;
  readonly exited: Promise<{ exitCode: number; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): boolean;
}

type Started = { process: ContainerProcess } | { failure: { exitCode: 126 | 127; message: string } };

function feed(proc: ContainerProcess, stdin: ExecOptions['stdin']): void {
  if (!proc.stdin || stdin === undefined || typeof stdin === 'boolean') return;
  if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) proc.stdin.end(stdin);
  else stdin.pipe(proc.stdin);
}

/** Waits for a started exec and collects its output (the result form). */
export async function execResult(started: Started, opts: ExecOptions): Promise<ExecResult<string | Buffer>> {
  const asText = opts.encoding !== 'buffer';
  const out = (b: Buffer) => (asText ? b.toString('utf8') : b);
  if ('failure' in started) return { exitCode: started.failure.exitCode, signal: null, stdout: out(Buffer.alloc(0)), stderr: out(Buffer.from(started.failure.message)), truncated: false };
  const max = checkMaxBuffer(opts.maxBuffer);
  const proc = started.process;
  feed(proc, opts.stdin);
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    proc.kill(9);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  try {
    const [status, stdout, stderr] = await Promise.all([proc.exited, collectBounded(proc.stdout, max), collectBounded(proc.stderr, max)]);
    if (aborted) throw new AbortError('exec() was aborted; the process was killed', { cause: opts.signal?.reason });
    return { exitCode: status.exitCode, signal: status.signal, stdout: out(stdout.data), stderr: out(stderr.data), truncated: stdout.truncated || stderr.truncated };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** A started exec as a session (the streaming form). */
export function execSession(started: Started, opts: ExecOptions): ExecSession {
  if ('failure' in started) {
    const { exitCode, message } = started.failure;
    return {
      pid: 0,
      stdin: null,
      stdout: Readable.from([]),
      stderr: Readable.from([Buffer.from(message)]),
      exited: Promise.resolve({ exitCode, signal: null }),
      kill: () => false,
    };
  }
  const proc = started.process;
  feed(proc, opts.stdin);
  const onAbort = () => proc.kill(9);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  const exited = proc.exited.then((s) => {
    opts.signal?.removeEventListener('abort', onAbort);
    return s;
  });
  return {
    pid: proc.pid,
    stdin: opts.stdin === true ? proc.stdin : null,
    stdout: proc.stdout,
    stderr: proc.stderr,
    exited,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => proc.kill(signalNumber(signal) ?? 9),
  };
}
