/**
 * A small tar writer for crafting hostile and unusual archives in tests (ustar headers, PAX
 * records, GNU long names). Deliberately independent of lib/image/tar-reader.ts.
 */
export interface TarEntrySpec {
  name: string;
  type?: 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'raw';
  /** Raw typeflag character when type is 'raw'. */
  flag?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  content?: Buffer | string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string | Buffer>;
  /** Write the name with a GNU 'L' header instead of PAX when it is long. */
  gnuLongName?: boolean;
}

const FLAGS: Record<string, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(value: number, len: number): string {
  return value.toString(8).padStart(len - 1, '0') + '\0';
}

function header(fields: { name: string; mode: number; uid: number; gid: number; size: number; mtime: number; flag: string; linkname: string; devmajor: number; devminor: number }): Buffer {
  const h = Buffer.alloc(512);
  h.write(fields.name, 0, 100, 'utf8');
  h.write(octal(fields.mode, 8), 100, 'ascii');
  h.write(octal(fields.uid, 8), 108, 'ascii');
  h.write(octal(fields.gid, 8), 116, 'ascii');
  h.write(octal(fields.size, 12), 124, 'ascii');
  h.write(octal(fields.mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(fields.flag, 156, 'ascii');
  h.write(fields.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'ascii');
  h.write(octal(fields.devmajor, 8), 329, 'ascii');
  h.write(octal(fields.devminor, 8), 337, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

function pad(buf: Buffer): Buffer[] {
  const rem = buf.length % 512;
  return rem === 0 ? [buf] : [buf, Buffer.alloc(512 - rem)];
}

function paxBody(records: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(records)) {
    const v = typeof value === 'string' ? Buffer.from(value) : value;
    const rest = Buffer.concat([Buffer.from(` ${key}=`), v, Buffer.from('\n')]);
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
    parts.push(Buffer.concat([Buffer.from(String(len)), rest]));
  }
  return Buffer.concat(parts);
}

export function buildTar(entries: TarEntrySpec[], { end = true }: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
    const pax: Record<string, string | Buffer> = { ...(e.pax ?? {}) };
    let name = e.name;
    let linkname = e.linkname ?? '';
    if (Buffer.byteLength(name) > 100) {
      if (e.gnuLongName) {
        const body = Buffer.from(name + '\0');
        out.push(header({ name: '././@LongLink', mode: 0, uid: 0, gid: 0, size: body.length, mtime: 0, flag: 'L', linkname: '', devmajor: 0, devminor: 0 }), ...pad(body));
      } else {
        pax.path = name;
      }
      name = name.slice(0, 100);
    }
    if (Buffer.byteLength(linkname) > 100) {
      pax.linkpath = linkname;
      linkname = linkname.slice(0, 100);
    }
    if (Object.keys(pax).length > 0) {
      const body = paxBody(pax);
      out.push(header({ name: 'PaxHeader', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, flag: 'x', linkname: '', devmajor: 0, devminor: 0 }), ...pad(body));
    }
    const flag = type === 'raw' ? e.flag! : FLAGS[type]!;
    const size = type === 'file' || type === 'raw' ? content.length : 0;
    out.push(
      header({
        name, mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, size, mtime: e.mtime ?? 1700000000,
        flag, linkname, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0,
      }),
    );
    if (size > 0) out.push(...pad(content));
  }
  if (end) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

/** The header of a regular file of `size` bytes (< 8 GiB), without its content: for streams too big to hold. */
export function fileHeader(name: string, size: number, mode = 0o644): Buffer {
  return header({ name, mode, uid: 0, gid: 0, size, mtime: 1700000000, flag: '0', linkname: '', devmajor: 0, devminor: 0 });
}
