/**
 * The spawn suites' shorthands: a busybox shell script as a spawned sandbox, and a stream read
 * to its end (a missing stream is empty).
 * @module
 */
import type { Readable } from 'node:stream';
import { spawn, type SpawnOptions } from '../../lib/index.js';
import { busyboxRootfs } from './busybox-rootfs.js';

/** `sh -c script` in the busybox rootfs, through `spawn()`. */
export const spawnSh = (script: string, options?: SpawnOptions) => spawn({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);

/** Everything `stream` yields, as text. */
export async function readAll(stream: Readable | null): Promise<string> {
  let out = '';
  for await (const chunk of stream ?? []) out += String(chunk);
  return out;
}
