/**
 * Collecting a container's output in Node without letting the container decide how much
 * memory Node spends on it: at most `maxBuffer` bytes per stream are kept; the rest is read
 * and dropped (so the container never blocks on a full pipe) and the result says
 * `truncated`.
 * @module
 */
import type { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';

/** Bytes kept per stream when the caller does not say: Node's `execFile` keeps 1 MiB; 16 MiB leaves room for real output. */
export const DEFAULT_MAX_BUFFER = 16 * 1024 * 1024;

/** What was kept of one stream. */
export interface BoundedOutput {
  data: Buffer;
  /** More than `maxBuffer` bytes arrived; the rest was discarded. */
  truncated: boolean;
}

/** Checks a `maxBuffer` option: a non-negative integer number of bytes, or `Infinity`. */
export function checkMaxBuffer(value: unknown, option = 'maxBuffer'): number {
  if (value === undefined) return DEFAULT_MAX_BUFFER;
  if (typeof value !== 'number' || !(value >= 0) || (!Number.isInteger(value) && value !== Infinity)) {
    throw new ValidationError(option, `must be a non-negative integer number of bytes (or Infinity), got ${String(value)}`);
  }
  return value;
}

/** Reads `stream` to its end, keeping at most `maxBuffer` bytes. Never rejects. */
export function collectBounded(stream: Readable | null, maxBuffer: number): Promise<BoundedOutput> {
  if (!stream) return Promise.resolve({ data: Buffer.alloc(0), truncated: false });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    stream.on('data', (chunk: Buffer) => {
      if (kept >= maxBuffer) {
        truncated = true;
        return;
      }
      const room = maxBuffer - kept;
      if (chunk.length > room) {
        // A copy, not a view: a view would pin the whole chunk.
        chunks.push(Buffer.from(chunk.subarray(0, room)));
        truncated = true;
        kept = maxBuffer;
      } else {
        chunks.push(chunk);
        kept += chunk.length;
      }
    });
    const done = () => resolve({ data: Buffer.concat(chunks, kept), truncated });
    // A tty master reports EIO once the last slave fd closes: that is its end of file.
    stream.on('error', done);
    stream.on('close', done);
  });
}
