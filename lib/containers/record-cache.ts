/**
 * An in-process cache of each container's `config.json`, `state.json` and `run.json`, checked
 * against one `stat` of the container's directory: what lets `list()` with a thousand
 * containers cost a thousand stats instead of three thousand file reads (issue 17 §2).
 *
 * The rule it depends on (`docs/design/containers.md`, "Reading many containers"): every file
 * of a container directory that a reader caches is replaced by rename into that directory, by
 * every writer — Node's `writeJsonAtomic`, the monitor's `WriteFileAtomic`
 * (src-native/monitor-io.cc), the start that unlinks the previous `run.json`. A rename or an
 * unlink in a directory sets the directory's mtime and ctime, so a directory whose inode,
 * mtime and ctime are unchanged holds the files it held, whichever process wrote them.
 *
 * Timestamps have a granularity (a kernel tick, a second on some file systems): two writes in
 * one tick leave one stamp. As git's index does with "racily clean" entries, a read is trusted
 * only when the directory's stamp was already older than {@link SETTLE_MS} when the read began;
 * a later write then stamps a later time, so it cannot leave the stamp unchanged. A container
 * changed less than that ago is simply read again.
 * @module
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { isActive, type ContainerRecord, type ContainerState } from './container-record.js';
import { RUN_FILE, asRun, type MonitorRun } from './monitor-run.js';

/** How old a directory's stamp must be, when a read begins, for that read to be reused. */
export const SETTLE_MS = 2000;

/** What identifies one version of a container directory's entries. */
export interface DirStamp {
  ino: number;
  /**
   * Milliseconds as a double: a fraction of a microsecond at today's dates, fine enough to tell
   * a change, and cheaper to get than bigint nanoseconds (1,000 stats per `list()`).
   */
  mtimeMs: number;
  ctimeMs: number;
}

/** A container's files as read together. `run` is read only for an active detached container. */
export interface ContainerFiles {
  readonly record: ContainerRecord;
  readonly state: ContainerState;
  readonly run: MonitorRun | undefined;
}

interface Entry {
  stamp: DirStamp;
  /** Wall clock (ms) taken before the stat that gave `stamp`. */
  readAtMs: number;
  files: ContainerFiles;
}

export function stampOf(st: Stats): DirStamp {
  return { ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

export function sameStamp(a: DirStamp, b: DirStamp): boolean {
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/**
 * Whether files read after a stat that gave `stamp`, begun at `readAtMs`, stay current for as
 * long as the directory keeps that stamp: any later change stamps a time of at least
 * `readAtMs` minus one tick, which cannot equal a stamp older than {@link SETTLE_MS}.
 */
export function settled(stamp: DirStamp, readAtMs: number, settleMs = SETTLE_MS): boolean {
  const limit = readAtMs - settleMs;
  return stamp.mtimeMs <= limit && stamp.ctimeMs <= limit;
}

function readJsonSync<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
  return JSON.parse(text) as T;
}

/** As `readRun`: a run.json that cannot be read counts as none (a monitor of an older berth). */
function readRunSync(path: string): MonitorRun | undefined {
  try {
    return asRun(readJsonSync<unknown>(path));
  } catch {
    return undefined;
  }
}

/**
 * Synchronous on purpose: a stat or a read of a small local file is a few microseconds, where
 * the same call through libuv's thread pool costs a round trip that, on a loaded host, is a
 * hundred times that. Callers bound how many they do per turn of the event loop.
 */
export class ContainerFilesCache {
  readonly #containersDir: string;
  readonly #settleMs: number;
  readonly #entries = new Map<string, Entry>();

  /** @param settleMs {@link SETTLE_MS}; smaller only where a test controls every writer's clock. */
  constructor(containersDir: string, settleMs = SETTLE_MS) {
    this.#containersDir = containersDir;
    this.#settleMs = settleMs;
  }

  /** The files of container `id` as they are now, or undefined when it is gone (or half made). */
  read(id: string): ContainerFiles | undefined {
    const dir = join(this.#containersDir, id);
    const readAtMs = Date.now();
    const st = statSync(dir, { throwIfNoEntry: false });
    if (st === undefined) {
      this.#entries.delete(id);
      return undefined;
    }
    const stamp = stampOf(st);
    const cached = this.#entries.get(id);
    if (cached && sameStamp(cached.stamp, stamp) && settled(cached.stamp, cached.readAtMs, this.#settleMs)) return cached.files;
    const record = readJsonSync<ContainerRecord>(join(dir, 'config.json'));
    const state = readJsonSync<ContainerState>(join(dir, 'state.json'));
    if (!record || !state) {
      this.#entries.delete(id);
      return undefined;
    }
    const run = record.lifetime === 'detached' && isActive(state.status) ? readRunSync(join(dir, RUN_FILE)) : undefined;
    const files: ContainerFiles = { record, state, run };
    this.#entries.set(id, { stamp, readAtMs, files });
    return files;
  }

  forget(id: string): void {
    this.#entries.delete(id);
  }

  /** Drops the entries of containers not in `ids` (removed by any process). */
  retain(ids: ReadonlySet<string>): void {
    for (const id of this.#entries.keys()) if (!ids.has(id)) this.#entries.delete(id);
  }

  get size(): number {
    return this.#entries.size;
  }
}
