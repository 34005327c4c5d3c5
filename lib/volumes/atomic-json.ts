/**
 * Volume metadata files that readers in any process see whole or not at all: temp file in the
 * same directory, fsync, rename, fsync of the directory (so the rename survives a power cut).
 * @module
 */
import { constants as FS } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** fsync of a directory: makes a rename or a new entry in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, FS.O_RDONLY | FS.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces `path` atomically with the JSON of `value`. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  const fh = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL, 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 2)}\n`);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (error) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  await syncDir(dirname(path));
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
