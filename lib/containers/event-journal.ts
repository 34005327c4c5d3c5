/**
 * The events journal: `<root>/events.jsonl`, every container event of the state directory, one
 * JSON line each, written by every Node process (through its runtime's `EventHub`) and by every
 * detached container's monitor (src-native/monitor-journal.cc), and read back by
 * `rt.events({ since, until })` in any process, later or live.
 *
 * The rules both writers follow, so that no lock is held for a record:
 * - one record is one `write(2)` on an `O_APPEND` descriptor: records never interleave;
 * - past {@link JOURNAL_MAX_BYTES} the writer that notices renames the file to
 *   `events.jsonl.1` (replacing the older one) under flock of `events.jsonl.lock`, after
 *   checking that the file it found full is still the current one; so the journal holds at
 *   most two files, ~2 MiB, and the oldest events go first;
 * - a reader skips a line that does not parse (a record torn by a crash mid-write, a full
 *   disk) and waits for a line without its newline to be completed.
 *
 * Each record carries `src`, its writer (`node-<pid>-<random>` per runtime, `monitor-<pid>`),
 * so that a live subscription delivers the records of other writers from the file and its own
 * runtime's from memory, each once.
 * @module
 */
import { closeSync, constants as FS, fstatSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../errors.js';
import { native } from '../native.js';
import type { ContainerAction, RuntimeEvent } from './events.js';

export const JOURNAL_FILE = 'events.jsonl';
/** Size at which the journal rotates (the monitor's kJournalMaxBytes is the same). */
export const JOURNAL_MAX_BYTES = 1 << 20;

export function journalPath(root: string): string {
  return join(root, JOURNAL_FILE);
}

/** A position in the current journal file: its inode and a byte offset. */
export interface JournalPosition {
  ino: number;
  offset: number;
}

/** A record as stored. */
export interface JournalRecord extends RuntimeEvent {
  src?: string;
}

const ACTIONS: ReadonlySet<string> = new Set<ContainerAction>(['create', 'start', 'exit', 'oom', 'pause', 'unpause', 'restart', 'health_status', 'rename', 'destroy']);

/** One line back into an event, or undefined when it is torn or not ours. */
export function parseRecord(line: string): JournalRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Partial<JournalRecord>;
  if (r.type !== 'container' || typeof r.action !== 'string' || !ACTIONS.has(r.action) || typeof r.id !== 'string' || typeof r.name !== 'string') return undefined;
  if (typeof r.time !== 'string' || Number.isNaN(Date.parse(r.time))) return undefined;
  const attributes: Record<string, string> = {};
  if (typeof r.attributes === 'object' && r.attributes !== null) {
    for (const [k, val] of Object.entries(r.attributes)) if (typeof val === 'string') attributes[k] = val;
  }
  // Node prints milliseconds; the monitor, nanoseconds: one form for every reader.
  const time = new Date(Date.parse(r.time)).toISOString();
  return { type: 'container', action: r.action, id: r.id, name: r.name, time, attributes, ...(typeof r.src === 'string' ? { src: r.src } : {}) };
}

/** Complete lines of `text` as records; `rest` is the unfinished last line (no newline yet). */
export function parseChunk(text: string): { records: JournalRecord[]; rest: string } {
  const records: JournalRecord[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break;
    const r = parseRecord(text.slice(start, nl));
    if (r) records.push(r);
    start = nl + 1;
  }
  return { records, rest: text.slice(start) };
}

/** The event without its writer tag: the public shape. */
export function toEvent(r: JournalRecord): RuntimeEvent {
  const { src: _src, ...e } = r;
  return e;
}

function readRange(path: string, from: number, to?: number): { text: string; ino: number; end: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, FS.O_RDONLY);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const end = Math.min(to ?? st.size, st.size);
    if (end <= from) return { text: '', ino: st.ino, end: from > end ? end : from };
    const buf = Buffer.alloc(end - from);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, from + n);
      if (r === 0) break;
      n += r;
    }
    return { text: buf.toString('utf8', 0, n), ino: st.ino, end: from + n };
  } finally {
    closeSync(fd);
  }
}

/**
 * Every record in the journal, oldest file first, up to `upTo` in the current file (a live
 * tail's position, so that replay and tail meet without a gap or a repeat); and where the
 * current file's complete lines end.
 */
