/**
 * Container events: the typed map each `Container` emits (eventemitter3), and the
 * runtime-wide stream (`rt.events()`) that sees every container of the state directory.
 *
 * Every event is recorded in the state directory's journal (`event-journal.ts`): this
 * process's, other processes', and those of detached containers' monitors while no Node
 * process watched. A subscription replays the journal from `since`, then follows it: its own
 * runtime's events arrive from memory at once, everyone else's from the file (polled every
 * {@link TAIL_INTERVAL_MS}).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';
import { JournalTail, appendRecord, parseEventTime, readJournal, toEvent, type JournalRecord } from './event-journal.js';
import type { HealthStatus } from './healthcheck.js';

/** How often a followed journal is read for other writers' events. */
export const TAIL_INTERVAL_MS = 200;

/** How a run ended (the `exit` event and `wait()`). */
export interface ExitInfo {
  /** Exit code; 128 + n when killed by signal n. */
  exitCode: number;
  signal: NodeJS.Signals | null;
  /** The kernel's OOM killer killed a process of the container during the run. */
  oomKilled: boolean;
}

/** The events of a {@link Container}, with their arguments. */
export interface ContainerEvents {
  create: [];
  start: [];
  exit: [ExitInfo];
  oom: [];
  pause: [];
  unpause: [];
  /** A restart began: by `restart()` or by the restart policy. */
  restart: [];
  health_status: [HealthStatus];
  rename: [{ oldName: string; name: string }];
  destroy: [];
}

export type ContainerAction = keyof ContainerEvents;

/** One event in the runtime-wide stream (Docker's event shape, in Node's case). */
export interface RuntimeEvent {
  type: 'container';
  action: ContainerAction;
  /** Container id. */
  id: string;
  /** Container name at the time of the event. */
  name: string;
  /** RFC 3339. */
  time: string;
  /** Image reference (or `rootfs:<dir>`, `host`), labels, and for `exit` the code and signal. */
  attributes: Record<string, string>;
}

export interface EventsOptions {
  /** Only events matching every given filter. */
  filters?: {
    /** Container ids or names. */
    container?: string[];
    action?: ContainerAction[];
    /** `key` or `key=value` of container labels. */
    label?: string[];
  };
  signal?: AbortSignal;
  /** Events queued for a slow reader before the oldest are dropped. Default 10000. */
  bufferSize?: number;
  /**
   * Replay the recorded events from this time on first (Docker's `--since`): a Date, an RFC
   * 3339 string or unix seconds (number or string). The journal keeps about the last 2 MiB of
   * events. Default: only events from now on.
   */
  since?: Date | string | number;
  /**
   * Stop at this time (same forms as `since`): a past `until` ends the subscription after the
   * replay; a future one ends it when reached. Default: follow until `close()` or the signal.
   */
  until?: Date | string | number;
}

function matches(e: RuntimeEvent, f: EventsOptions['filters']): boolean {
  if (!f) return true;
  if (f.container && !f.container.some((c) => c === e.id || c === e.name || (c.length >= 4 && e.id.startsWith(c)))) return false;
  if (f.action && !f.action.includes(e.action)) return false;
  if (f.label) {
    for (const l of f.label) {
      const eq = l.indexOf('=');
      const key = `label.${eq < 0 ? l : l.slice(0, eq)}`;
      if (!(key in e.attributes)) return false;
      if (eq >= 0 && e.attributes[key] !== l.slice(eq + 1)) return false;
    }
  }
  return true;
}

/** A subscription: iterate it, or `stream()` it as an object-mode Readable. `close()` ends it. */
export class EventSubscription implements AsyncIterable<RuntimeEvent> {
  /** Events dropped because the reader fell more than `bufferSize` behind. */
  dropped = 0;
  #queue: RuntimeEvent[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #hub: EventHub;
  #opts: EventsOptions;
  #untilMs: number;
  #untilTimer: NodeJS.Timeout | undefined;

  /** @internal */
  constructor(hub: EventHub, opts: EventsOptions, untilMs = Number.POSITIVE_INFINITY) {
    this.#hub = hub;
    this.#opts = opts;
    this.#untilMs = untilMs;
    opts.signal?.addEventListener('abort', () => this.close(), { once: true });
    if (Number.isFinite(untilMs) && untilMs > Date.now()) {
      // Bounded by the caller's own `until`; it ends the subscription, so it may hold the loop.
      this.#untilTimer = setTimeout(() => this.close(), Math.min(untilMs - Date.now(), 2 ** 31 - 1));
    }
  }

  /** @internal Whether this subscription still takes live events. */
  get following(): boolean {
    return !this.#closed;
  }

