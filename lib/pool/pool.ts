/**
 * `Pool`: sandboxes prepared ahead of demand (`rt.pool()`). Each is made by
 * `ParkedSandbox.start()` (cgroup, namespaces, rootfs, network; PID 1 parked; with `main`, its prewarmed main process started and ready: `prewarm.ts`), handed to exactly
 * one caller by `acquire()`, and destroyed on `release()`; the pool prepares replacements in
 * the background, at most `maxPending` at once, up to `size` idle. See docs/design/pools.md.
 * @module
 */
import { AbortError, ConflictError } from '../errors.js';
import type { Prepared } from './prewarm.js';
import type { CheckedPoolOptions } from './pool-options.js';
import { PooledSandbox } from './pooled-sandbox.js';

/** A snapshot of a pool's counts: `pool.stats()`. */
export interface PoolStats {
  /** The `size` the pool keeps prepared. */
  size: number;
  /** Prepared sandboxes waiting for `acquire()`. */
  idle: number;
  /** Sandboxes being prepared right now (background refill and `onEmpty: 'create'` starts). */
  pending: number;
  /** Sandboxes handed out and not yet released. */
  inUse: number;
  /** `acquire()` calls waiting for a sandbox. */
  waiting: number;
  /** Prepared sandboxes dropped because they died while idle (a prewarmed main that exited); never handed out. */
  discarded: number;
}

/** Options of {@link Pool.acquire}. */
export interface AcquireOptions {
  /** Stops waiting: `acquire()` rejects with an `AbortError` and takes nothing from the pool. */
  signal?: AbortSignal;
}

interface Waiter {
  give(prepared: Prepared): void;
  fail(error: Error): void;
}

/** Longest pause between refill attempts after consecutive failures (ms). */
const MAX_BACKOFF_MS = 5000;

/**
 * A warm pool of prepared, never-reused sandboxes, made by `rt.pool()`.
 *
 * Nothing of a closed pool keeps Node's event loop alive. An open pool holds prepared sandboxes
 * (processes of lifetime `'process'`: they die with this process, and the next berth process
 * removes their cgroups), so close it (or `rt.close()`) to let the process end.
 */
export class Pool implements AsyncDisposable {
  readonly #start: () => Promise<Prepared>;
  readonly #options: CheckedPoolOptions;
  readonly #idle: Prepared[] = [];
  readonly #waiters: Waiter[] = [];
  /** Every start in flight (background and on demand), so that close() can wait for them. */
  readonly #starting = new Set<Promise<unknown>>();
  /** Released promise of each handed-out sandbox. */
  readonly #held = new Map<PooledSandbox, Promise<void>>();
  /** Destructions the pool itself started (dead idle sandboxes, arrivals after close). */
  readonly #destroying = new Set<Promise<void>>();
  #pending = 0;
  #discarded = 0;
  #onDemand = 0;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  readonly #onClosed: (() => void) | undefined;

  private constructor(start: () => Promise<Prepared>, options: CheckedPoolOptions, onClosed: (() => void) | undefined) {
    this.#start = start;
    this.#options = options;
    this.#onClosed = onClosed;
  }

