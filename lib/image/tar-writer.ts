/**
 * berth's one tar writer: headers for every file type a root filesystem holds (files,
 * directories, symlinks, hard links, devices, fifos), with owners, modes, mtimes and extended
 * attributes. ustar where the fields fit, a PAX header (`path`, `linkpath`, `size`, `uid`, `gid`,
 * `SCHILY.xattr.*`) where they do not, as GNU tar and Go's archive/tar write them. `save()`,
 * `export()` and `commit()` all write through it. Content is streamed by the caller between a
 * header and its padding, so multi-gigabyte layers never sit in memory.
 * @module
 */

const BLOCK = 512;
const MAX_OCTAL_8 = 0o7777777; // 7 octal digits + NUL
const MAX_OCTAL_12 = 0o77777777777;

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  /** Relative path, no leading `/`; directories get their trailing `/` added. */
  name: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky. Default 0755 for directories, else 0644. */
  mode?: number;
  /** Default 0 (root). */
  uid?: number;
  gid?: number;
  /** Content bytes that follow (files only). */
  size?: number;
  /** Seconds since the epoch. Default 0, so that the same content always gives the same bytes. */
  mtime?: number;
  /** Symlink target, or the hard-link target's archive name. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Array<[string, Buffer]>;
}

const FLAGS: Record<TarEntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(value: number, len: number): string {
  return value.toString(8).padStart(len - 1, '0');
}

function paxRecord(key: string, value: Buffer): Buffer {
  const head = Buffer.from(` ${key}=`);
  const restLen = head.length + value.length + 1;
  let len = restLen + 1;
  while (String(len).length + restLen !== len) len = String(len).length + restLen;
  return Buffer.concat([Buffer.from(String(len)), head, value, Buffer.from('\n')]);
}

/** Splits a name into ustar's prefix (155) and name (100) fields, or undefined if impossible. */
function splitUstar(name: string): [prefix: string, name: string] | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return ['', name];
  if (bytes > 256) return undefined;
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return [prefix, rest];
  }
  return undefined;
}

function ustarBlock(fields: { name: string; prefix: string; mode: number; uid: number; gid: number; size: number; mtime: number; flag: string; linkname: string; devmajor: number; devminor: number }): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(fields.name, 0, 100, 'utf8');
  h.write(`${octal(fields.mode, 8)}\0`, 100, 'ascii');
  h.write(`${octal(fields.uid, 8)}\0`, 108, 'ascii');
  h.write(`${octal(fields.gid, 8)}\0`, 116, 'ascii');
  h.write(`${octal(fields.size, 12)}\0`, 124, 'ascii');
  h.write(`${octal(fields.mtime, 12)}\0`, 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(fields.flag, 156, 'ascii');
  h.write(fields.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'ascii');
  h.write(`${octal(fields.devmajor, 8)}\0`, 329, 'ascii');
  h.write(`${octal(fields.devminor, 8)}\0`, 337, 'ascii');
  h.write(fields.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${octal(sum, 7)}\0`, 148, 'ascii');
  return h;
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

/** The header block(s) of one member, a PAX extended header first when needed. */
export function tarHeader(e: TarEntry): Buffer {
  const name = e.type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
  const size = e.type === 'file' ? e.size ?? 0 : 0;
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`tar member ${name}: bad size ${size}`);
  const records: Buffer[] = [];
  let split = /^[\x20-\x7e]*$/.test(name) ? splitUstar(name) : undefined;
  if (!split) {
    records.push(paxRecord('path', Buffer.from(name)));
    split = ['', Buffer.from(name).subarray(0, 99).toString('latin1').replace(/[^\x20-\x7e]/g, '_')];
  }
  let linkname = e.linkname ?? '';
  if (Buffer.byteLength(linkname) > 100 || !/^[\x20-\x7e]*$/.test(linkname)) {
    records.push(paxRecord('linkpath', Buffer.from(linkname)));
    linkname = '';
  }
  let { uid = 0, gid = 0 } = e;
  if (uid > MAX_OCTAL_8) {
    records.push(paxRecord('uid', Buffer.from(String(uid))));
    uid = 0;
  }
  if (gid > MAX_OCTAL_8) {
    records.push(paxRecord('gid', Buffer.from(String(gid))));
    gid = 0;
  }
  let sizeField = size;
  if (size > MAX_OCTAL_12) {
    records.push(paxRecord('size', Buffer.from(String(size))));
    sizeField = 0;
  }
  for (const [key, value] of e.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  const mtime = Math.max(0, Math.min(Math.floor(e.mtime ?? 0), MAX_OCTAL_12));
  const main = ustarBlock({
    name: split[1],
    prefix: split[0],
    mode: (e.mode ?? (e.type === 'dir' ? 0o755 : 0o644)) & 0o7777,
    uid,
    gid,
    size: sizeField,
    mtime,
    flag: FLAGS[e.type],
    linkname,
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  });
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const paxName = `PaxHeaders.0/${split[1]}`.slice(0, 99);
  const pax = ustarBlock({ name: paxName, prefix: '', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime, flag: 'x', linkname: '', devmajor: 0, devminor: 0 });
  return Buffer.concat([pax, body, tarPadding(body.length), main]);
}
