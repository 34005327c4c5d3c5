/**
 * `PooledSandbox`: one prepared sandbox handed to one caller. It runs one command and is
 * destroyed on `release()`; it is never handed to anyone else, before or after.
 * @module
 */
import { ConflictError } from '../errors.js';
import type { Readable, Writable } from 'node:stream';
import type { ExitStatus } from '../launch/container-process.js';
import type { ParkedSandbox } from '../launch/parked.js';
import type { Prepared } from './prewarm.js';
import type { OutputOf, RunResult } from '../launch/run-to-completion.js';
import { checkArgv } from '../launch/sandbox-launch.js';
import { checkPooledRunOptions, type PooledRunOptions } from './pool-options.js';

/**
 * A sandbox taken from a {@link Pool} by `acquire()`: namespaces, rootfs, cgroup and network
 * already made, its PID 1 (berth's init) waiting. `run()` executes the one command it serves;
 * `release()` destroys it. `await using sb = await pool.acquire()` releases it at the end of
 * the scope (Node 24 or a transpiler; elsewhere call `release()` from a `finally`).
 */
export class PooledSandbox implements AsyncDisposable {
  /**
   * With a pool `main`: the prewarmed main process's stdin (a pipe; `end()` it for EOF), else `null`.
   */
  readonly stdin: Writable | null;
  /** With a pool `main`: its stdout, from the line after the ready line on; else `null`. */
  readonly stdout: Readable | null;
  /** With a pool `main`: its stderr (output up to the ready line was consumed); else `null`. */
  readonly stderr: Readable | null;
  /**
   * With a pool `main`: resolves when it exits (the sandbox ends with it: every process in it is
   * killed); else `null`. Read `stdout` and `stderr`: a main blocked on a full pipe never exits.
   */
  readonly exited: Promise<ExitStatus> | null;
  readonly #parked: ParkedSandbox;
  readonly #onReleased: () => void;
  #ran = false;
  #released: Promise<void> | undefined;

  /** @internal Made by `Pool.acquire()`. */
  constructor(prepared: Prepared, onReleased: () => void) {
    this.#parked = prepared.parked;
    this.#onReleased = onReleased;
    const main = prepared.main;
    this.stdin = main?.stdin ?? null;
    this.stdout = main?.stdout ?? null;
    this.stderr = main?.stderr ?? null;
    this.exited = main ? main.exited : null;
    // A prewarmed sandbox's workload is its main process: it takes no second command.
    this.#ran = main !== undefined;
  }

  /** Host pid of the sandbox's PID 1 (berth's init). */
  get pid(): number {
    return this.#parked.pid;
  }

  /**
   * Runs `argv` in the sandbox as its workload: the pool's options (user, env, workdir, limits,
   * network) with `options` over them; resolves with `run()`'s result shape once the command
   * exited. The command is the sandbox's main workload: when it exits, on `timeout` or on abort,
   * every process of the sandbox is killed (what it left in the background included), as a
   * container ends with its main process; `release()` then removes the rest.
   * @param options per command: `env`, `stdin`, `timeout`, `signal`, `encoding`, `maxBuffer`, `workdir`, `user`.
   * @throws ValidationError (bad argv or option, naming it); ConflictError on a second `run()`,
   *   after `release()` (a sandbox serves one command) or in a pool with a prewarmed `main`; AbortError when `signal` aborted;
   *   SystemError when the kernel refused the exec.
   */
  async run<O extends PooledRunOptions = PooledRunOptions>(argv: string[], options?: O): Promise<RunResult<OutputOf<O>>> {
    const cmd = checkArgv(argv);
    const checked = checkPooledRunOptions(options);
    if (this.#released) throw new ConflictError('this pooled sandbox was released: acquire a new one');
    if (this.#ran) {
      throw new ConflictError(
        this.exited
          ? "this pooled sandbox's workload is the pool's prewarmed main process: talk to it through sb.stdin/sb.stdout"
          : 'this pooled sandbox already ran its command: each serves one run(); release it and acquire another',
      );
    }
    this.#ran = true;
    return (await this.#parked.exec(cmd, checked)) as RunResult<OutputOf<O>>;
  }

  /** @internal Resolves when every process of the sandbox is gone (its workload ended, or it was killed). */
  get ended(): Promise<void> {
    return this.#parked.gone;
  }

  /**
   * Destroys the sandbox: kills every process in it, removes its cgroup, mounts and network,
   * and lets the pool prepare a replacement. Idempotent; never rejects.
   */
  release(): Promise<void> {
    this.#released ??= this.#parked.destroy().finally(() => {
      // The streams' pipes are closed by the kill; destroy them so no handle stays open.
      this.stdin?.destroy();
      this.stdout?.destroy();
      this.stderr?.destroy();
      this.#onReleased();
    });
    return this.#released;
  }

  /** {@link release}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
