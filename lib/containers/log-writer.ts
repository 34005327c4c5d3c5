/**
 * Writes a container's stdout/stderr to `container.log` in Docker's `json-file` format (one
 * JSON object per line: `{"log":"…\n","stream":"stdout","time":"…Z"}`, lines over 16 KiB
 * split into several records of which only the last ends with `\n`), rotating by size into
 * `container.log.1` … `.<maxFiles-1>`.
 *
 * Used by the process that owns a `lifetime: 'process'` container; a detached container's
 * monitor writes the same format. Writes are synchronous appends so that a reader in any
 * process sees each record whole as soon as it exists.
 * @module
 */
import { closeSync, constants as FS, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';

export type LogStreamName = 'stdout' | 'stderr';

/** Docker splits longer lines into several records. */
export const MAX_RECORD_BYTES = 16 * 1024;

const hrBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
let lastNs = 0n;

/** Now as RFC 3339 with nanoseconds (microsecond resolution), never going backwards. */
export function logTimestamp(): string {
  let ns = hrBase + process.hrtime.bigint();
  if (ns <= lastNs) ns = lastNs + 1n;
  lastNs = ns;
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // 2026-11-22T11:46:22.123Z
  return `${iso.slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

/** One record, serialized. */
export function encodeRecord(log: string, stream: LogStreamName, time: string): string {
  return `${JSON.stringify({ log, stream, time })}\n`;
}

/** Where to cut `buf` at or before `max` bytes without splitting a UTF-8 sequence. */
function utf8Cut(buf: Buffer, max: number): number {
  if (buf.length <= max) return buf.length;
  let cut = max;
  // Back off over continuation bytes (10xxxxxx) to the start of a character.
  while (cut > 0 && (buf[cut]! & 0xc0) === 0x80) cut--;
  return cut === 0 ? max : cut;
}

export interface LogWriterOptions {
  path: string;
  /** Rotate when the file would grow beyond this. */
  maxSize: number;
  /** Files kept, the current one included. */
  maxFiles: number;
}

type Tap = (stream: LogStreamName, chunk: Buffer) => void;

export class LogWriter {
  readonly path: string;
  readonly #maxSize: number;
  readonly #maxFiles: number;
  #fd: number;
  #size: number;
  #pending: Record<LogStreamName, Buffer[]> = { stdout: [], stderr: [] };
  #taps = new Set<Tap>();
  #open = 0;
  #drained: Promise<void>;
  #resolveDrained!: () => void;
  #closed = false;

  constructor(options: LogWriterOptions) {
    this.path = options.path;
    this.#maxSize = options.maxSize;
    this.#maxFiles = options.maxFiles;
    this.#fd = openSync(this.path, FS.O_WRONLY | FS.O_APPEND | FS.O_CREAT, 0o640);
    this.#size = fstatSync(this.#fd).size;
    this.#drained = new Promise((resolve) => (this.#resolveDrained = resolve));
  }

  /** Consumes `stream` until it ends. With no stream attached, `drained` resolves at once. */
  consume(stream: Readable | null, name: LogStreamName): void {
    if (!stream) return;
    this.#open++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.#flushPartial(name);
      if (--this.#open === 0) this.#resolveDrained();
    };
    stream.on('data', (chunk: Buffer | string) => this.write(name, typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    stream.on('end', finish);
    stream.on('close', finish);
    // A tty master reports EIO when the last slave fd closes: that is its end of file.
    stream.on('error', finish);
  }

  /** Resolves once every consumed stream has ended (bounded by the caller). */
  get drained(): Promise<void> {
    return this.#open === 0 ? Promise.resolve() : this.#drained;
  }

  /** Live copies of the raw output, for attach(). Returns the unsubscribe function. */
  tap(listener: Tap): () => void {
    this.#taps.add(listener);
    return () => this.#taps.delete(listener);
  }

  /** Appends output of `name`: whole lines now, a trailing partial line once it completes. */
  write(name: LogStreamName, chunk: Buffer): void {
    for (const tap of this.#taps) {
      try {
        tap(name, chunk);
      } catch {
        // an attach consumer's failure must not stop the log
      }
    }
    if (this.#closed) return;
    const pending = this.#pending[name];
    let data = pending.length > 0 ? Buffer.concat([...pending, chunk]) : chunk;
    pending.length = 0;
    const out: string[] = [];
    for (;;) {
      const nl = data.indexOf(0x0a);
      const end = nl < 0 ? -1 : nl + 1;
      if (end < 0 || end > MAX_RECORD_BYTES) {
        if (data.length < MAX_RECORD_BYTES) break;
        const cut = utf8Cut(data, MAX_RECORD_BYTES);
        out.push(encodeRecord(data.subarray(0, cut).toString('utf8'), name, logTimestamp()));
        data = data.subarray(cut);
        continue;
      }
      out.push(encodeRecord(data.subarray(0, end).toString('utf8'), name, logTimestamp()));
      data = data.subarray(end);
    }
    if (data.length > 0) pending.push(Buffer.from(data));
    if (out.length > 0) this.#append(out);
  }

  #flushPartial(name: LogStreamName): void {
    const pending = this.#pending[name];
    if (pending.length === 0 || this.#closed) return;
    const data = Buffer.concat(pending);
    pending.length = 0;
    if (data.length > 0) this.#append([encodeRecord(data.toString('utf8'), name, logTimestamp())]);
  }

  /** Writes whole records, one write(2) per file, rotating between records as the size requires. */
  #append(records: string[]): void {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = () => {
      if (batchBytes === 0) return;
      writeSync(this.#fd, batch.length === 1 ? batch[0]! : Buffer.concat(batch));
      this.#size += batchBytes;
      batch = [];
      batchBytes = 0;
    };
    for (const r of records) {
      const buf = Buffer.from(r);
      if (this.#size + batchBytes > 0 && this.#size + batchBytes + buf.length > this.#maxSize) {
        flush();
        this.#rotate();
      }
      batch.push(buf);
      batchBytes += buf.length;
    }
    flush();
  }

  #rotate(): void {
    closeSync(this.#fd);
    if (this.#maxFiles <= 1) {
      rmSync(this.path, { force: true });
    } else {
      for (let i = this.#maxFiles - 1; i >= 1; i--) {
        const from = i === 1 ? this.path : `${this.path}.${i - 1}`;
        try {
          renameSync(from, `${this.path}.${i}`);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      }
    }
    this.#fd = openSync(this.path, FS.O_WRONLY | FS.O_APPEND | FS.O_CREAT, 0o640);
    this.#size = 0;
  }

  /** Writes what is pending and closes the file. Later output is only passed to taps. */
  close(): void {
    if (this.#closed) return;
    this.#flushPartial('stdout');
    this.#flushPartial('stderr');
    this.#closed = true;
    closeSync(this.#fd);
  }
}
