/**
 * The options of `spawn()`: `run()`'s, minus what only a collected result has (`encoding`,
 * `maxBuffer`), with a `stdin` shaped like `child_process`'s (a pipe by default). And the
 * translation of `run()`'s options into these, since `run()` is a spawn read to its end.
 * @module
 */
import type { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';
import { checkMaxBuffer } from './bounded-output.js';
import { normalizeRunOptions, type RunOptions } from './run-options.js';

/**
 * A sandbox's stdin: `'pipe'` (`sandbox.stdin` is a Writable: the container reads what you
 * write and sees EOF when you `end()` it), `'ignore'` (`/dev/null`), or data fed for you then
 * EOF (a Buffer, or a Readable piped in); with data, `sandbox.stdin` is `null`.
 */
export type SpawnStdin = 'pipe' | 'ignore' | Buffer | Readable;

/** Options of `spawn()`: every option of `run()` except `encoding` and `maxBuffer`, and its own `stdin`. */
export interface SpawnOptions extends Omit<RunOptions, 'stdin' | 'encoding' | 'maxBuffer'> {
  /** Default `'pipe'`, as with `child_process.spawn`. See {@link SpawnStdin}. */
  stdin?: SpawnStdin;
}

/** What the sandbox itself handles, beside what the launch is told. */
export interface SandboxSetup {
  stdin: SpawnStdin;
  tty: boolean;
  timeout?: number;
  signal?: AbortSignal;
}

/** Spawn options split: what the launch takes (validated) and what the sandbox does. */
export interface CheckedSpawnOptions {
  /** For the launch: `run()`'s options without `stdin`. */
  launch: RunOptions;
  /** The container's stdin is a pipe (anything but `'ignore'`). */
  stdinPipe: boolean;
  sandbox: SandboxSetup;
}

const RESULT_ONLY: Record<string, string> = {
  encoding: 'spawn() hands out byte streams: call setEncoding() on sandbox.stdout, or use run() for a string result',
  maxBuffer: 'spawn() keeps nothing: you read the streams, and a reader that stops makes the container wait (use run() for a bounded result)',
};

function isReadable(value: unknown): value is Readable {
  return typeof value === 'object' && value !== null && typeof (value as Readable).pipe === 'function' && typeof (value as Readable).on === 'function';
}

/**
 * Validates `spawn()`'s options, all before anything touches the kernel.
 * @throws ValidationError naming the option.
 */
export function checkSpawnOptions(options: SpawnOptions | undefined): CheckedSpawnOptions {
  if (options === undefined) return { launch: {}, stdinPipe: true, sandbox: { stdin: 'pipe', tty: false } };
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  for (const key of Object.keys(RESULT_ONLY)) {
    if (key in options) throw new ValidationError(key, `does not apply to spawn(): ${RESULT_ONLY[key]}`);
  }
  const { stdin = 'pipe', ...launch } = options;
  if (stdin !== 'pipe' && stdin !== 'ignore' && !Buffer.isBuffer(stdin) && !isReadable(stdin)) {
    const given: unknown = stdin;
    const hint = typeof given === 'string' ? ` (to send text, pass Buffer.from(text) or write it to sandbox.stdin), got ${JSON.stringify(given.slice(0, 40))}` : '';
    throw new ValidationError('stdin', `must be "pipe", "ignore", a Buffer or a Readable stream${hint}`);
  }
  const normalized = normalizeRunOptions(launch);
  return {
    launch,
    stdinPipe: stdin !== 'ignore',
    sandbox: {
      stdin,
      tty: normalized.tty === true,
      ...(normalized.timeout !== undefined ? { timeout: normalized.timeout } : {}),
      ...(normalized.signal ? { signal: normalized.signal } : {}),
    },
  };
}

/** How `run()` reads a sandbox's output into its result. */
export interface ResultForm {
  encoding: 'utf8' | 'buffer';
  maxBuffer: number;
}

/**
 * `run()`'s options as a spawn's (its `stdin` data becomes the sandbox's fed stdin; none is
 * `/dev/null`) and the form of its result.
 * @throws ValidationError naming the option.
 */
export function spawnOptionsOfRun(options: RunOptions | undefined): { spawn: SpawnOptions; result: ResultForm } {
  const normalized = normalizeRunOptions(options ?? {});
  const { stdin, encoding, maxBuffer, ...rest } = options ?? {};
  const fed: SpawnStdin = stdin === undefined ? 'ignore' : typeof stdin === 'string' ? Buffer.from(stdin) : stdin;
  return {
    spawn: { ...rest, stdin: fed },
    result: { encoding: normalized.encoding ?? 'utf8', maxBuffer: checkMaxBuffer(maxBuffer) },
  };
}
