/**
 * `run()`: one call from a root filesystem and an argv to a finished sandbox's result.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { cgroupsForHost } from './container/cgroup-setup.js';
import { ContainerProcess } from './container/container-process.js';
import { planLaunch, type LaunchRoot } from './container/launch-plan.js';
import { normalizeRunOptions, type NormalizedRunOptions, type RunOptions, type RunSource } from './container/run-options.js';
import { commandFor } from './container/image-config.js';
import { AbortError, NotFoundError, ValidationError } from './errors.js';
import type { ContainerConfig } from './image/manifest.js';
import { defaultRuntime } from './runtime.js';
import { fromNativeError, helperExecutableFd, native } from './native.js';

/** What {@link run} reports. */
export interface RunResult<Output = string> {
  /** Exit code; 128 + n when killed by signal n; 127 command not found; 126 not executable. */
  exitCode: number;
  /** Name of the signal that killed the container's PID 1, if any. */
  signal: NodeJS.Signals | null;
  stdout: Output;
  stderr: Output;
  /** The kernel's OOM killer killed a process of the container. */
  oomKilled: boolean;
  /** The `timeout` option expired and the container was killed. */
  timedOut: boolean;
  /** Wall time from the start of the launch to the exit, in milliseconds. */
  durationMs: number;
}

/** Where every container's private tmpfs is mounted, inside its own mount namespace only. */
export const STAGING_DIR = '/run/berth/rootfs';
/** berth's default cap on tasks per container: a fork bomb stops here. */
export const DEFAULT_PIDS_LIMIT = 4096;

let stagingReady = false;
function ensureStagingDir(): void {
  if (stagingReady) return;
  mkdirSync(STAGING_DIR, { recursive: true, mode: 0o700 });
  stagingReady = true;
}

function resolveRoot(source: Exclude<RunSource, string>): LaunchRoot {
  if (typeof source !== 'object' || source === null) throw new ValidationError('source', 'must be { rootfs }, { host: true } or an image reference');
  if ('host' in source) {
    if (source.host !== true) throw new ValidationError('source.host', 'must be true');
    return { kind: 'host' };
  }
  const dir = (source as { rootfs?: unknown }).rootfs;
  if (typeof dir !== 'string' || dir === '') throw new ValidationError('rootfs', 'must be a non-empty string');
  if (!isAbsolute(dir)) throw new ValidationError('rootfs', `must be an absolute path, got "${dir}"`);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new NotFoundError(`rootfs: "${dir}" does not exist`, { option: 'rootfs', path: dir });
  }
  if (!isDir) throw new ValidationError('rootfs', `"${dir}" is not a directory`);
  return { kind: 'rootfs', dir };
}

function checkArgv(cmd: unknown): string[] {
  if (!Array.isArray(cmd) || cmd.length === 0) {
    throw new ValidationError('cmd', 'a command is required (an array of strings, e.g. ["sh", "-c", "echo hi"])');
  }
  cmd.forEach((a, i) => {
    if (typeof a !== 'string') throw new ValidationError(`cmd[${i}]`, 'must be a string');
    if (a.includes('\0')) throw new ValidationError(`cmd[${i}]`, 'must not contain NUL bytes');
  });
  if (cmd[0] === '') throw new ValidationError('cmd[0]', 'must not be empty');
  return cmd as string[];
}

function collect(stream: Readable | null): Promise<Buffer> {
  if (!stream) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    // A tty master reports EIO once the last slave fd closes: that is its end of file.
    stream.on('error', () => resolve(Buffer.concat(chunks)));
    stream.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

function feedStdin(proc: ContainerProcess, stdin: RunOptions['stdin']): void {
  if (!proc.stdin || stdin === undefined) return;
  if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) {
    proc.stdin.end(stdin);
  } else {
    stdin.pipe(proc.stdin);
  }
}

/**
 * Runs `cmd` in a new sandbox and resolves with its result once it has exited and every
 * resource it used (cgroup, mounts, namespaces) is gone.
 *
 * @example
 * ```ts
 * const r = await run({ rootfs: '/srv/busybox' }, ['sh', '-c', 'echo hi'], { memory: '64m' });
 * r.exitCode; // 0
 * r.stdout;   // 'hi\n'
 * ```
 * @param source `{ rootfs: '/abs/dir' }`, `{ host: true }`, or an image reference
 *   (`'127.0.0.1:5000/app:1'`, pulled into the default runtime's store on first use).
 * @param cmd the argv; for an image, replaces its Cmd (its Entrypoint stays), and may be
 *   omitted to run the image's default command.
 * @throws ValidationError for a bad option (`.option` names it); NotFoundError for a missing
 *   rootfs, user or bind source; SystemError when a setup syscall fails in the child (`.syscall`
 *   and `.path` say which); AbortError when `signal` aborts.
 */
export function run<O extends RunOptions = RunOptions>(
  source: RunSource,
  cmd?: string[] | null,
  options?: O,
): Promise<RunResult<OutputOf<O>>> {
  if (typeof source === 'string') {
    return defaultRuntime().then((rt) => rt.run(source, cmd, options)) as Promise<RunResult<OutputOf<O>>>;
  }
  return runFromRoot(resolveRoot(source), cmd, options) as Promise<RunResult<OutputOf<O>>>;
}

