/**
 * Cross-process locks on `<root>/locks/*.lock` with flock(2).
 *
 * Node has no flock, and the native `fsFlock` never blocks (a blocking flock would stall a
 * libuv thread, or the event loop), so waiting is a poll with a bounded, growing backoff. Two
 * acquisitions in one process conflict as well: each takes its own open file description.
 * The kernel releases a lock when its holder dies, so a crash never leaves a stale lock.
 * @module
 */
import { closeSync, constants as FS, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, ConflictError } from '../errors.js';
import { fsOps } from '../image/fs-ops.js';

/** A held lock. `release()` is idempotent. */
export interface HeldLock {
  release(): void;
}

export interface LockOptions {
  mode?: 'exclusive' | 'shared';
  signal?: AbortSignal | undefined;
  /** Give up after this long. Default 60 s: far longer than any locked section berth runs. */
  timeoutMs?: number;
}

/** The lock directory of a state root, created on first use. */
export class LockDir {
  readonly dir: string;
  #made = false;

  constructor(root: string) {
    this.dir = join(root, 'locks');
  }

  path(name: string): string {
    return join(this.dir, `${name}.lock`);
  }

  /** Waits (polling with backoff 1 ms .. 25 ms) until `locks/<name>.lock` is held. */
  async acquire(name: string, options: LockOptions = {}): Promise<HeldLock> {
    if (!this.#made) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.#made = true;
    }
    const fd = openSync(this.path(name), FS.O_RDWR | FS.O_CREAT, 0o600);
    const flock = fsOps().fsFlock;
    const mode = options.mode ?? 'exclusive';
    const deadline = performance.now() + (options.timeoutMs ?? 60_000);
    let delay = 1;
    try {
      while (!flock(fd, mode)) {
        if (options.signal?.aborted) throw new AbortError(`aborted while waiting for lock ${name}`, { cause: options.signal.reason });
        if (performance.now() > deadline) {
          throw new ConflictError(`timed out waiting for lock ${name}: another operation or process holds it`, { path: this.path(name) });
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 25);
      }
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        closeSync(fd);
      },
    };
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
   * random id): a waiter on the unlinked file and a newcomer on a fresh one would both "hold" it.
   */
  discard(name: string): void {
    rmSync(this.path(name), { force: true });
  }
}