  /**
   * Makes a pool and prepares its first `size` sandboxes. @internal Use `rt.pool()`.
   * @throws the first start's error (after destroying what was made).
   */
  static async open(start: () => Promise<Prepared>, options: CheckedPoolOptions, onClosed?: () => void): Promise<Pool> {
    const pool = new Pool(start, options, onClosed);
    try {
      while (pool.#idle.length < options.size) {
        const batch = Math.min(options.maxPending, options.size - pool.#idle.length);
        const made = await Promise.allSettled(Array.from({ length: batch }, () => start()));
        for (const r of made) if (r.status === 'fulfilled') pool.#keepIdle(r.value);
        const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** Counts of the pool right now. */
  stats(): PoolStats {
    return {
      size: this.#options.size,
      idle: this.#idle.length,
      pending: this.#pending + this.#onDemand,
      inUse: this.#held.size,
      waiting: this.#waiters.length,
      discarded: this.#discarded,
    };
  }

  /**
   * A fresh sandbox, never handed to anyone before. When none is idle: waits for the refill
   * (`onEmpty: 'wait'`) or prepares one for this caller (`'create'`).
   * @throws AbortError when `signal` aborts first (nothing is taken from the pool);
   *   ConflictError once the pool is closing; a launch's error (SystemError…) when preparing the
   *   sandbox this caller waited for failed.
   */
  async acquire(options: AcquireOptions = {}): Promise<PooledSandbox> {
    const signal = options.signal;
    if (this.#closing) throw new ConflictError('the pool is closed: acquire() needs an open pool');
    if (signal?.aborted) throw new AbortError('acquire() was aborted before it started', { cause: signal.reason });
    const ready = this.#takeIdle();
    if (ready) {
      // After the caller's next step: a preparation starts with synchronous work (cgroup
      // directories and limits, the plan) that would otherwise delay the command it is about
      // to send, and the command needs nothing of it.
      setImmediate(() => this.#refill());
      return this.#handOut(ready);
    }
    if (this.#options.onEmpty === 'create') {
      this.#refill();
      return this.#createFor(signal);
    }
    return new Promise<PooledSandbox>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new AbortError('acquire() was aborted while waiting for a sandbox', { cause: signal?.reason }));
      };
      const waiter: Waiter = {
        give: (prepared) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.#handOut(prepared));
        },
        fail: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#refill();
    });
  }

  /**
   * Closes the pool: waiting `acquire()` calls reject with a ConflictError, idle and
   * in-preparation sandboxes are destroyed; sandboxes callers hold stay theirs until they
   * `release()` them or their workload ends (their command or main exited: then the pool
   * releases them), and the returned promise resolves once that happened for all. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#retry) clearTimeout(this.#retry);
      this.#retry = undefined;
      for (const w of this.#waiters.splice(0)) w.fail(new ConflictError('the pool was closed while acquire() waited'));
      await Promise.all(this.#idle.splice(0).map((p) => p.parked.tornDown()));
      // Starts still running destroy their sandbox on arrival (#offer sees the pool closing).
      await Promise.allSettled([...this.#starting]);
      // A holder is finished when it released its sandbox or when its workload ended (the
      // command or main exited, or it was killed): nothing is left for it to do, so the pool
      // releases that one itself rather than wait for a release() that may never come.
      await Promise.all([...this.#held].map(([sandbox, released]) => Promise.race([released, sandbox.ended.then(() => sandbox.release())])));
      await Promise.all([...this.#destroying]);
      this.#onClosed?.();
    })();
    return this.#closing;
  }

  /** {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #takeIdle(): Prepared | undefined {
    while (this.#idle.length > 0) {
      const prepared = this.#idle.shift()!;
      if (prepared.parked.alive) return prepared;
      this.#destroy(prepared);
    }
    return undefined;
  }

  #handOut(prepared: Prepared): PooledSandbox {
    let released!: () => void;
    const done = new Promise<void>((resolve) => {
      released = resolve;
    });
    const sandbox = new PooledSandbox(prepared, () => {
      // release() resolves before the sandbox's mount namespace is unmounted (ParkedSandbox.tornDown): close() waits for that.
      this.#track(prepared.parked.tornDown());
      this.#held.delete(sandbox);
      released();
      this.#refill();
    });
    this.#held.set(sandbox, done);
    return sandbox;
  }

  /** `onEmpty: 'create'`: one start for this caller, outside the refill's bound. */
  async #createFor(signal: AbortSignal | undefined): Promise<PooledSandbox> {
    this.#onDemand++;
    const start = this.#start();
    this.#starting.add(start);
    let prepared: Prepared;
    try {
      prepared = await start;
    } finally {
      this.#onDemand--;
      this.#starting.delete(start);
    }
    if (this.#closing || signal?.aborted) {
      await prepared.parked.tornDown();
      if (signal?.aborted) throw new AbortError('acquire() was aborted while its sandbox was prepared', { cause: signal.reason });
      throw new ConflictError('the pool was closed while acquire() waited');
    }
    return this.#handOut(prepared);
  }

  /** Starts background preparations while fewer than `size` are idle or pending. */
  #refill(): void {
    if (this.#closing || this.#retry) return;
    while (this.#pending < this.#options.maxPending && this.#idle.length + this.#pending < this.#options.size) {
      this.#pending++;
      const start = this.#start().then(
        (prepared) => {
          this.#pending--;
          this.#failures = 0;
          this.#offer(prepared);
          this.#refill();
          // close() waits for this start: then also for the destruction #offer may have begun.
          return Promise.all([...this.#destroying]);
        },
        (error: unknown) => {
          this.#pending--;
          this.#failures++;
          // A caller waiting hears why; the others keep waiting for the retry.
          this.#waiters.shift()?.fail(error instanceof Error ? error : new Error(String(error)));
          if (this.#closing) return;
          const delay = Math.min(MAX_BACKOFF_MS, 25 * 2 ** this.#failures);
          this.#retry = setTimeout(() => {
            this.#retry = undefined;
            this.#refill();
          }, delay);
        },
      );
      this.#starting.add(start);
      void start.finally(() => this.#starting.delete(start));
    }
  }

  /** A freshly prepared sandbox: to the longest waiting caller, else idle. */
  #offer(prepared: Prepared): void {
    if (this.#closing) {
      this.#destroy(prepared);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.give(prepared);
    else this.#keepIdle(prepared);
  }

  #keepIdle(prepared: Prepared): void {
    this.#idle.push(prepared);
    // A sandbox whose PID 1 died while idle (killed from outside) is never handed out.
    void prepared.parked.gone.then(() => {
      const i = this.#idle.indexOf(prepared);
      if (i < 0) return;
      this.#idle.splice(i, 1);
      this.#discarded++;
      void this.#destroy(prepared).then(() => this.#refill());
    });
  }

  #destroy(prepared: Prepared): Promise<void> {
    return this.#track(prepared.parked.tornDown());
  }

  /** Keeps `done` (a sandbox's destruction) for close() to wait for. */
  #track(done: Promise<void>): Promise<void> {
    this.#destroying.add(done);
    void done.finally(() => this.#destroying.delete(done));
    return done;
  }
}
