/**
 * `PooledSandbox`: one prepared sandbox handed to one caller. It runs one command and is
 * destroyed on `release()`; it is never handed to anyone else, before or after.
 * @module
 */
import { ConflictError } from '../errors.js';
import type { ParkedSandbox } from '../launch/parked.js';
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
  readonly #parked: ParkedSandbox;
  readonly #onReleased: () => void;
  #ran = false;
  #released: Promise<void> | undefined;

  /** @internal Made by `Pool.acquire()`. */
  constructor(parked: ParkedSandbox, onReleased: () => void) {
    this.#parked = parked;
    this.#onReleased = onReleased;
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
   * @throws ValidationError (bad argv or option, naming it); ConflictError on a second `run()` or
   *   after `release()` (a sandbox serves one command); AbortError when `signal` aborted;
   *   SystemError when the kernel refused the exec.
   */
  async run<O extends PooledRunOptions = PooledRunOptions>(argv: string[], options?: O): Promise<RunResult<OutputOf<O>>> {
    const cmd = checkArgv(argv);
    const checked = checkPooledRunOptions(options);
    if (this.#released) throw new ConflictError('this pooled sandbox was released: acquire a new one');
    if (this.#ran) throw new ConflictError('this pooled sandbox already ran its command: each serves one run(); release it and acquire another');
    this.#ran = true;
    return (await this.#parked.exec(cmd, checked)) as RunResult<OutputOf<O>>;
  }

  /**
   * Destroys the sandbox: kills every process in it, removes its cgroup, mounts and network,
   * and lets the pool prepare a replacement. Idempotent; never rejects.
   */
  release(): Promise<void> {
    this.#released ??= this.#parked.destroy().finally(() => this.#onReleased());
    return this.#released;
  }

  /** {@link release}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
