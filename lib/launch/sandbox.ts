/**
 * `Sandbox`: a running container as Node's `ChildProcess` is a running program — streams, a
 * pid, `kill()`, `'spawn'`/`'exit'` events — plus an `exited` promise and
 * `Symbol.asyncDispose`. What launches it (a root, an image, volumes, networks) is a
 * {@link SandboxBody} handed in by `spawn()` or `Runtime.spawn()`; the sandbox owns what the
 * caller touches: streams, signals, the timeout, the abort, the exit report.
 * @module
 */
import type { LimitsSkipped } from './limits.js';
import type { Readable, Writable } from 'node:stream';
import { EventEmitter } from 'eventemitter3';
import { AbortError, ConflictError, ValidationError } from '../errors.js';
import { signalNumber, type ContainerProcess } from './container-process.js';
import { LateReadable, LateWritable } from './late-streams.js';
import type { SandboxSetup } from './spawn-options.js';

/** How a sandbox ended: `sandbox.exited` and the `'exit'` event. */
export interface SandboxExit {
  /** Docker's convention: the exit code; 128 + n when killed by signal n; 127 command not found; 126 not executable. */
  exitCode: number;
  /** Name of the signal that killed the container's PID 1, if any. */
  signal: NodeJS.Signals | null;
  /** The kernel's OOM killer killed a process of the container. */
  oomKilled: boolean;
  /** The `timeout` option expired and the container was killed. */
  timedOut: boolean;
  /** Wall time from the start of the launch (after any pull) to the exit, in milliseconds. */
  durationMs: number;
  /**
   * Present when the container ran without a cgroup (the `limits` option): the limits it ran
   * without, why, and the fix. Absent when every limit was in force.
   */
  limitsSkipped?: LimitsSkipped;
}

/** Events of a {@link Sandbox} (eventemitter3, typed). */
export interface SandboxEvents {
  /** The container's process runs (`pid` is set). Not emitted when the command could not be executed (exit 127/126). */
  spawn: [];
  /** The container exited and its cgroup, mounts and network are released. Also after an abort. */
  exit: [info: SandboxExit];
  /** The launch failed (as `exited` rejects), or the sandbox was aborted (an `AbortError`). */
  error: [error: Error];
  /**
   * After `'exit'`, once `stdout` and `stderr` have closed too (read to their end or
   * destroyed), as `ChildProcess`'s `'close'`: all output has been consumed.
   */
  close: [info: SandboxExit];
}

/** What a launch path reports to its sandbox while it runs. @internal */
export interface SandboxHooks {
  /** The process exists: connect its streams. */
  spawned(process: ContainerProcess): void;
  /** The command could not be executed: this message is the container's stderr. */
  execFailed(message: string): void;
}

/** How a launch path ended, once everything it held is released. @internal */
export interface SandboxBodyResult {
  exitCode: number;
  signal: NodeJS.Signals | null;
  oomKilled: boolean;
  durationMs: number;
  limitsSkipped?: LimitsSkipped;
}

/**
 * One launch from start to released resources: resolves after the exit and the cleanup,
 * rejects when the launch fails (having left nothing behind). @internal
 */
export type SandboxBody = (hooks: SandboxHooks) => Promise<SandboxBodyResult>;

const SIGKILL = 9;

/**
 * A container started by `spawn()` or `rt.spawn()`, shaped like Node's `ChildProcess`.
 *
 * Its streams are back-pressured end to end: Node holds at most a stream's high-water mark
 * (and the kernel a pipe's 64 KiB); past that the container's writes block until you read.
 * So a sandbox whose `stdout` (or `stderr`) nobody reads stops at its first full pipe and stays
 * there until it is read, killed, its `timeout` expires or it is disposed: read both streams
 * (`sandbox.stderr.resume()` discards one you do not want).
 * Destroying `stdout` closes the pipe: the container's next write fails with EPIPE (SIGPIPE).
 *
 * Unread streams keep their pipe's descriptor open until they end or are destroyed;
 * `await sandbox[Symbol.asyncDispose]()` kills the container, waits for the cleanup and
 * destroys all three streams.
 *
 * @example
 * ```ts
 * const sb = spawn({ rootfs: '/srv/busybox' }, ['sh', '-c', 'for i in 1 2 3; do echo $i; sleep 1; done'], { timeout: 10_000 });
 * try {
 *   for await (const line of readline.createInterface({ input: sb.stdout })) console.log('got', line);
 *   const { exitCode, timedOut } = await sb.exited;
 * } finally {
 *   await sb[Symbol.asyncDispose]();
 * }
 * ```
 */
