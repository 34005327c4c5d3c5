/**
 * Container events: the typed map each `Container` emits (eventemitter3), and the
 * runtime-wide stream (`rt.events()`) that sees every container of the runtime.
 *
 * Events come from this process: its own containers' transitions, and exits that
 * reconciliation or a state-file watch discovers. Another process's actions on a shared state
 * dir are not broadcast (there is no daemon); their effects show in `inspect()` and `list()`.
 * @module
 */
import { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';
import type { HealthStatus } from './healthcheck.js';

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

  /** @internal */
  constructor(hub: EventHub, opts: EventsOptions) {
    this.#hub = hub;
    this.#opts = opts;
    opts.signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  /** @internal */
  push(e: RuntimeEvent): void {
    if (this.#closed || !matches(e, this.#opts.filters)) return;
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

/** Fans events out to subscriptions. */
export class EventHub {
  #subs = new Set<EventSubscription>();

  publish(e: RuntimeEvent): void {
    for (const s of this.#subs) s.push(e);
  }

  subscribe(opts: EventsOptions = {}): EventSubscription {
    if (typeof opts !== 'object' || opts === null) throw new ValidationError('options', 'must be an object');
    if (opts.bufferSize !== undefined && (!Number.isInteger(opts.bufferSize) || opts.bufferSize < 1)) throw new ValidationError('bufferSize', 'must be a positive integer');
    const sub = new EventSubscription(this, opts);
    if (!opts.signal?.aborted) this.#subs.add(sub);
    else sub.close();
    return sub;
  }

  /** @internal */
  unsubscribe(sub: EventSubscription): void {
    this.#subs.delete(sub);
  }

  /** Ends every subscription (their iterations finish after the events already queued). */
  closeAll(): void {
    for (const s of [...this.#subs]) s.close();
  }
}
