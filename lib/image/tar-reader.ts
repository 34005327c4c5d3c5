/**
 * A streaming tar parser: ustar, PAX (per-entry and global) and GNU long names, with
 * `SCHILY.xattr.*` extended attributes. Push-based and synchronous so the unpacker can write
 * each chunk straight to its file descriptor without intermediate buffering.
 *
 * Everything in a header is hostile: numbers are bounds-checked, metadata blocks (PAX, long
 * names) are size-limited, checksums are verified.
 * @module
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** Name exactly as stored (after PAX/GNU overrides), not yet normalised. */
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; fractional from PAX. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Array<[string, Buffer]>;
}

export interface TarSink {
  entry(header: TarHeader): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
}

/** Malformed archive; the unpacker wraps it with the layer digest. */
export class TarFormatError extends Error {}

const BLOCK = 512;
const MAX_META_SIZE = 1024 * 1024;

type State = 'header' | 'body' | 'padding' | 'meta' | 'end';

function cstring(buf: Buffer, start: number, len: number): string {
  let end = start;
  const stop = start + len;
  while (end < stop && buf[end] !== 0) end++;
  return buf.toString('utf8', start, end);
}

function parseNumeric(buf: Buffer, start: number, len: number, field: string): number {
  const first = buf[start]!;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement, first byte's high bit is the marker.
    if (first === 0xff) throw new TarFormatError(`negative base-256 ${field}`);
    let value = first & 0x7f;
    for (let i = 1; i < len; i++) {
      value = value * 256 + buf[start + i]!;
      if (value > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`${field} too large`);
    }
    return value;
  }
  let s = start;
  const stop = start + len;
  while (s < stop && (buf[s] === 0x20 || buf[s] === 0)) s++;
  let value = 0;
  let digits = 0;
  for (; s < stop; s++) {
    const c = buf[s]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw new TarFormatError(`${field} is not an octal number`);
    value = value * 8 + (c - 0x30);
    digits++;
  }
  if (value > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`${field} too large`);
  return digits === 0 ? 0 : value;
}

