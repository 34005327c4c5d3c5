/**
 * Cross-process locks on files under the state root, with flock(2).
 *
 * Node has no flock, and the native `fsFlock` never blocks: a blocking flock would stall a
 * libuv thread (or the event loop) for as long as another process holds the lock, so waiting
 * is a poll with a growing backoff capped at a few tens of milliseconds. Each acquisition opens
 * its own file description, so two acquisitions in one process conflict just as two processes
 * do. The kernel releases a lock when its holder dies, so a crash never leaves a stale lock and
 * there is nothing to detect or break.
 * @module
 */
import { closeSync, constants as FS, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, ConflictError } from '../errors.js';
import { native, type NativeBinding } from '../native.js';

/** A held lock. `release()` is idempotent. */
export interface HeldLock {
  release(): void;
}

export type LockMode = 'exclusive' | 'shared';

export interface LockOptions {
  mode?: LockMode;
  signal?: AbortSignal | undefined;
  /** Give up with a `ConflictError` after this long. The default depends on the lock's owner. */
  timeoutMs?: number;
}

export interface FileLockOptions extends LockOptions {
  /** Names the lock in error messages: "aborted while waiting for <what>". */
  what: string;
  /** First poll interval; doubles up to `maxDelayMs`. Default 1 ms. */
  firstDelayMs?: number;
  /** Default 25 ms: short enough that a released lock is picked up promptly, long enough not to spin. */
  maxDelayMs?: number;
  /** Default: the addon. */
  native?: LockBinding;
}

function holding(fd: number): HeldLock {
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      // Closing the only description of the file drops the flock; no explicit unlock needed.
      closeSync(fd);
    },
  };
}

/** The one native call locks need; tests pass the recording fake (test/helpers/native-fake.ts). */
export type LockBinding = Pick<NativeBinding, 'fsFlock'>;

function openLockFile(path: string): number {
  return openSync(path, FS.O_RDWR | FS.O_CREAT, 0o600);
}

/**
 * Takes a flock on `path` (created if missing) without waiting.
 * @returns the held lock, or `undefined` when someone else holds it.
 */
export function tryFileLock(path: string, mode: LockMode = 'exclusive', binding: LockBinding = native()): HeldLock | undefined {
  const fd = openLockFile(path);
  let got = false;
  try {
    got = binding.fsFlock(fd, mode);
  } finally {
    if (!got) closeSync(fd);
  }
  return got ? holding(fd) : undefined;
}

/**
 * Waits until a flock on `path` (created if missing) is held.
 * @throws AbortError when `signal` aborts while waiting.
 * @throws ConflictError when `timeoutMs` passes first (default: wait forever).
 */
export async function acquireFileLock(path: string, options: FileLockOptions): Promise<HeldLock> {
  const fd = openLockFile(path);
  const binding = options.native ?? native();
  const mode = options.mode ?? 'exclusive';
  const deadline = performance.now() + (options.timeoutMs ?? Infinity);
  const maxDelay = options.maxDelayMs ?? 25;
  let delay = options.firstDelayMs ?? 1;
  try {
    while (!binding.fsFlock(fd, mode)) {
      if (options.signal?.aborted) throw new AbortError(`aborted while waiting for ${options.what}`, { cause: options.signal.reason });
      if (performance.now() > deadline) {
        throw new ConflictError(`timed out waiting for ${options.what}: another operation or process holds it`, { path });
      }
      await sleep(delay);
      delay = Math.min(delay * 2, maxDelay);
    }
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return holding(fd);
}

export interface LockDirOptions {
  /** Put lock `x` at `locks/<prefix>x.lock`. Default ''. */
  prefix?: string;
  /** Default `timeoutMs` of every acquisition. Default 60 s: far longer than any locked section berth runs. */
  timeoutMs?: number;
  /** Names lock `name` in error messages. Default `lock <name>`. */
  describe?: (name: string) => string;
  /** Default: the addon. */
  native?: LockBinding;
}

/** The lock directory of a state root (`<root>/locks`), created on first use. */
export class LockDir {
  readonly dir: string;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #describe: (name: string) => string;
  readonly #native: LockBinding | undefined;
  #made = false;

  constructor(root: string, options: LockDirOptions = {}) {
    this.dir = join(root, 'locks');
    this.#prefix = options.prefix ?? '';
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#describe = options.describe ?? ((name) => `lock ${name}`);
    this.#native = options.native;
  }

  path(name: string): string {
    return join(this.dir, `${this.#prefix}${name}.lock`);
  }

  /** Waits (polling with backoff 1 ms .. 25 ms) until the lock `name` is held. */
  async acquire(name: string, options: LockOptions = {}): Promise<HeldLock> {
    if (!this.#made) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.#made = true;
    }
    return acquireFileLock(this.path(name), {
      ...options,
      timeoutMs: options.timeoutMs ?? this.#timeoutMs,
      what: this.#describe(name),
      ...(this.#native ? { native: this.#native } : {}),
    });
  }

  /** Runs `fn` holding the lock. */
  async with<T>(name: string, fn: () => Promise<T> | T, options: LockOptions = {}): Promise<T> {
    const lock = await this.acquire(name, options);
    try {
      return await fn();
    } finally {
      lock.release();
    }
  }

  /**
   * Deletes a lock file. Only safe for names that are never used again (a removed container's
   * or anonymous volume's random name): a waiter on the unlinked file and a newcomer on a fresh
   * one would both "hold" it.
   */
  discard(name: string): void {
    rmSync(this.path(name), { force: true });
  }
}
