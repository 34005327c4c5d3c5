/**
 * Writes that readers in any process see whole or not at all: a temp file on the same file
 * system, fsync, rename over the target, fsync of the directory.
 *
 * rename(2) is atomic, so a reader opens the old file or the new one, never a half-written
 * one. It is not durable by itself: fsync of the file before the rename keeps a power cut from
 * leaving the new name on empty or partial content, and fsync of the directory after it makes
 * the new entry itself survive (otherwise the old file can reappear after a reboot).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants as FS } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Matches the temp names {@link writeFileAtomic} picks by default; group 1 is the writer's pid,
 * so reconciliation can remove a dead writer's leftovers.
 */
export const TEMP_NAME = /^\..+\.tmp-(\d+)-[a-z0-9]+$/;

/** fsync of a directory: makes a rename or a new entry in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, FS.O_RDONLY | FS.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface AtomicWriteOptions {
  /** Permission bits of the new file. Default 0o600. */
  mode?: number;
  /**
   * fsync the file and its directory. Default true. False still gives readers the whole-or-
   * nothing view, without the disk flush: for state that does not outlive a reboot anyway.
   */
  durable?: boolean;
  /**
   * Where to write before the rename; must be on the target's file system. Default
   * `.<name>.tmp-<pid>-<random>` beside the target (see {@link TEMP_NAME}).
   */
  tempPath?: string;
}

/** Replaces `path` atomically with `data`. */
export async function writeFileAtomic(path: string, data: string | Buffer, options: AtomicWriteOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  // The default temp name carries the pid, so reconciliation can tell a dead writer's leftovers.
  const tmp = options.tempPath ?? join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, options.mode ?? 0o600);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (error) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  if (durable) await syncDir(dirname(path));
}

/** `JSON.stringify` (indented, trailing newline) + {@link writeFileAtomic}. */
export function writeJsonAtomic(path: string, value: unknown, options?: AtomicWriteOptions): Promise<void> {
  return writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, options);
}

/** Parses a JSON file; `undefined` when it (or its directory) does not exist. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
  return JSON.parse(text) as T;
}
