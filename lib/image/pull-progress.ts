/**
 * Coalescing of a pull's progress events, so that a progress bar needs no throttling of its
 * own: per layer, every state change (waiting, downloading, verifying, extracting, done,
 * cached) passes, and so does the last byte count of a download, but byte counts within a
 * state pass at most once per {@link PROGRESS_INTERVAL_MS} (at most 10 a second). A 23 MB
 * layer used to make one event per 64 KiB chunk, about 400.
 *
 * No timer: a count that was held back is carried by the layer's next event (a later count or
 * its next state), so nothing here can keep Node's event loop alive.
 * @module
 */
import type { LayerState } from './image.js';

/** The shortest time between two byte-count events of one layer in one state. */
export const PROGRESS_INTERVAL_MS = 100;

interface LayerMark {
  state: LayerState;
  at: number;
}

/** Decides, per layer, which progress updates become events. */
export class ProgressCoalescer {
  readonly #now: () => number;
  readonly #interval: number;
  readonly #last = new Map<number, LayerMark>();

  /** @param options.now a clock in milliseconds (default `performance.now`); unit tests pass a fake one. */
  constructor(options: { now?: () => number; intervalMs?: number } = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#interval = options.intervalMs ?? PROGRESS_INTERVAL_MS;
  }

  /**
   * Whether the update of layer `index` to `state` with `bytesDone` of `bytesTotal` is an event:
   * a new state, the final count of a layer, or a count at least the interval after the last event.
   */
  admit(index: number, state: LayerState, bytesDone: number, bytesTotal: number): boolean {
    const now = this.#now();
    const last = this.#last.get(index);
    const pass = !last || last.state !== state || bytesDone >= bytesTotal || now - last.at >= this.#interval;
    if (pass) this.#last.set(index, { state, at: now });
    return pass;
  }
}
