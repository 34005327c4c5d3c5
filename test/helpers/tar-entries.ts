/**
 * A tar stream read back into its entries with berth's own reader, for tests that check what
 * berth wrote (exports, merged views, the tar writer). Bodies are decoded as UTF-8 text: the
 * tests compare file contents they wrote as text.
 * @module
 */
import { TarReader, type TarHeader } from '../../lib/image/tar-reader.js';

/** An entry's header and its body as text. */
export type TarEntry = TarHeader & { body: string };

/** The entries of `tar` (a whole archive, or a stream of its chunks), in archive order. */
export async function readTarEntries(tar: Buffer | AsyncIterable<Uint8Array>): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  let body: Buffer[] = [];
  const r = new TarReader({
    entry: (h) => {
      out.push({ ...h, body: '' });
      body = [];
    },
    data: (c) => body.push(Buffer.from(c)),
    entryEnd: () => {
      out[out.length - 1]!.body = Buffer.concat(body).toString();
    },
  });
  if (Buffer.isBuffer(tar)) r.write(tar);
  else for await (const c of tar) r.write(Buffer.from(c));
  r.end();
  return out;
}