export class Sandbox extends EventEmitter<SandboxEvents> implements AsyncDisposable {
  /**
   * The container's stdin: a Writable with `stdin: 'pipe'` (the default), else `null`. It
   * closes (without an error) once the container closed it or exited; writes after that fail
   * through their callbacks. With `tty: true` it writes to the terminal: send `'\x04'` for EOF.
   */
  readonly stdin: Writable | null;
  /** The container's stdout (with `tty: true`: the terminal, both streams). */
  readonly stdout: Readable;
  /** The container's stderr; `null` with `tty: true`. */
  readonly stderr: Readable | null;
  /** `[stdin, stdout, stderr]`, as `ChildProcess.stdio`. */
  readonly stdio: [Writable | null, Readable, Readable | null];
  /**
   * Resolves once the container exited and its resources are released. Rejects with the
   * launch's error (ValidationError, NotFoundError, SystemError, …), or with an AbortError
   * after `signal` aborted it (the container is gone by then too).
   */
  readonly exited: Promise<SandboxExit>;
  /**
   * Resolves once the container's process runs (or its command was found not executable:
   * then `exited` reports 127/126); rejects as `exited` does when the launch fails.
   */
  readonly spawned: Promise<void>;
  /** The host pid of the container's PID 1, once spawned; `undefined` before (and if it never ran). */
  pid: number | undefined;
  /** The exit code once exited, else `null` (as `ChildProcess.exitCode`, but Docker's 128 + n for a signal). */
  exitCode: number | null = null;
  /** The signal that ended the container's PID 1 once exited, else `null`. */
  signalCode: NodeJS.Signals | null = null;
  /** `kill()` sent (or queued) a signal. */
  killed = false;

  readonly #setup: SandboxSetup;
  readonly #stdin = new LateWritable();
  readonly #stdout = new LateReadable();
  readonly #stderr: LateReadable | null;
  #process: ContainerProcess | undefined;
  /** Signals asked for before the process existed, delivered as soon as it does. */
  #queued: number[] = [];
  #done = false;
  #timedOut = false;
  #aborted = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #onAbort = (): void => {
    // Not when the process already exited (only its cleanup runs): that run was not aborted.
    if (this.#signal(SIGKILL)) this.#aborted = true;
  };

  /** @internal Made by `spawn()` and `Runtime.spawn()`. */
  constructor(body: SandboxBody, setup: SandboxSetup) {
    super();
    this.#setup = setup;
    this.#stderr = setup.tty ? null : new LateReadable();
    this.stdout = this.#stdout;
    this.stderr = this.#stderr;
    this.stdin = setup.stdin === 'pipe' ? this.#stdin : null;
    this.stdio = [this.stdin, this.stdout, this.stderr];
    if (Buffer.isBuffer(setup.stdin)) this.#stdin.end(setup.stdin);
    else if (setup.stdin !== 'pipe' && setup.stdin !== 'ignore') setup.stdin.pipe(this.#stdin);
    setup.signal?.addEventListener('abort', this.#onAbort, { once: true });

    let markSpawned!: () => void;
    const spawned = new Promise<void>((resolve) => {
      markSpawned = resolve;
    });
    const hooks: SandboxHooks = {
      spawned: (process) => {
        this.#attach(process);
        markSpawned();
      },
      execFailed: (message) => {
        this.#stdin.attach(null);
        // With a terminal, stdout is the only stream: the message goes there.
        const tail = Buffer.from(message);
        this.#stdout.attach(null, this.#stderr ? undefined : tail);
        this.#stderr?.attach(null, tail);
        markSpawned();
      },
    };
    this.exited = Promise.resolve()
      .then(() => body(hooks))
      .then(
        (result) => this.#ended(result),
        (error: unknown) => this.#failed(error),
      );
    // A launch that fails never spawns: `spawned` settles with `exited` then.
    this.spawned = Promise.race([spawned, this.exited.then(() => undefined)]);
    // Both are also reported as events: an unobserved rejection must not end the caller's process.
    this.exited.catch(() => {});
    this.spawned.catch(() => {});
  }

  #attach(process: ContainerProcess): void {
    this.#process = process;
    this.pid = process.pid;
    const tty = process.hasTty;
    this.#stdin.attach(this.#setup.stdin === 'ignore' ? null : process.stdin, { ownsSink: !tty });
    this.#stdout.attach(process.stdout);
    this.#stderr?.attach(process.stderr);
    if (this.#setup.timeout !== undefined) {
      this.#timer = setTimeout(() => {
        this.#timedOut = true;
        this.#signal(SIGKILL);
      }, this.#setup.timeout);
    }
    const queued = this.#queued;
    this.#queued = [];
    for (const n of queued) process.kill(n);
    this.#emit('spawn');
  }