export function readJournal(path: string, upTo?: JournalPosition): { records: JournalRecord[]; position: JournalPosition } {
  const records: JournalRecord[] = [];
  const old = readRange(`${path}.1`, 0);
  if (old) records.push(...parseChunk(old.text).records);
  const cur = readRange(path, 0, upTo && upTo.ino === inodeOf(path) ? upTo.offset : undefined);
  if (!cur) return { records, position: { ino: 0, offset: 0 } };
  const { records: mine, rest } = parseChunk(cur.text);
  records.push(...mine);
  return { records, position: { ino: cur.ino, offset: cur.end - Buffer.byteLength(rest) } };
}

function inodeOf(path: string): number {
  try {
    return statSync(path).ino;
  } catch {
    return 0;
  }
}

/** Appends one record (one write on an O_APPEND descriptor), rotating a full journal first. */
export function appendRecord(path: string, record: JournalRecord): void {
  const line = Buffer.from(`${JSON.stringify(record)}\n`);
  let fd = openSync(path, FS.O_WRONLY | FS.O_APPEND | FS.O_CREAT, 0o640);
  try {
    if (fstatSync(fd).size >= JOURNAL_MAX_BYTES && rotate(path, fstatSync(fd).ino)) {
      closeSync(fd);
      fd = openSync(path, FS.O_WRONLY | FS.O_APPEND | FS.O_CREAT, 0o640);
    }
    writeSync(fd, line);
  } finally {
    closeSync(fd);
  }
}

/**
 * Renames the full file aside unless another writer did already. The lock is only tried:
 * whoever holds it is rotating this very file, and the record can go to whichever file is
 * current. Returns true when the current file changed.
 */
function rotate(path: string, fullIno: number): boolean {
  const lockFd = openSync(`${path}.lock`, FS.O_RDWR | FS.O_CREAT, 0o600);
  try {
    if (!native().fsFlock(lockFd, 'exclusive')) return inodeOf(path) !== fullIno;
    const st = statSync(path, { throwIfNoEntry: false });
    if (st && st.ino === fullIno && st.size >= JOURNAL_MAX_BYTES) renameSync(path, `${path}.1`);
    return true;
  } finally {
    closeSync(lockFd);
  }
}

/**
 * Follows the journal from a position: each `poll()` reads what was appended since, across a
 * rotation (the rest of the renamed file first), and hands complete records to `onRecord`.
 */
export class JournalTail {
  readonly path: string;
  #pos: JournalPosition;
  #rest = '';
  readonly #onRecord: (r: JournalRecord) => void;

  constructor(path: string, from: JournalPosition, onRecord: (r: JournalRecord) => void) {
    this.path = path;
    this.#pos = from;
    this.#onRecord = onRecord;
  }

  get position(): JournalPosition {
    return { ...this.#pos };
  }

  poll(): void {
    const ino = inodeOf(this.path);
    if (ino === 0) return;
    if (ino !== this.#pos.ino) {
      // Rotated: finish the file we were reading (now `.1`, if it is), then the new one from 0.
      if (this.#pos.ino !== 0 && inodeOf(`${this.path}.1`) === this.#pos.ino) this.#consume(`${this.path}.1`);
      this.#pos = { ino, offset: 0 };
      this.#rest = '';
    }
    this.#consume(this.path);
  }

  #consume(path: string): void {
    const got = readRange(path, this.#pos.offset);
    if (!got || got.text === '') return;
    this.#pos = { ino: this.#pos.ino, offset: got.end };
    const { records, rest } = parseChunk(this.#rest + got.text);
    this.#rest = rest;
    for (const r of records) this.#onRecord(r);
  }
}

/**
 * Docker's `since`/`until`: a Date, an RFC 3339 string, or unix seconds (a number, or a
 * string of digits with an optional fraction). Returns milliseconds since the epoch.
 * @throws ValidationError naming the option.
 */
export function parseEventTime(value: unknown, option: 'since' | 'until'): number {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new ValidationError(option, 'is an invalid Date');
    return value.getTime();
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new ValidationError(option, `must be non-negative unix seconds, got ${value}`);
    return value * 1000;
  }
  if (typeof value === 'string') {
    if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
    const ms = /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
    if (!Number.isNaN(ms)) return ms;
  }
  throw new ValidationError(option, `must be a Date, an RFC 3339 time ("2026-12-02T11:00:00Z") or unix seconds, got ${JSON.stringify(value)}`);
}
