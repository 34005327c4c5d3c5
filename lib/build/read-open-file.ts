/**
 * Reading a whole small file the build opened through the confined view of a stage's layers
 * (Dockerfile, .dockerignore, /etc/passwd): the callers bound the size first, from fstat.
 * @module
 */
import { readSync } from 'node:fs';

/** Up to `size` bytes of the open file `fd` from its start; a file that shrank meanwhile ends early. */
export function readOpenFile(fd: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, buf, done, size - done, done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}
