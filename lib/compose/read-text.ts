/**
 * Reading a compose or env file without ever blocking: opened non-blocking (a FIFO or a
 * device named as a compose file would otherwise hold a libuv thread until a writer appears),
 * only regular files, at most {@link MAX_FILE_BYTES}.
 * @module
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ValidationError } from '../errors.js';

/** Far above any real compose or env file, far below what would strain the heap. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;

/**
 * The file's text, or `undefined` when it does not exist and `missingOk`.
 * @throws ValidationError naming `option` and the path: unreadable, not a regular file, too large.
 */
export async function readTextFile(path: string, option: string, missingOk = false): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    if (missingOk && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ValidationError(option, `cannot read ${path}: ${(error as Error).message}`, { path, cause: error });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new ValidationError(option, `${path} is not a regular file`, { path });
    if (st.size > MAX_FILE_BYTES) throw new ValidationError(option, `${path} is larger than ${MAX_FILE_BYTES} bytes`, { path });
    const buf = Buffer.alloc(Math.min(st.size + 1, MAX_FILE_BYTES + 1));
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_FILE_BYTES) throw new ValidationError(option, `${path} is larger than ${MAX_FILE_BYTES} bytes`, { path });
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}
