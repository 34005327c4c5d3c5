/**
 * Cross-process volume locks: `<root>/locks/volume-<name>.lock` with flock(2).
 *
 * The native `fsFlock` never blocks (a blocking flock would stall a libuv thread or the event
 * loop), so waiting is a poll with a bounded, growing backoff. Two acquisitions in one process
 * conflict as well: each opens its own file description. The kernel drops a lock when its
 * holder dies, so a crash never leaves a stale lock behind.
 * @module
 */
import { closeSync, constants as FS, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, ConflictError } from '../errors.js';
import { fsOps } from '../image/fs-ops.js';

export interface HeldVolumeLock {
  release(): void;
}

export interface VolumeLockOptions {
  signal?: AbortSignal | undefined;
  /** Give up after this long. Default 120 s: a copy-up of a large image directory holds the lock. */
  timeoutMs?: number;
}

export class VolumeLocks {
  readonly dir: string;
  #made = false;

  constructor(root: string) {
    this.dir = join(root, 'locks');
  }

  path(name: string): string {
    return join(this.dir, `volume-${name}.lock`);
  }

  async acquire(name: string, options: VolumeLockOptions = {}): Promise<HeldVolumeLock> {
    if (!this.#made) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.#made = true;
    }
    const fd = openSync(this.path(name), FS.O_RDWR | FS.O_CREAT, 0o600);
    const flock = fsOps().fsFlock;
    const deadline = performance.now() + (options.timeoutMs ?? 120_000);
    let delay = 1;
    try {
      while (!flock(fd, 'exclusive')) {
        if (options.signal?.aborted) throw new AbortError(`aborted while waiting for the lock of volume ${name}`, { cause: options.signal.reason });
        if (performance.now() > deadline) {
          throw new ConflictError(`timed out waiting for the lock of volume ${name}: another operation or process holds it`, { path: this.path(name) });
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

  async with<T>(name: string, fn: () => Promise<T>, options?: VolumeLockOptions): Promise<T> {
    const lock = await this.acquire(name, options);
    try {
      return await fn();
    } finally {
      lock.release();
    }
  }

  /**
   * Deletes a lock file. Only for names never used again (an anonymous volume's random name):
   * a waiter on the unlinked file and a newcomer on a fresh one would both "hold" the lock.
   */
  discard(name: string): void {
    rmSync(this.path(name), { force: true });
  }
}