/** `stdout`/`stderr` are Buffers with `encoding: 'buffer'`, strings otherwise. */
export type OutputOf<O> = O extends { encoding: 'buffer' } ? Buffer : string;

/** @internal The shared path of {@link run} and `Runtime.run`, once the root is known. */
export async function runFromRoot(
  root: LaunchRoot,
  cmd: string[] | null | undefined,
  options: RunOptions | undefined,
  image?: ImageDefaults,
): Promise<RunResult<string | Buffer>> {
  const opts = normalizeRunOptions(options ?? {});
  const argv = image ? checkArgv(commandFor(image.config, cmd ?? undefined)) : checkArgv(cmd);
  return runPrepared(root, argv, opts, image);
}

/** What an image contributes under the options (Docker's config merge). */
export interface ImageDefaults {
  config?: ContainerConfig;
}

async function runPrepared(
  root: LaunchRoot,
  argv: string[],
  opts: NormalizedRunOptions,
  image?: ImageDefaults,
): Promise<RunResult<string | Buffer>> {
  if (opts.signal?.aborted) throw new AbortError('run() was aborted before it started', { cause: opts.signal.reason });
  ensureStagingDir();
  const started = performance.now();
  const id = randomBytes(16).toString('hex');
  const cgroups = cgroupsForHost();
  const cgroup = cgroups.driver.create(id, {
    memory: opts.memory,
    memorySwap: opts.memorySwap,
    cpus: opts.cpus,
    cpuShares: opts.cpuShares,
    cpuset: opts.cpuset,
    pids: opts.pids ?? DEFAULT_PIDS_LIMIT,
  });
  try {
    const plan = planLaunch({
      root,
      argv,
      options: opts,
      stagingDir: STAGING_DIR,
      cgroupProcs: cgroup.procsFiles,
      cgroupMounts: cgroups.mountsFor(cgroup),
      ...(opts.init ? { initFd: helperExecutableFd() } : {}),
      ...(image?.config?.Env ? { imageEnv: image.config.Env } : {}),
      ...(image?.config?.WorkingDir ? { imageWorkdir: image.config.WorkingDir } : {}),
      ...(image?.config?.User ? { imageUser: image.config.User } : {}),
      stdinPiped: opts.stdin !== undefined,
    });
    let spawned;
    try {
      spawned = await native().spawn(plan.spec);
    } catch (error) {
      throw fromNativeError(error, setupHint);
    }
    if (spawned.execFailed) {
      const f = spawned.execFailed;
      const message = f.notFound
        ? `berth: exec: "${argv[0]}": executable file not found in $PATH\n`
        : `berth: exec: "${f.path ?? argv[0]}": ${f.code === 'EACCES' ? 'permission denied' : f.message}\n`;
      for (const fd of spawned.stdio) native().closeFd(fd);
      return finish(opts, { exitCode: f.notFound ? 127 : 126, signal: null }, Buffer.alloc(0), Buffer.from(message), false, false, started);
    }
    const proc = new ContainerProcess(spawned);
    return await supervise(proc, opts, cgroup.oomKillCount.bind(cgroup), started);
  } finally {
    cgroup.remove({ timeoutMs: 1000 });
  }
}

async function supervise(
  proc: ContainerProcess,
  opts: NormalizedRunOptions,
  oomKills: () => number,
  started: number,
): Promise<RunResult<string | Buffer>> {
  const SIGKILL = 9;
  let timedOut = false;
  let aborted = false;
  const timer = opts.timeout !== undefined ? setTimeout(() => {
    timedOut = true;
    proc.kill(SIGKILL);
  }, opts.timeout) : undefined;
  const onAbort = () => {
    aborted = true;
    proc.kill(SIGKILL);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  feedStdin(proc, opts.stdin);
  try {
    const [status, stdout, stderr] = await Promise.all([proc.exited, collect(proc.stdout), collect(proc.stderr)]);
    if (aborted) throw new AbortError('run() was aborted; the container was killed', { cause: opts.signal?.reason });
    return finish(opts, status, stdout, stderr, oomKills() > 0, timedOut, started);
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

function finish(
  opts: NormalizedRunOptions,
  status: { exitCode: number; signal: NodeJS.Signals | null },
  stdout: Buffer,
  stderr: Buffer,
  oomKilled: boolean,
  timedOut: boolean,
  started: number,
): RunResult<string | Buffer> {
  const asText = opts.encoding !== 'buffer';
  return {
    exitCode: status.exitCode,
    signal: status.signal,
    stdout: asText ? stdout.toString('utf8') : stdout,
    stderr: asText ? stderr.toString('utf8') : stderr,
    oomKilled,
    timedOut,
    durationMs: performance.now() - started,
  };
}

/** Rewrites misleading errnos into hints, as bubblewrap's mount_strerror does. */
function setupHint(e: { code: string; syscall: string; path?: string }): string | undefined {
  if (e.syscall === 'mount' && e.code === 'EINVAL' && e.path === '/') return 'overlayfs refused the layers: is the rootfs on a filesystem overlayfs supports?';
  if (e.syscall === 'clone' && e.code === 'ENOSPC') return 'namespace limit reached: check /proc/sys/user/max_*_namespaces';
  if (e.syscall === 'open_tree' && e.code === 'ENOENT') return 'the bind source does not exist';
  if (e.syscall === 'write' && e.path?.endsWith('cgroup.procs')) return 'could not join the container cgroup (pids limit reached?)';
  return undefined;
}
