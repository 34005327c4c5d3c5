/**
 * A run to completion, once its root is known: launch, feed stdin, collect bounded output, wait
 * for the exit, clean up, report a {@link RunResult}. The path shared by `run()` and
 * `Runtime.run()`, which decide the root (a directory, the host, an image's layers) and whose
 * networks resolve the names in the options.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AbortError, NotFoundError, ValidationError } from '../errors.js';
import type { NetworkService } from '../network/network-service.js';
import { networkServiceOf } from '../network/network-options.js';
import { collectBounded, DEFAULT_MAX_BUFFER, type BoundedOutput } from './bounded-output.js';
import type { ContainerProcess } from './container-process.js';
import { commandFor } from './image-config.js';
import type { LaunchRoot } from './launch-plan.js';
import { launch, type ImageDefaults } from './launcher.js';
import { runCgroupId } from './orphan-sweep.js';
import { normalizeRunOptions, type NormalizedRunOptions, type RunOptions, type RunSource } from './run-options.js';

/** What `run()` reports. */
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
  /**
   * stdout or stderr wrote more than `maxBuffer` bytes: the rest was read and discarded (the
   * container was never blocked on a full pipe).
   */
  truncated: boolean;
  /** Wall time from the start of the launch to the exit, in milliseconds. */
  durationMs: number;
}

/** `stdout`/`stderr` are Buffers with `encoding: 'buffer'`, strings otherwise. */
export type OutputOf<O> = O extends { encoding: 'buffer' } ? Buffer : string;

/** The root of a `{ rootfs }` or `{ host: true }` source, validated. */
export function launchRootOf(source: Exclude<RunSource, string>): LaunchRoot {
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

function feedStdin(proc: ContainerProcess, stdin: RunOptions['stdin']): void {
  if (!proc.stdin || stdin === undefined) return;
  if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) {
    proc.stdin.end(stdin);
  } else {
    stdin.pipe(proc.stdin);
  }
}

/** What the caller of {@link runFromRoot} knows beyond the options. */
export interface RunContext {
  /** The image's defaults (Cmd, Entrypoint, Env, …) when the root is an image's layers. */
  image?: ImageDefaults;
  /** The networks that resolve network and container names in the options: the runtime's. */
  networks?: NetworkService;
}

/** @internal The shared path of `run()` and `Runtime.run`, once the root is known. */
export async function runFromRoot(
  root: LaunchRoot,
  cmd: string[] | null | undefined,
  options: RunOptions | undefined,
  context: RunContext = {},
): Promise<RunResult<string | Buffer>> {
  const { image } = context;
  const opts = normalizeRunOptions(options ?? {});
  const argv = image ? checkArgv(commandFor(image.config, cmd ?? undefined)) : checkArgv(cmd);
  // A `Network` option names its own runtime; names resolve in the caller's.
  const networks = networkServiceOf<NetworkService>(options ?? {}) ?? context.networks;
  return runPrepared(root, argv, opts, image, networks);
}

async function runPrepared(
  root: LaunchRoot,
  argv: string[],
  opts: NormalizedRunOptions,
  image?: ImageDefaults,
  networks?: NetworkService,
): Promise<RunResult<string | Buffer>> {
  const started = performance.now();
  const launched = await launch({
    id: runCgroupId(randomBytes(12).toString('hex')),
    root,
    argv,
    options: opts,
    ...(image ? { image } : {}),
    ...(networks ? { networks } : {}),
  });
  try {
    if (!launched.process) {
      const failure = launched.execFailure!;
      return finish(opts, { exitCode: failure.exitCode, signal: null }, { data: Buffer.alloc(0), truncated: false }, { data: Buffer.from(failure.message), truncated: false }, false, false, started);
    }
    const cgroup = launched.cgroup;
    return await supervise(launched.process, opts, () => cgroup.oomKillCount(), started);
  } finally {
    launched.cgroup.remove({ timeoutMs: 1000 });
    await launched.network?.release();
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
    const max = opts.maxBuffer ?? DEFAULT_MAX_BUFFER;
    const [status, stdout, stderr] = await Promise.all([proc.exited, collectBounded(proc.stdout, max), collectBounded(proc.stderr, max)]);
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
  stdout: BoundedOutput,
  stderr: BoundedOutput,
  oomKilled: boolean,
  timedOut: boolean,
  started: number,
): RunResult<string | Buffer> {
  const asText = opts.encoding !== 'buffer';
  return {
    exitCode: status.exitCode,
    signal: status.signal,
    stdout: asText ? stdout.data.toString('utf8') : stdout.data,
    stderr: asText ? stderr.data.toString('utf8') : stderr.data,
    oomKilled,
    timedOut,
    truncated: stdout.truncated || stderr.truncated,
    durationMs: performance.now() - started,
  };
}
