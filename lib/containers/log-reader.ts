/**
 * Reads a container's `json-file` logs (current file and rotated ones, oldest first), joins
 * records Docker split at 16 KiB back into lines, filters by stream and time, keeps the last
 * `tail` lines, and with `follow` keeps reading as the writer appends and rotates, until the
 * container stops or the caller stops iterating.
 *
 * Following is a bounded loop: each pass reads what is new, then waits for an inotify event
 * on the container directory (`fs.watch`) or 250 ms, whichever comes first. Rotation is seen
 * as a change of inode at `container.log`: the old file is read to its end before the new one.
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { AbortError, ValidationError } from '../errors.js';
import { parseTimePoint } from '../units.js';
import type { LogStreamName } from './log-writer.js';

/** One line of output. */
export interface LogEntry {
  stream: LogStreamName;
  /** When the line (its first part) was written: RFC 3339 with nanoseconds. */
  time: string;
  /** The line as written, with its `\n` (absent on a last line that had none). */
  text: string;
  /** `text` without the trailing newline. */
  line: string;
}

export interface LogsOptions {
  /** Keep reading new lines until the container stops. Default false. */
  follow?: boolean;
  /** Only lines written at or after: Date, RFC 3339, Unix seconds, or a duration before now (`'10m'`). */
  since?: Date | string | number;
  /** Only lines written before. */
  until?: Date | string | number;
  /** Only the last n lines (before following). Default: all. */
  tail?: number | 'all';
  /** `stream()` prefixes each line with its time, as `docker logs -t`. Default false. */
  timestamps?: boolean;
  /** Include stdout. Default true. */
  stdout?: boolean;
  /** Include stderr. Default true. */
  stderr?: boolean;
  signal?: AbortSignal;
}

/** What the reader needs from the container. */
export interface LogSource {
  path: string;
  /** True once no more output can come (not running, not restarting, or removed). */
  isDone(): Promise<boolean>;
}

export interface ResolvedLogOptions {
  follow: boolean;
  sinceMs: number | undefined;
  untilMs: number | undefined;
  tail: number | undefined;
  timestamps: boolean;
  streams: Set<LogStreamName>;
  signal: AbortSignal | undefined;
}

const POLL_MS = 250;

function recordTimeMs(time: string): number {
  return Date.parse(time);
}

/** Joins split records per stream; emits whole lines. */
class LineAssembler {
  #pending = new Map<LogStreamName, { time: string; text: string }>();

  push(stream: LogStreamName, text: string, time: string): LogEntry | undefined {
    const prev = this.#pending.get(stream);
    const whole = prev ? { time: prev.time, text: prev.text + text } : { time, text };
    if (!text.endsWith('\n')) {
      this.#pending.set(stream, whole);
      return undefined;
    }
    this.#pending.delete(stream);
    return entry(stream, whole.time, whole.text);
  }

  /** What never got its newline (the end of the output). */
  flush(): LogEntry[] {
    const out = [...this.#pending].map(([stream, p]) => entry(stream, p.time, p.text));
    this.#pending.clear();
    return out.sort((a, b) => a.time.localeCompare(b.time));
  }
}

function entry(stream: LogStreamName, time: string, text: string): LogEntry {
  return { stream, time, text, line: text.endsWith('\n') ? text.slice(0, -1) : text };
}

function parseRecord(line: string): { log: string; stream: LogStreamName; time: string } | undefined {
  try {
    const r = JSON.parse(line) as { log?: unknown; stream?: unknown; time?: unknown };
    if (typeof r.log !== 'string' || (r.stream !== 'stdout' && r.stream !== 'stderr') || typeof r.time !== 'string') return undefined;
    return r as { log: string; stream: LogStreamName; time: string };
  } catch {
    return undefined; // a torn last line of a crashed writer
  }
}

/** Reads complete JSON lines from a file handle, remembering its position and any partial line. */
class FileCursor {
  readonly fh: FileHandle;
  readonly ino: number;
  #pos = 0;
  #rest = '';

  constructor(fh: FileHandle, ino: number) {
    this.fh = fh;
    this.ino = ino;
  }

  static async open(path: string): Promise<FileCursor | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return new FileCursor(fh, (await fh.stat()).ino);
  }

  /** New complete lines since the last call. */
  async read(): Promise<string[]> {
    const lines: string[] = [];
    const buf = Buffer.alloc(256 * 1024);
    for (;;) {
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.#pos);
      if (bytesRead === 0) break;
      this.#pos += bytesRead;
      const text = this.#rest + buf.toString('utf8', 0, bytesRead);
      const parts = text.split('\n');
      this.#rest = parts.pop()!;
      for (const p of parts) if (p !== '') lines.push(p);
      if (bytesRead < buf.length) break;
    }
    return lines;
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

/** Rotated files, oldest first, then the current one. */
async function logFiles(path: string): Promise<string[]> {
  const base = basename(path);
  let names: string[] = [];
  try {
    names = await readdir(dirname(path));
  } catch {
    return [];
  }
  const rotated = names
    .map((n) => (n.startsWith(`${base}.`) ? Number(n.slice(base.length + 1)) : NaN))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => b - a)
    .map((n) => `${path}.${n}`);
  return [...rotated, path];
}

function waitForChange(wake: { fn?: () => void }, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, POLL_MS);
    function done() {
      clearTimeout(timer);
      wake.fn = undefined;
      signal?.removeEventListener('abort', done);
      resolve();
    }
    wake.fn = done;
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A container's logs: iterate for {@link LogEntry} objects, or `stream()` for text. */
export class ContainerLogs implements AsyncIterable<LogEntry> {
  readonly #source: LogSource;
  readonly #opts: ResolvedLogOptions;

