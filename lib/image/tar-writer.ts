/**
 * The few tar headers `save()` needs: regular files and directories, ustar, with a PAX record
 * when a name or size does not fit. Content is streamed by the caller between a header and
 * its padding, so multi-gigabyte layers never sit in memory.
 * @module
 */

const BLOCK = 512;
const MAX_OCTAL_SIZE = 0o77777777777; // 11 octal digits: 8 GiB - 1

export interface TarFileHeader {
  name: string;
  type: 'file' | 'dir';
  /** Content bytes that will follow (files). */
  size?: number;
  mode?: number;
  /** Seconds since the epoch. Default 0, so that the same images always give the same bytes. */
  mtime?: number;
}

function octal(value: number, len: number): string {
  return value.toString(8).padStart(len - 1, '0');
}

function ustar(name: string, flag: string, mode: number, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(`${octal(mode, 8)}\0`, 100, 'ascii');
  h.write(`${octal(0, 8)}\0`, 108, 'ascii');
  h.write(`${octal(0, 8)}\0`, 116, 'ascii');
  h.write(`${octal(size, 12)}\0`, 124, 'ascii');
  h.write(`${octal(mtime, 12)}\0`, 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(flag, 156, 'ascii');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${octal(sum, 7)}\0`, 148, 'ascii');
  return h;
}

function paxRecord(key: string, value: string): Buffer {
  const rest = ` ${key}=${value}\n`;
  const restLen = Buffer.byteLength(rest);
  let len = restLen + 1;
  while (String(len).length + restLen !== len) len = String(len).length + restLen;
  return Buffer.from(`${len}${rest}`);
}

/** Zero bytes that complete a member of `size` bytes to a whole block. */
export function tarPadding(size: number): Buffer {
  const rem = size % BLOCK;
  return rem === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rem);
}

/** The end-of-archive marker: two zero blocks. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

/** The header block(s) of one member: a PAX extended header first when needed. */
export function tarHeader(entry: TarFileHeader): Buffer {
  const size = entry.type === 'file' ? entry.size ?? 0 : 0;
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`tar member ${entry.name}: bad size ${size}`);
  const mode = entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644);
  const mtime = Math.max(0, Math.floor(entry.mtime ?? 0));
  const records: Buffer[] = [];
  let name = entry.name;
  if (Buffer.byteLength(name) > 100 || !/^[\x20-\x7e]*$/.test(name)) {
    records.push(paxRecord('path', name));
    name = `PaxHeaders/${Buffer.from(name).subarray(0, 80).toString('latin1').replace(/[^\x20-\x7e]/g, '_')}`;
  }
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
  const main = ustar(name, entry.type === 'dir' ? '5' : '0', mode, size > MAX_OCTAL_SIZE ? 0 : size, mtime);
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  return Buffer.concat([ustar('PaxHeader', 'x', 0o644, body.length, mtime), body, tarPadding(body.length), main]);
}