  /**
   * Emits without letting a listener's exception into the launch path, which must go on to
   * wait for the exit and clean up: the exception is rethrown on its own, as any uncaught one.
   */
  #emit<E extends keyof SandboxEvents>(event: E, ...args: SandboxEvents[E]): void {
    try {
      (this.emit as (e: E, ...a: SandboxEvents[E]) => boolean)(event, ...args);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }

  /** `'close'` once both output streams have closed, after the exit. */
  #emitCloseAfterStreams(info: SandboxExit): void {
    const streams = [this.#stdout, this.#stderr].filter((s): s is LateReadable => s !== null);
    let open = streams.filter((s) => !s.closed).length;
    if (open === 0) {
      this.#emit('close', info);
      return;
    }
    for (const s of streams) {
      if (s.closed) continue;
      s.once('close', () => {
        if (--open === 0) this.#emit('close', info);
      });
    }
  }

  #settle(): void {
    this.#done = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#setup.signal?.removeEventListener('abort', this.#onAbort);
    // Nothing reads the container's stdin any more (its pid namespace is gone).
    this.#stdin.close();
  }

  #ended(result: SandboxBodyResult): SandboxExit {
    this.#settle();
    const info: SandboxExit = {
      exitCode: result.exitCode,
      signal: result.signal,
      oomKilled: result.oomKilled,
      timedOut: this.#timedOut,
      durationMs: result.durationMs,
      ...(result.limitsSkipped ? { limitsSkipped: result.limitsSkipped } : {}),
    };
    this.exitCode = info.exitCode;
    this.signalCode = info.signal;
    this.#emit('exit', info);
    this.#emitCloseAfterStreams(info);
    if (this.#aborted) {
      const error = new AbortError('the sandbox was aborted; the container was killed', { cause: this.#setup.signal?.reason });
      this.#emit('error', error);
      throw error;
    }
    return info;
  }

  #failed(error: unknown): never {
    this.#settle();
    // A launch that failed left nothing behind: readers of the streams see them end (streams
    // already connected end with their pipes).
    this.#stdout.attach(null);
    this.#stderr?.attach(null);
    this.#emit('error', error as Error);
    throw error;
  }

  #signal(n: number): boolean {
    if (this.#done) return false;
    this.killed = true;
    if (!this.#process) {
      this.#queued.push(n);
      return true;
    }
    return this.#process.kill(n);
  }

  /**
   * Sends a signal to the container's PID 1 (through its pidfd: never to a recycled pid). Before
   * the process exists the signal is queued and sent as soon as the launch returns (the command
   * may have started running by then). In a pid namespace PID 1 ignores signals it has no
   * handler for (SIGKILL excepted): a plain `sleep` ignores SIGTERM; with `init: true` PID 1 is
   * berth's init, which forwards it to the command.
   * @param signal a name (`'SIGTERM'`, `'TERM'`) or number. Default `'SIGTERM'`, as `ChildProcess.kill()`.
   * @returns `false` once the sandbox has exited, else `true`.
   * @throws ValidationError for an unknown signal.
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const n = typeof signal === 'number' || typeof signal === 'string' ? signalNumber(signal) : undefined;
    if (n === undefined) throw new ValidationError('signal', `unknown signal ${JSON.stringify(signal)}`);
    return this.#signal(n);
  }

  /**
   * Sets the terminal's size (`tty: true`); the container's foreground process group gets
   * SIGWINCH. Does nothing before the process runs or after it exited.
   * @throws ValidationError for sizes that are not integers in 1..65535; ConflictError without a terminal.
   */
  resize(size: { rows: number; cols: number }): void {
    for (const key of ['rows', 'cols'] as const) {
      const v = size?.[key];
      if (!Number.isInteger(v) || v < 1 || v > 65535) throw new ValidationError(key, `must be an integer between 1 and 65535, got ${String(v)}`);
    }
    if (!this.#setup.tty) throw new ConflictError('this sandbox has no terminal: spawn it with tty: true to resize');
    this.#process?.resize(size.rows, size.cols);
  }

  /**
   * Kills the container (SIGKILL) if it still runs, waits until it exited and its cgroup,
   * mounts, network and volumes are released, and destroys the three streams (closing their
   * pipes). Never rejects. `await using sb = spawn(…)` needs Node 24 or a transpiler; on
   * Node 20 and 22 call it from a `finally`.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#signal(SIGKILL);
    try {
      await this.exited;
    } catch {
      // the launch's error or the abort was reported through exited and 'error' already
    }
    this.#stdin.close();
    this.#stdout.destroy();
    this.#stderr?.destroy();
  }
}