  /** @internal */
  constructor(source: LogSource, opts: ResolvedLogOptions) {
    this.#source = source;
    this.#opts = opts;
  }

  #accept(e: LogEntry): boolean {
    if (!this.#opts.streams.has(e.stream)) return false;
    const t = recordTimeMs(e.time);
    if (this.#opts.sinceMs !== undefined && t < this.#opts.sinceMs) return false;
    return true;
  }

  #pastUntil(e: LogEntry): boolean {
    return this.#opts.untilMs !== undefined && recordTimeMs(e.time) >= this.#opts.untilMs;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LogEntry> {
    const { signal } = this.#opts;
    const check = () => {
      if (signal?.aborted) throw new AbortError('logs() was aborted', { cause: signal.reason });
    };
    check();
    const assembler = new LineAssembler();
    const path = this.#source.path;
    // Open every file first: a rotation while we read then cannot make us skip one.
    const files = await logFiles(path);
    const cursors: FileCursor[] = [];
    for (const f of files) {
      const c = await FileCursor.open(f);
      if (c) cursors.push(c);
    }
    let current = cursors.length > 0 && files[files.length - 1] === path ? cursors[cursors.length - 1] : undefined;
    const tail = this.#opts.tail;
    const backlog: LogEntry[] = [];
    const take = (lines: string[], out: LogEntry[]) => {
      for (const l of lines) {
        const r = parseRecord(l);
        if (!r) continue;
        const e = assembler.push(r.stream, r.log, r.time);
        if (e && this.#accept(e)) out.push(e);
      }
    };
    let watcher: FSWatcher | undefined;
    try {
      for (const c of cursors) {
        take(await c.read(), backlog);
        if (tail !== undefined && backlog.length > tail) backlog.splice(0, backlog.length - tail);
        if (c !== current) await c.close();
      }
      if (!this.#opts.follow) {
        for (const e of assembler.flush()) if (this.#accept(e)) backlog.push(e);
        const slice = tail !== undefined ? backlog.slice(Math.max(0, backlog.length - tail)) : backlog;
        for (const e of slice) {
          if (this.#pastUntil(e)) return;
          yield e;
        }
        return;
      }
      for (const e of backlog) {
        if (this.#pastUntil(e)) return;
        yield e;
      }
      backlog.length = 0;
      const wake: { fn?: () => void } = {};
      try {
        watcher = watch(dirname(path), { persistent: false }, () => wake.fn?.());
        watcher.on('error', () => {});
      } catch {
        watcher = undefined; // the directory went away: polling sees it too
      }
      for (;;) {
        check();
        const fresh: LogEntry[] = [];
        if (current) take(await current.read(), fresh);
        // Rotation: `container.log` is a new file; the old one was fully read just above.
        const st = await stat(path).catch(() => undefined);
        if (st && (!current || st.ino !== current.ino)) {
          if (current) {
            take(await current.read(), fresh);
            await current.close();
          }
          current = await FileCursor.open(path);
          if (current) take(await current.read(), fresh);
        }
        for (const e of fresh) {
          if (this.#pastUntil(e)) return;
          yield e;
        }
        if (fresh.length > 0) continue;
        if (await this.#source.isDone()) {
          // One last pass: the writer flushes what it held when the container exited.
          const last: LogEntry[] = [];
          if (current) take(await current.read(), last);
          for (const e of assembler.flush()) if (this.#accept(e)) last.push(e);
          for (const e of last) {
            if (this.#pastUntil(e)) return;
            yield e;
          }
          return;
        }
        await waitForChange(wake, signal);
      }
    } finally {
      watcher?.close();
      await current?.close();
      for (const c of cursors) if (c !== current) await c.close();
    }
  }

  /** The lines as text (`stdout` and `stderr` interleaved in time order), prefixed with times when `timestamps`. */
  stream(): Readable {
    const iterable = this;
    const stamps = this.#opts.timestamps;
    return Readable.from(
      (async function* () {
        for await (const e of iterable) yield Buffer.from(stamps ? `${e.time} ${e.text}` : e.text);
      })(),
      { objectMode: false },
    );
  }

  /** Everything (without `follow`) as one string. */
  async text(): Promise<string> {
    let out = '';
    for await (const e of this) out += this.#opts.timestamps ? `${e.time} ${e.text}` : e.text;
    return out;
  }
}

/** Validates `logs()` options. */
export function resolveLogOptions(o: LogsOptions = {}): ResolvedLogOptions {
  if (typeof o !== 'object' || o === null) throw new ValidationError('options', 'must be an object');
  const tail = o.tail === undefined || o.tail === 'all' ? undefined : o.tail;
  if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw new ValidationError('tail', 'must be a non-negative integer or "all"');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new ValidationError('signal', 'must be an AbortSignal');
  const streams = new Set<LogStreamName>();
  if (o.stdout !== false) streams.add('stdout');
  if (o.stderr !== false) streams.add('stderr');
  return {
    follow: o.follow === true,
    sinceMs: o.since === undefined ? undefined : parseTimePoint(o.since, 'since'),
    untilMs: o.until === undefined ? undefined : parseTimePoint(o.until, 'until'),
    tail,
    timestamps: o.timestamps === true,
    streams,
    signal: o.signal,
  };
}