  /** @internal */
  push(e: RuntimeEvent): void {
    if (this.#closed || !matches(e, this.#opts.filters)) return;
    if (Date.parse(e.time) > this.#untilMs) return;
    this.#queue.push(e);
    if (this.#queue.length > (this.#opts.bufferSize ?? 10_000)) {
      this.#queue.shift();
      this.dropped++;
    }
    this.#wake?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#untilTimer) clearTimeout(this.#untilTimer);
    this.#hub.unsubscribe(this);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RuntimeEvent> {
    try {
      for (;;) {
        const next = this.#queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.#closed) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
    } finally {
      this.close();
    }
  }

  stream(): Readable {
    return Readable.from(this, { objectMode: true });
  }
}

/**
 * Records events in the journal and fans them out to subscriptions. One per runtime; without a
 * journal path (tests of pure logic) it only fans out.
 */
export class EventHub {
  #subs = new Set<EventSubscription>();
  readonly #journal: string | undefined;
  /** This runtime's tag on its records (event-journal.ts). */
  readonly #src = `node-${process.pid}-${randomBytes(4).toString('hex')}`;
  #tail: JournalTail | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(journal?: string) {
    this.#journal = journal;
  }

  /** Records `e` and delivers it to this runtime's subscriptions. */
  publish(e: RuntimeEvent): void {
    if (this.#journal !== undefined) {
      try {
        appendRecord(this.#journal, { ...e, src: this.#src });
      } catch (error) {
        // A full disk loses the record, never the transition that caused it.
        process.emitWarning(`berth: recording a ${e.action} event of container ${e.name} failed: ${(error as Error)?.message ?? String(error)}`, { code: 'BERTH_EVENT_JOURNAL' });
      }
    }
    this.#deliver(e);
  }

  #deliver(e: RuntimeEvent): void {
    for (const s of this.#subs) s.push(e);
  }

  /**
   * A subscription: the journal's events from `since` first, then every new one until
   * `until`, `close()` or the signal. A following subscription keeps the process alive (as
   * `docker events` does) until one of those ends it.
   * @throws ValidationError for a bad option.
   */
  subscribe(opts: EventsOptions = {}): EventSubscription {
    if (typeof opts !== 'object' || opts === null) throw new ValidationError('options', 'must be an object');
    if (opts.bufferSize !== undefined && (!Number.isInteger(opts.bufferSize) || opts.bufferSize < 1)) throw new ValidationError('bufferSize', 'must be a positive integer');
    const sinceMs = opts.since === undefined ? undefined : parseEventTime(opts.since, 'since');
    const untilMs = opts.until === undefined ? Number.POSITIVE_INFINITY : parseEventTime(opts.until, 'until');
    if (sinceMs !== undefined && sinceMs > untilMs) throw new ValidationError('until', 'must not be before since');
    const sub = new EventSubscription(this, opts, untilMs);
    if (opts.signal?.aborted) {
      sub.close();
      return sub;
    }
    const follow = untilMs > Date.now();
    const tail = this.#journal !== undefined && (follow || sinceMs !== undefined) ? this.#ensureTail() : undefined;
    // Catch the tail up first (what was appended so far goes to the older subscriptions only),
    // and replay exactly up to where it stands: no gap, no repeat.
    tail?.poll();
    if (sinceMs !== undefined && tail) {
      for (const r of readJournal(tail.path, tail.position).records) {
        const at = Date.parse(r.time);
        if (at >= sinceMs && at <= untilMs) sub.push(toEvent(r));
      }
    }
    if (follow) {
      this.#subs.add(sub);
      this.#startPolling();
    } else {
      sub.close();
    }
    return sub;
  }

  #ensureTail(): JournalTail {
    if (!this.#tail) {
      const from = readJournal(this.#journal!, { ino: -1, offset: 0 }).position;
      this.#tail = new JournalTail(this.#journal!, from, (r: JournalRecord) => {
        if (r.src !== this.#src) this.#deliver(toEvent(r));
      });
    }
    return this.#tail;
  }

  #startPolling(): void {
    if (this.#timer || !this.#tail) return;
    this.#timer = setInterval(() => {
      try {
        this.#tail?.poll();
      } catch {
        // an unreadable journal (removed state dir): nothing to deliver this round
      }
    }, TAIL_INTERVAL_MS);
  }

  /** @internal */
  unsubscribe(sub: EventSubscription): void {
    this.#subs.delete(sub);
    if (this.#subs.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Ends every subscription (their iterations finish after the events already queued). */
  closeAll(): void {
    for (const s of [...this.#subs]) s.close();
  }
}
