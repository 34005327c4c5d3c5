/**
 * The options of `rt.pool()` and of a pooled sandbox's `run()`, validated before anything
 * touches the kernel: what is decided per pool (the sandbox's limits, network, user…) and what
 * per command (argv, env, stdin, timeout…).
 * @module
 */
import type { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';
import { checkMaxBuffer } from '../launch/bounded-output.js';
import { checkArgv } from '../launch/sandbox-launch.js';
import { resolveHealthcheck, type HealthcheckOptions } from '../containers/healthcheck.js';
import type { ReadyCondition } from './prewarm.js';
import { normalizeRunOptions, type NormalizedRunOptions, type RunOptions, type RunSource } from '../launch/run-options.js';

/** The options of every sandbox of a pool: `run()`'s, minus those that belong to one command. */
export type PoolSandboxOptions = Omit<RunOptions, 'stdin' | 'timeout' | 'signal' | 'encoding' | 'maxBuffer' | 'tty' | 'init'> & {
  /**
   * Always `'process'` (the default): pooled sandboxes die with this process, as containers of
   * lifetime `'process'` do, and nothing of them outlives it. A sandbox that outlives its
   * process is a container: `rt.containers.create({ lifetime: 'detached' })`.
   */
  lifetime?: 'process';
};

/** Options of `rt.pool()`. */
export interface PoolOptions {
  /** What every sandbox runs from: an image reference, `{ rootfs }` or `{ host: true }`, as `run()`. */
  source: RunSource;
  /** Prepared sandboxes kept waiting for `acquire()`: an integer from 1 to 256. */
  size: number;
  /** The sandboxes' options (limits, network, user, env, mounts…). Default `{}`. */
  options?: PoolSandboxOptions;
  /**
   * Sandboxes being prepared at once, in the background: an integer from 1 to `size`.
   * Default `min(size, 2)`: preparing is mostly kernel work, and callers' own starts should not
   * queue behind a refill storm.
   */
  maxPending?: number;
  /**
   * What `acquire()` does when no prepared sandbox is idle: `'wait'` (default) for the next
   * one the refill prepares; `'create'` prepares one for this caller right away, beside the refill.
   */
  onEmpty?: 'wait' | 'create';
  /**
   * A prewarmed workload: every sandbox starts this command as its main process when it is
   * prepared, and `acquire()` hands out sandboxes whose main process already runs, attached
   * (`sb.stdin`, `sb.stdout`, `sb.stderr`, `sb.exited`). Default: none (the caller `run()`s a
   * command instead).
   */
  main?: string[];
  /** With `main`: when it counts as ready (a log line, or a listening port). Default: as soon as it was executed. */
  ready?: ReadyCondition;
  /**
   * A warm-up command every sandbox runs to completion while it is prepared, before it can be
   * acquired: e.g. `['python3', '-c', 'import json, decimal, asyncio']` compiles and caches the
   * modules' bytecode and fills the page cache, so a caller's first command does not pay it.
   * Not a shared zygote: each sandbox runs its own, in its own namespaces, with the sandbox's
   * user, env and limits, and what it writes stays in that sandbox's writable layer. It must
   * exit 0 within `prewarmTimeout` and leave no process running; otherwise the sandbox is
   * destroyed and its preparation fails (`SystemError`: `EIO`, `ETIMEDOUT`, `EBUSY`, `ENOENT`).
   * With `main`, it runs before the main process starts. Default: none.
   */
  prewarm?: string[];
  /** Milliseconds `prewarm` may take: an integer from 1 to 3 600 000. Default 60 000. */
  prewarmTimeout?: number;
}

/** `rt.pool()`'s options, validated. */
export interface CheckedPoolOptions {
  size: number;
  maxPending: number;
  onEmpty: 'wait' | 'create';
  sandbox: NormalizedRunOptions;
  /** The raw sandbox options (a `Network` object in them still names its runtime). */
  raw: PoolSandboxOptions;
  main?: { argv: string[]; ready?: ReadyCondition };
  prewarm?: { argv: string[]; timeoutMs: number };
}

const PER_COMMAND: Record<string, string> = {
  stdin: 'give it to sandbox.run(argv, { stdin })',
  timeout: 'give it to sandbox.run(argv, { timeout })',
  signal: 'give it to pool.acquire({ signal }) or sandbox.run(argv, { signal })',
  encoding: 'give it to sandbox.run(argv, { encoding })',
  maxBuffer: 'give it to sandbox.run(argv, { maxBuffer })',
  tty: 'pooled sandboxes have no terminal',
  init: 'a pooled sandbox always has berth\'s init as PID 1',
};

const POOL_KEYS = new Set(['source', 'size', 'options', 'maxPending', 'onEmpty', 'main', 'ready', 'prewarm', 'prewarmTimeout']);

function checkMain(main: unknown, ready: unknown, network: string | undefined): CheckedPoolOptions['main'] {
  if (main === undefined) {
    if (ready !== undefined) throw new ValidationError('ready', 'needs main: the ready condition is the prewarmed main process\'s');
    return undefined;
  }
  let argv: string[];
  try {
    argv = checkArgv(main);
  } catch (error) {
    throw new ValidationError('main', (error as Error).message.replace(/^cmd[^:]*: /, ''));
  }
  if (ready === undefined) return { argv };
  if (typeof ready !== 'object' || ready === null) throw new ValidationError('ready', 'must be an object: { log: RegExp | string, timeout? }, { port, timeout?, interval? } or { healthcheck: { test, … }, timeout? }');
  const { log, port, timeout, interval, healthcheck, ...rest } = ready as { log?: unknown; port?: unknown; timeout?: unknown; interval?: unknown; healthcheck?: unknown };
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw new ValidationError(`ready.${extra}`, 'unknown ready condition (supported: log, port, healthcheck)');
  if (timeout !== undefined) checkInteger(timeout, 'ready.timeout', 1, 3_600_000);
  const limits = timeout !== undefined ? { timeout: timeout as number } : {};
  if (healthcheck !== undefined) {
    if (log !== undefined || port !== undefined) throw new ValidationError('ready', 'takes one condition: log, port or healthcheck');
    if (interval !== undefined) throw new ValidationError('ready.interval', 'belongs to ready.port (a healthcheck has its own healthcheck.interval)');
    checkHealthcheck(healthcheck);
    return { argv, ready: { healthcheck: healthcheck as HealthcheckOptions, ...limits } };
  }
  if (port !== undefined) {
    if (log !== undefined) throw new ValidationError('ready', 'takes one condition: log, port or healthcheck');
    checkInteger(port, 'ready.port', 1, 65_535);
    if (interval !== undefined) checkInteger(interval, 'ready.interval', 1, 60_000);
    if (network === 'host') throw new ValidationError('ready.port', 'needs a network namespace of the sandbox\'s own: with network "host" the listening sockets are the host\'s');
    return { argv, ready: { port: port as number, ...limits, ...(interval !== undefined ? { interval: interval as number } : {}) } };
  }
  if (interval !== undefined) throw new ValidationError('ready.interval', 'belongs to ready.port');
  if (!(log instanceof RegExp) && (typeof log !== 'string' || log === '')) throw new ValidationError('ready.log', 'must be a RegExp or a non-empty string');
  return { argv, ready: { log, ...limits } };
}

function checkPrewarm(prewarm: unknown, timeout: unknown): CheckedPoolOptions['prewarm'] {
  if (prewarm === undefined) {
    if (timeout !== undefined) throw new ValidationError('prewarmTimeout', 'needs prewarm: it bounds the prewarm command');
    return undefined;
  }
  let argv: string[];
  try {
    argv = checkArgv(prewarm);
  } catch (error) {
    throw new ValidationError('prewarm', (error as Error).message.replace(/^cmd[^:]*: /, ''));
  }
  const timeoutMs = timeout === undefined ? 60_000 : checkInteger(timeout, 'prewarmTimeout', 1, 3_600_000);
  return { argv, timeoutMs };
}

/** The containers' healthcheck rules, its errors named under `ready.` and a `test` required (no image supplies one here). */
function checkHealthcheck(healthcheck: unknown): void {
  let cfg: ReturnType<typeof resolveHealthcheck>;
  try {
    cfg = resolveHealthcheck(healthcheck as HealthcheckOptions);
  } catch (error) {
    if (error instanceof ValidationError) throw new ValidationError(`ready.${error.option ?? 'healthcheck'}`, error.message.replace(/^[^:]*: /, ''));
    throw error;
  }
  if (cfg === null) throw new ValidationError('ready.healthcheck.test', 'is required: the command a probe runs, e.g. ["CMD", "test", "-f", "/tmp/ready"] (not NONE)');
}

function checkInteger(value: unknown, option: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(option, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Validates `rt.pool()`'s options except `source` (which the runtime resolves).
 * @throws ValidationError naming the option.
 */
export function checkPoolOptions(options: PoolOptions): CheckedPoolOptions {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'rt.pool() takes an object: { source, size, options? }');
  for (const key of Object.keys(options)) {
    if (!POOL_KEYS.has(key)) throw new ValidationError(key, `unknown pool option (known: ${[...POOL_KEYS].join(', ')})`);
  }
  const size = checkInteger(options.size, 'size', 1, 256);
  const maxPending = options.maxPending === undefined ? Math.min(size, 2) : checkInteger(options.maxPending, 'maxPending', 1, size);
  const onEmpty = options.onEmpty ?? 'wait';
  if (onEmpty !== 'wait' && onEmpty !== 'create') throw new ValidationError('onEmpty', `must be "wait" or "create", got ${JSON.stringify(onEmpty)}`);
  const raw = options.options ?? {};
  if (typeof raw !== 'object' || raw === null) throw new ValidationError('options', 'must be an object of run() options');
  for (const key of Object.keys(raw)) {
    if (key in PER_COMMAND) throw new ValidationError(`options.${key}`, `is per command, not per pool: ${PER_COMMAND[key]}`);
  }
  const { lifetime, ...runOptions } = raw;
  if (lifetime !== undefined && lifetime !== 'process') {
    throw new ValidationError('options.lifetime', `pooled sandboxes always die with this process ("process"), got ${JSON.stringify(lifetime)}; one that outlives it is a container: rt.containers.create({ lifetime: 'detached' })`);
  }
  const sandbox = normalizeRunOptions(runOptions);
  if (sandbox.userns === 'auto') throw new ValidationError('options.userns', '"auto" is not supported in pools yet: give explicit uidMap/gidMap');
  const main = checkMain(options.main, options.ready, typeof sandbox.network === 'string' ? sandbox.network : undefined);
  const prewarm = checkPrewarm(options.prewarm, options.prewarmTimeout);
  return { size, maxPending, onEmpty, sandbox, raw: runOptions, ...(main ? { main } : {}), ...(prewarm ? { prewarm } : {}) };
}

/** Options of a pooled sandbox's `run()`: those of `run()` that concern one command. */
export interface PooledRunOptions {
  /** Added to (and overriding) the sandbox's environment. */
  env?: Record<string, string | undefined>;
  /** Data for the command's stdin, then EOF. Default `/dev/null`. */
  stdin?: string | Buffer | Readable;
  /** Kill the sandbox after this many milliseconds and report `timedOut: true`. */
  timeout?: number;
  /** Kills the sandbox; `run()` rejects with an `AbortError`. */
  signal?: AbortSignal;
  /** `'utf8'` (default): strings; `'buffer'`: Buffers. */
  encoding?: 'utf8' | 'buffer';
  /** Bytes of stdout and of stderr kept (each; default 16 MiB); the rest is read and dropped (`truncated`). */
  maxBuffer?: number;
  /** Working directory (default: the sandbox's). */
  workdir?: string;
  /** User (default: the sandbox's), resolved in the sandbox's `/etc/passwd`. */
  user?: string;
}

const RUN_KEYS = new Set(['env', 'stdin', 'timeout', 'signal', 'encoding', 'maxBuffer', 'workdir', 'user']);

/**
 * Validates a pooled `run()`'s options with `run()`'s rules.
 * @throws ValidationError naming the option.
 */
export function checkPooledRunOptions(options: PooledRunOptions | undefined): PooledRunOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!RUN_KEYS.has(key)) throw new ValidationError(key, `not an option of a pooled sandbox's run() (known: ${[...RUN_KEYS].join(', ')}); sandbox-wide options go to rt.pool({ options })`);
  }
  normalizeRunOptions(options);
  if (options.maxBuffer !== undefined) checkMaxBuffer(options.maxBuffer);
  return options;
}
