/**
 * A counting semaphore whose waiters are served heaviest first: how a pull schedules its
 * layers (weight: the blob's size).
 * @module
 */

/**
 * `n` slots, handed to the waiter with the largest weight first (ties: first come). A pull's
 * layers wait with their blob size: the largest layer bounds the pull's time, so it starts
 * first instead of queueing behind smaller ones (longest job first; a 15-layer image with one
 * 20 MiB layer at position 6 used to start it only when one of the first four finished).
 */
export class WeightedSlots {
  private free: number;
  private readonly waiters: Array<{ weight: number; wake: () => void }> = [];
  /** @param n how many holders at once (at least 1; the caller validates). */
  constructor(n: number) {
    this.free = n;
  }
  /**
   * Resolves with a release function (idempotent) once a slot is this caller's.
   * @param weight waiters with a larger weight get a slot first; equal weights in call order. Default 0.
   */
  async acquire(weight = 0): Promise<() => void> {
    if (this.free > 0) this.free--;
    else {
      await new Promise<void>((wake) => {
        let at = this.waiters.findIndex((w) => w.weight < weight);
        if (at < 0) at = this.waiters.length;
        this.waiters.splice(at, 0, { weight, wake });
      });
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next.wake();
      else this.free++;
    };
  }
}
