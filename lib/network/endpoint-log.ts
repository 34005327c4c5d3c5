/**
 * The endpoint table as an append-only log, `networks/endpoints.log`, so that a join or a leave
 * costs the same with 10 or 250 containers on a network (issue 17 §2). The whole-file table it
 * replaces (`endpoints.json`) was read, rewritten and renamed under the networks lock three
 * times per join + leave: its size, not the change, set the cost.
 *
 * Format: one JSON value per line. The first line is the header `{"version":2,"bootId":…}`;
 * then `{"put":<EndpointRecord>}` (made or changed), `{"del":"<endpoint id>"}`,
 * `{"cursor":["<network id>",<n>]}`. A writer holds the networks lock, appends the lines of its
 * change in one `write(2)`, and compacts (temp + rename: a new inode) when dead lines outnumber
 * live ones. Each process keeps what it replayed and the offset it reached; a read replays only
 * the bytes appended since, and starts over when the file's inode changed (a compaction by
 * another process) or it got shorter.
 *
 * Readers without the lock may meet a line being appended: only complete lines (ending in a
 * newline) are replayed, the rest is read again next time. Like the table before it, the log is
 * not fsync'd (endpoints die with the boot); a log whose header names another boot is read as
 * holding no endpoint, with its cursors (allocation continues where it was).
 * @module
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { SystemError } from '../errors.js';
import type { EndpointRecord, EndpointTable } from './network-store.js';

/** Dead lines tolerated beyond the live ones before the log is rewritten. */
const COMPACT_SLACK = 256;

interface Replayed {
  ino: number;
  /** Bytes replayed: always just after a newline. */
  offset: number;
  /** Bytes after the last newline at the last sync: a line being written, or (lock held) a torn one. */
  tail: number;
  bootId: string;
  /** Endpoint id → its record as last put, frozen: handed out as is, never copied. */
  entries: Map<string, EndpointRecord>;
  cursors: Record<string, number>;
  lines: number;
}

function emptyReplay(ino: number, bootId: string): Replayed {
  return { ino, offset: 0, tail: 0, bootId, entries: new Map(), cursors: {}, lines: 0 };
}

type Line = { version: number; bootId: string } | { put: EndpointRecord } | { del: string } | { cursor: [string, number] };

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function apply(r: Replayed, line: Line): void {
  r.lines++;
  if ('put' in line) r.entries.set(line.put.id, deepFreeze(line.put));
  else if ('del' in line) r.entries.delete(line.del);
  else if ('cursor' in line) r.cursors[line.cursor[0]] = line.cursor[1];
  else if ('bootId' in line) r.bootId = line.bootId;
}

/** The log of one state directory, replayed incrementally. Synchronous: see the module comment. */
export class EndpointLog {
  readonly path: string;
  readonly #bootId: () => string;
  #replayed: Replayed | undefined;

  constructor(path: string, bootId: () => string) {
    this.path = path;
    this.#bootId = bootId;
  }

  /** Brings the replay up to the file's end (complete lines only). */
  #sync(): Replayed {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.#replayed = undefined;
      return emptyReplay(0, this.#bootId());
    }
    try {
      const st = fstatSync(fd);
      let r = this.#replayed;
      if (!r || r.ino !== st.ino || st.size < r.offset) r = emptyReplay(st.ino, '');
      if (st.size > r.offset) {
        const buf = Buffer.allocUnsafe(st.size - r.offset);
        let got = 0;
        while (got < buf.length) {
          const n = readSync(fd, buf, got, buf.length - got, r.offset + got);
          if (n === 0) break;
          got += n;
        }
        const end = buf.lastIndexOf(10, got - 1);
        if (end >= 0) {
          for (const text of buf.toString('utf8', 0, end).split('\n')) {
            if (text === '') continue;
            let line: Line;
            try {
              line = JSON.parse(text) as Line;
            } catch {
              continue; // only a crash mid-write leaves one; it held no lease worth keeping
            }
            apply(r, line);
          }
          r.offset += end + 1;
        }
      }
      r.tail = st.size - r.offset;
      this.#replayed = r;
      return r;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The table now. The records are the replay's own, frozen: a caller changes the table by
   * adding, removing or *replacing* records (and cursors) and hands it to {@link write}, which
   * then finds the changes by identity, without serializing the unchanged ones.
   */
  read(): EndpointTable {
    const r = this.#sync();
    const bootId = this.#bootId();
    if (r.bootId !== bootId) return { version: 1, bootId, cursors: { ...r.cursors }, endpoints: [] };
    return { version: 1, bootId, cursors: { ...r.cursors }, endpoints: [...r.entries.values()] };
  }

  /**
   * Makes the log hold `table`: appends what differs from the replay, or rewrites the log when
   * it is from another boot or mostly dead lines. The caller holds the networks lock.
   * @param rewrite writes the whole content atomically (temp + rename).
   */
  async write(table: EndpointTable, rewrite: (text: string) => Promise<void>): Promise<void> {
    const r = this.#sync();
    const bootId = this.#bootId();
    const next = new Map<string, EndpointRecord>();
    for (const e of table.endpoints) next.set(e.id, e);
    const out: string[] = [];
    // A record handed out by read() is frozen: the same object is the same record.
    for (const [id, e] of next) if (r.entries.get(id) !== e) out.push(JSON.stringify({ put: e }));
    for (const id of r.entries.keys()) if (!next.has(id)) out.push(JSON.stringify({ del: id }));
    for (const [net, n] of Object.entries(table.cursors)) if (r.cursors[net] !== n) out.push(JSON.stringify({ cursor: [net, n] }));
    // A tail seen with the lock held is a torn line (a failed write): appending after it would
    // glue the next line to it, so the log is rewritten instead.
    if (r.ino === 0 || r.tail > 0 || r.bootId !== bootId || r.lines + out.length > 2 * next.size + COMPACT_SLACK) {
      const lines = [JSON.stringify({ version: 2, bootId })];
      for (const [net, n] of Object.entries(table.cursors)) lines.push(JSON.stringify({ cursor: [net, n] }));
      for (const e of next.values()) lines.push(JSON.stringify({ put: e }));
      await rewrite(`${lines.join('\n')}\n`);
      this.#replayed = undefined; // a new inode: the next read replays it
      return;
    }
    if (out.length === 0) return;
    const text = Buffer.from(`${out.join('\n')}\n`);
    const fd = openSync(this.path, 'a');
    try {
      // One write(2) of a few hundred bytes to a local file: complete, as one piece, before
      // the lock is released. A short one (ENOSPC) is cut off again and is an error.
      const before = fstatSync(fd).size;
      let n = 0;
      try {
        n = writeSync(fd, text);
      } finally {
        if (n !== text.length) ftruncateSync(fd, before);
      }
      if (n !== text.length) throw new SystemError('EIO', `appending to the endpoint log ${this.path}: wrote ${n} of ${text.length} bytes`, { path: this.path, syscall: 'write' });
    } finally {
      closeSync(fd);
    }
    // Replay our own lines as another process would, keeping the offset exact.
    this.#sync();
  }

  /** The table of an older berth (`endpoints.json`), read once when no log exists yet. */
  static readLegacy(path: string): EndpointTable | undefined {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as EndpointTable;
    } catch {
      return undefined;
    }
  }
}
