/**
 * Liveness of many recorded processes at once, for `containers.list()` with a thousand
 * containers (issue 17 §2): reading /proc/<pid>/stat for each monitor was the largest share of
 * a list (open, read, close, and the kernel formats 52 fields each time: ≈ 23 µs a pid here).
 *
 * One `readdir('/proc')` per list gives every pid that exists now. A recorded process whose pid
 * is absent is dead, exactly and at once. A pid that is present is the recorded process or a
 * later one that reused the pid; only its start time tells, so it is read from /proc/<pid>/stat
 * the first time and again whenever this process last confirmed it more than
 * {@link REVERIFY_MS} ago. In between, a present pid counts as the process confirmed.
 *
 * What that trades, and why it is safe for `list()` only: a monitor records its container's
 * exit in run.json before it exits, and `list()` sees that record at once (record-cache.ts),
 * so the trust matters only for a monitor that died without a word (SIGKILL, OOM kill) *and*
 * whose pid another process took within the window: `list()` may then show that container
 * running for at most {@link REVERIFY_MS}. Every operation on a container (`get`, `inspect`,
 * `stop`, ...) judges its process with {@link isAlive}, never with this.
 * @module
 */
import { readdirSync } from 'node:fs';
import { isAlive, type ProcessIdentity } from './process-identity.js';

/** How long a start time confirmed from /proc/<pid>/stat is trusted while the pid exists. */
export const REVERIFY_MS = 2000;

interface Confirmed {
  startTime: string;
  atMs: number;
}

/** Pids present in /proc now (processes; thread ids are not listed at the top level). */
function presentPids(): Set<number> {
  const out = new Set<number>();
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57) out.add(Number(name));
  }
  return out;
}

/**
 * Keeps, across lists, the processes confirmed alive by start time. One instance per
 * `ContainerService`; {@link begin} once per list takes the /proc snapshot that list uses.
 */
export class LivenessCache {
  readonly #confirmed = new Map<number, Confirmed>();
  readonly #reverifyMs: number;

  /** @param reverifyMs {@link REVERIFY_MS}; 0 confirms every process on every call. */
  constructor(reverifyMs = REVERIFY_MS) {
    this.#reverifyMs = reverifyMs;
  }

  /** A checker for one list: the pids present now, read once. */
  begin(): (id: ProcessIdentity | undefined) => boolean {
    const present = presentPids();
    for (const pid of this.#confirmed.keys()) if (!present.has(pid)) this.#confirmed.delete(pid);
    const now = Date.now();
    return (id) => {
      if (!id || !(id.pid > 0) || !present.has(id.pid)) return false;
      const known = this.#confirmed.get(id.pid);
      if (known && known.startTime === id.startTime && now - known.atMs < this.#reverifyMs) return true;
      const alive = isAlive(id);
      // Dated up to half a window early, so that a thousand processes confirmed by one list are
      // not all read again by one later list: the re-reads spread over the lists that follow.
      if (alive) this.#confirmed.set(id.pid, { startTime: id.startTime, atMs: now - Math.random() * (this.#reverifyMs / 2) });
      else this.#confirmed.delete(id.pid);
      return alive;
    };
  }

  get size(): number {
    return this.#confirmed.size;
  }
}
