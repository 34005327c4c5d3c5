/**
 * ADD of a local tar archive (plain or gzip): its entries are extracted into the destination
 * directory, as Docker's ADD does. The archive comes from the build context, so it is hostile:
 * a name with `..` or an absolute path is refused (`cleanEntryName`, the unpacker's own rule),
 * devices are refused, and the uncompressed size is capped. Owners and modes come from the
 * archive unless `--chown`/`--chmod` say otherwise; a hard link becomes a copy of its target.
 * @module
 */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { TarFormatError, TarReader, type TarHeader } from '../image/tar-reader.js';
import { cleanEntryName } from '../image/unpack.js';
import { BuildUnsupportedError, DockerfileSyntaxError, type SourceLocation } from './build-errors.js';
import type { PlannedEntry } from './copy-plan.js';

const gunzipAsync = promisify(gunzip);

/** Uncompressed bytes an ADD archive may hold. */
export const MAX_ADD_ARCHIVE = 1024 ** 3;

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | undefined;

/** What an archive's first 262 bytes say it is; undefined for an ordinary file. */
export function archiveKind(head: Buffer): ArchiveKind {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  return undefined;
}

/**
 * The entries of `archive` under `destRel`.
 * @throws DockerfileSyntaxError (located at the ADD) for a malformed or unsafe archive
 */
export async function archiveEntries(archive: Buffer, kind: Exclude<ArchiveKind, undefined>, destRel: string, opts: { owner?: { uid: number; gid: number }; mode?: number; epoch?: number; loc: SourceLocation; name: string }): Promise<PlannedEntry[]> {
  if (kind === 'bzip2' || kind === 'xz') throw new BuildUnsupportedError(opts.loc, `ADD ${opts.name}: ${kind} archives are not extracted by berth (plain and gzip tars are); use RUN tar`);
  let tar: Buffer;
  try {
    tar = kind === 'gzip' ? await gunzipAsync(archive, { maxOutputLength: MAX_ADD_ARCHIVE }) : archive;
  } catch (e) {
    throw new DockerfileSyntaxError(opts.loc, `ADD ${opts.name}: cannot decompress: ${(e as Error).message}`);
  }
  const out = new Map<string, PlannedEntry>();
  let current: { header: TarHeader; chunks: Buffer[] } | undefined;
  const at = (rel: string) => (destRel === '' ? rel : rel === '' ? destRel : `${destRel}/${rel}`);
  const reader = new TarReader({
    entry(header) {
      current = { header, chunks: [] };
    },
    data(chunk) {
      current!.chunks.push(Buffer.from(chunk));
    },
    entryEnd() {
      const { header: h, chunks } = current!;
      current = undefined;
      let rel: string;
      try {
        rel = cleanEntryName(h.name);
      } catch (e) {
        throw new DockerfileSyntaxError(opts.loc, `ADD ${opts.name}: entry ${JSON.stringify(h.name)} refused: ${(e as Error).message}`);
      }
      const path = at(rel);
      if (path === '') return;
      const meta = { path, mode: opts.mode ?? (h.mode & 0o7777), uid: opts.owner?.uid ?? h.uid, gid: opts.owner?.gid ?? h.gid, mtime: opts.epoch ?? Math.floor(h.mtime) };
      switch (h.type) {
        case 'dir':
          out.set(path, { ...meta, kind: 'dir', size: 0 });
          break;
        case 'file': {
          const content = Buffer.concat(chunks);
          out.set(path, { ...meta, kind: 'file', size: content.length, content });
          break;
        }
        case 'symlink':
          out.set(path, { ...meta, kind: 'symlink', size: 0, linkname: h.linkname });
          break;
        case 'fifo':
          out.set(path, { ...meta, kind: 'fifo', size: 0 });
          break;
        case 'link': {
          let target: string;
          try {
            target = at(cleanEntryName(h.linkname));
          } catch (e) {
            throw new DockerfileSyntaxError(opts.loc, `ADD ${opts.name}: hard link ${JSON.stringify(h.name)} refused: ${(e as Error).message}`);
          }
          const t = out.get(target);
          if (!t || t.kind !== 'file') throw new DockerfileSyntaxError(opts.loc, `ADD ${opts.name}: hard link ${JSON.stringify(h.name)} to ${JSON.stringify(h.linkname)}, which the archive has not written`);
          out.set(path, { ...t, ...meta, kind: 'file' });
          break;
        }
        default:
          throw new DockerfileSyntaxError(opts.loc, `ADD ${opts.name}: entry ${JSON.stringify(h.name)} is a ${h.type} device; archives may not create devices`);
      }
    },
  });
  try {
    reader.write(tar);
    reader.end();
  } catch (e) {
    if (e instanceof TarFormatError) throw new DockerfileSyntaxError(opts.loc, `ADD ${opts.name}: malformed tar: ${e.message}`);
    throw e;
  }
  return [...out.values()];
}