function verifyChecksum(h: Buffer): boolean {
  const stored = parseNumeric(h, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

interface PaxRecords {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  xattrs: Array<[string, Buffer]>;
}

function parsePax(body: Buffer, into: PaxRecords): void {
  let off = 0;
  while (off < body.length) {
    if (body[off] === 0) break;
    const space = body.indexOf(0x20, off);
    if (space === -1) throw new TarFormatError('PAX record without length');
    const lenStr = body.toString('ascii', off, space);
    if (!/^[0-9]+$/.test(lenStr)) throw new TarFormatError('PAX record length is not a number');
    const len = Number(lenStr);
    const end = off + len;
    if (len <= space - off + 1 || end > body.length || body[end - 1] !== 0x0a) throw new TarFormatError('PAX record length is wrong');
    const eq = body.indexOf(0x3d, space + 1);
    if (eq === -1 || eq >= end) throw new TarFormatError('PAX record without "="');
    const key = body.toString('utf8', space + 1, eq);
    const raw = body.subarray(eq + 1, end - 1);
    const value = () => raw.toString('utf8');
    const int = (field: string) => {
      const v = value();
      if (!/^[0-9]+$/.test(v) || Number(v) > Number.MAX_SAFE_INTEGER) throw new TarFormatError(`PAX ${field} ${JSON.stringify(v)} is not a valid number`);
      return Number(v);
    };
    switch (key) {
      case 'path': into.path = value(); break;
      case 'linkpath': into.linkpath = value(); break;
      case 'size': into.size = int('size'); break;
      case 'uid': into.uid = int('uid'); break;
      case 'gid': into.gid = int('gid'); break;
      case 'mtime': {
        const v = value();
        if (!/^-?[0-9]+(\.[0-9]+)?$/.test(v)) throw new TarFormatError(`PAX mtime ${JSON.stringify(v)} is not a number`);
        into.mtime = Number(v);
        break;
      }
      default:
        if (key.startsWith('SCHILY.xattr.')) {
          const name = key.slice('SCHILY.xattr.'.length);
          into.xattrs = into.xattrs.filter(([n]) => n !== name);
          into.xattrs.push([name, Buffer.from(raw)]);
        } else if (key.startsWith('LIBARCHIVE.xattr.')) {
          const name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
          into.xattrs = into.xattrs.filter(([n]) => n !== name);
          into.xattrs.push([name, Buffer.from(value(), 'base64')]);
        }
    }
    off = end;
  }
}

/**
 * Feed decompressed bytes with `write`; call `end` when the stream ends. Entries go to `sink`.
 * After the end-of-archive marker the rest of the stream is ignored (the caller still hashes
 * it: a layer's diff id covers every byte).
 */
export class TarReader {
  private state: State = 'header';
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private remaining = 0;
  private padding = 0;
  private metaType = '';
  private metaChunks: Buffer[] = [];
  private pax: PaxRecords = { xattrs: [] };
  private globalPax: PaxRecords = { xattrs: [] };
  private longName: string | undefined;
  private longLink: string | undefined;
  private sawEnd = false;

  constructor(private readonly sink: TarSink) {}

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      switch (this.state) {
        case 'end':
          return;
        case 'header': {
          const need = BLOCK - this.pendingLength;
          const take = Math.min(need, chunk.length - off);
          this.pending.push(chunk.subarray(off, off + take));
          this.pendingLength += take;
          off += take;
          if (this.pendingLength === BLOCK) {
            const block = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
            this.pending = [];
            this.pendingLength = 0;
            this.header(block);
          }
          break;
        }
        case 'body':
        case 'meta': {
          const take = Math.min(this.remaining, chunk.length - off);
          const piece = chunk.subarray(off, off + take);
          off += take;
          this.remaining -= take;
          if (this.state === 'body') this.sink.data(piece);
          else this.metaChunks.push(piece);
          if (this.remaining === 0) this.finishBody();
          break;
        }
        case 'padding': {
          const take = Math.min(this.padding, chunk.length - off);
          off += take;
          this.padding -= take;
          if (this.padding === 0) this.state = 'header';
          break;
        }
      }
    }
  }

  /** Checks that the archive did not stop in the middle of an entry. */
  end(): void {
    // An archive whose last entry is complete but whose block padding (and end marker) is
    // missing: umoci writes such layers, and Go's archive/tar (skopeo, containerd, Docker)
    // reads them. Every byte of every entry arrived, so nothing is lost by accepting it.
    const onlyPaddingMissing = this.state === 'padding';
    if (this.state === 'end' || onlyPaddingMissing || (this.state === 'header' && this.pendingLength === 0)) {
      if (this.longName !== undefined || this.longLink !== undefined || this.pax.path !== undefined) {
        throw new TarFormatError('archive ends after a long-name or PAX header without its entry');
      }
      return;
    }
    throw new TarFormatError('archive is truncated in the middle of an entry');
  }

  /** Whether the two-zero-block end marker (or at least one zero block) was seen. */
  get ended(): boolean {
    return this.sawEnd;
  }

  private header(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.sawEnd = true;
      this.state = 'end';
      return;
    }
    if (!verifyChecksum(h)) throw new TarFormatError('header checksum mismatch (not a tar archive, or corrupt)');
    const flag = h[156] === 0 ? '0' : String.fromCharCode(h[156]!);
    const size = parseNumeric(h, 124, 12, 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META_SIZE) throw new TarFormatError(`metadata header of ${size} bytes is larger than ${MAX_META_SIZE}`);
      this.metaType = flag;
      this.metaChunks = [];
      this.startBody(size, 'meta');
      return;
    }
    const magic = h.toString('latin1', 257, 263);
    let name = cstring(h, 0, 100);
    if (magic === 'ustar\0') {
      const prefix = cstring(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const g = this.globalPax;
    const p = this.pax;
    if (this.longName !== undefined) name = this.longName;
    if (p.path !== undefined) name = p.path;
    else if (g.path !== undefined && this.longName === undefined) name = g.path;
    let linkname = cstring(h, 157, 100);
    if (this.longLink !== undefined) linkname = this.longLink;
    if (p.linkpath !== undefined) linkname = p.linkpath;

    let type: TarEntryType;
    switch (flag) {
      case '0': case '7': type = 'file'; break;
      case '1': type = 'link'; break;
      case '2': type = 'symlink'; break;
      case '3': type = 'char'; break;
      case '4': type = 'block'; break;
      case '5': type = 'dir'; break;
      case '6': type = 'fifo'; break;
      default:
        throw new TarFormatError(`entry ${JSON.stringify(name)} has unsupported type ${JSON.stringify(flag)}${flag === 'S' ? ' (GNU sparse file)' : ''}`);
    }
    // Only regular files carry data; a non-zero size elsewhere is skipped, never written.
    const entrySize = p.size ?? g.size ?? size;
    const xattrs = [...g.xattrs.filter(([n]) => !p.xattrs.some(([m]) => m === n)), ...p.xattrs];
    const header: TarHeader = {
      name,
      type,
      mode: parseNumeric(h, 100, 8, 'mode') & 0o7777,
      uid: p.uid ?? g.uid ?? parseNumeric(h, 108, 8, 'uid'),
      gid: p.gid ?? g.gid ?? parseNumeric(h, 116, 8, 'gid'),
      size: type === 'file' ? entrySize : 0,
      mtime: p.mtime ?? g.mtime ?? parseNumeric(h, 136, 12, 'mtime'),
      linkname,
      devmajor: type === 'char' || type === 'block' ? parseNumeric(h, 329, 8, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? parseNumeric(h, 337, 8, 'devminor') : 0,
      xattrs,
    };
    this.pax = { xattrs: [] };
    this.longName = undefined;
    this.longLink = undefined;
    this.sink.entry(header);
    if (type === 'file') {
      this.startBody(entrySize, 'body');
    } else {
      // Header-only types carry no data whatever their size field says (as GNU tar and Go's
      // archive/tar read them).
      this.sink.entryEnd();
    }
  }

  private startBody(size: number, state: 'body' | 'meta'): void {
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    this.state = state;
    if (size === 0) this.finishBody();
  }

  private finishBody(): void {
    if (this.state === 'body') {
      this.sink.entryEnd();
    } else {
      const body = Buffer.concat(this.metaChunks);
      this.metaChunks = [];
      switch (this.metaType) {
        case 'x': parsePax(body, this.pax); break;
        case 'g': parsePax(body, this.globalPax); break;
        case 'L': this.longName = cstring(body, 0, body.length); break;
        case 'K': this.longLink = cstring(body, 0, body.length); break;
      }
    }
    this.state = this.padding > 0 ? 'padding' : 'header';
  }
}
