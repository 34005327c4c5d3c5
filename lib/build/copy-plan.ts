/**
 * What a COPY or ADD writes: its sources resolved in a source tree (the build context, filtered
 * by `.dockerignore`, or a stage's layers for `--from`), each entry's place under the
 * destination, owner and mode, and a content hash of the whole source *set* for the cache key.
 *
 * Sources are hostile paths into a tree that may hold hostile symlinks: everything is read
 * through {@link MergedView} (fd-relative, `RESOLVE_IN_ROOT` semantics), so `COPY link/passwd`
 * with `link -> /etc` reads the context's `etc/passwd` if it has one, never the host's. A
 * source path's own symlinks are followed inside the tree, as Docker does; symlinks met while
 * walking a directory are copied as symlinks.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, read } from 'node:fs';
import { promisify } from 'node:util';
import { posix } from 'node:path';
import type { FsStat } from '../image/fs-ops.js';
import { MergedView, type ConfinedDir } from '../image/merged-view.js';
import { S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, isDir } from '../image/overlay-format.js';
import { BuildSourceNotFoundError, DockerfileSyntaxError, type SourceLocation } from './build-errors.js';
import type { DockerIgnore } from './dockerignore.js';
import { archiveEntries, archiveKind, MAX_ADD_ARCHIVE, type ArchiveKind } from './add-archive.js';
import { patternToRegex } from './dockerignore.js';

export type PlannedKind = 'file' | 'dir' | 'symlink' | 'fifo';

/** One entry of the new layer. */
export interface PlannedEntry {
  /** Root-relative path in the image. */
  path: string;
  kind: PlannedKind;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  /** Symlink target. */
  linkname?: string;
  /** Where the content is read (files). */
  source?: { layer: ConfinedDir; path: string };
  /** Inline content (heredoc sources). */
  content?: Buffer;
}

export interface CopyRequest {
  sources: string[];
  /** Absolute destination (WORKDIR applied), trailing `/` kept: it means "a directory". */
  dest: string;
  owner?: { uid: number; gid: number };
  /** `--chmod`, already parsed. */
  mode?: number;
  /** Fixed mtime for every entry (SOURCE_DATE_EPOCH), seconds. */
  epoch?: number;
  loc: SourceLocation;
  instruction: 'COPY' | 'ADD';
  /** ADD: a local tar archive (plain or gzip) is extracted into the destination. */
  extract?: boolean;
}

/** A source tree: the context (with its ignore rules) or a stage's layers. */
export interface SourceTree {
  view: MergedView;
  ignore?: DockerIgnore;
  /** How errors name the tree: `build context`, `stage build`. */
  what: string;
}

const WILDCARD = /[*?[]/;
const CHUNK = 256 * 1024;
const readAsync = promisify(read);

function ignored(tree: SourceTree, rel: string): boolean {
  return rel !== '' && tree.ignore !== undefined && tree.ignore.excludes(rel);
}

/** Paths matching a wildcard source, component by component (Go's filepath.Match per segment). */
function glob(tree: SourceTree, pattern: string, loc: SourceLocation): string[] {
  const parts = pattern.split('/').filter((p) => p !== '' && p !== '.');
  let current = [''];
  for (const part of parts) {
    const next: string[] = [];
    if (!WILDCARD.test(part)) {
      for (const c of current) next.push(c === '' ? part : `${c}/${part}`);
    } else {
      const re = patternToRegex(part, loc.file, loc.line);
      for (const c of current) {
        const dir = c === '' ? '' : tree.view.resolve(`/${c}`);
        if (dir === null) continue;
        for (const e of tree.view.listDir(dir)) if (re.test(e.name)) next.push(c === '' ? e.name : `${c}/${e.name}`);
      }
    }
    current = next;
  }
  return current.filter((p) => p !== '' && !ignored(tree, p));
}

function kindOf(st: FsStat): PlannedKind | undefined {
  switch (st.mode & S_IFMT) {
    case S_IFREG: return 'file';
    case S_IFDIR: return 'dir';
    case S_IFLNK: return 'symlink';
    case S_IFIFO: return 'fifo';
    default: return undefined; // devices and sockets are not copied from a context
  }
}

/** Parses `--chmod` (octal only, as Docker's builder). */
export function parseChmod(value: string, loc: SourceLocation): number {
  if (!/^[0-7]{3,4}$/.test(value)) throw new DockerfileSyntaxError(loc, `invalid --chmod value ${JSON.stringify(value)}: give octal permission bits such as 0755`);
  return Number.parseInt(value, 8);
}

/** The planned entries (sorted, parents first) and what the cache key needs of them. */
export interface CopyPlan {
  entries: PlannedEntry[];
  /** sha256 over paths, kinds, modes, owners, sizes, link targets and contents. */
  contentHash: string;
  /** Docker's history form: `file:<hex>`, `dir:<hex>` or `multi:<hex>`. */
  historySource: string;
}

/**
 * Resolves a COPY/ADD into entries.
 * @param destTree the stage's current layers, to see whether the destination is a directory
 *   and to take the metadata of existing parent directories
 * @param inline heredoc sources: name -> content
 * @throws BuildSourceNotFoundError for a source that is missing or excluded
 */
export async function planCopy(tree: SourceTree | undefined, destTree: MergedView, request: CopyRequest, inline: ReadonlyMap<string, Buffer> = new Map()): Promise<CopyPlan> {
  const { loc } = request;
  const owner = request.owner ?? { uid: 0, gid: 0 };
  const now = request.epoch ?? Math.floor(Date.now() / 1000);
  const resolved: Array<{ rel: string; base: string } | { inline: string }> = [];
  let wildcard = false;
  for (const src of request.sources) {
    if (inline.has(src)) {
      resolved.push({ inline: src });
      continue;
    }
    if (!tree) throw new BuildSourceNotFoundError(loc, `${request.instruction} source ${src}: no source tree`);
    const clean = posix.normalize(`/${src}`).slice(1).replace(/\/$/, '');
    const candidates = WILDCARD.test(clean) ? (wildcard = true, glob(tree, clean, loc)) : [clean];
    if (candidates.length === 0) throw new BuildSourceNotFoundError(loc, `${request.instruction} failed: no source files were specified: ${src} matches nothing in the ${tree.what}`);
    for (const c of candidates) {
      if (ignored(tree, c)) throw new BuildSourceNotFoundError(loc, `${request.instruction} failed: file not found in ${tree.what} or excluded by .dockerignore: ${src}`);
      const rel = c === '' ? '' : tree.view.resolve(`/${c}`);
      if (rel === null) throw new BuildSourceNotFoundError(loc, `${request.instruction} failed: file not found in ${tree.what} or excluded by .dockerignore: ${src}`);
      resolved.push({ rel, base: posix.basename(`/${c}`) });
    }
  }
  const many = request.sources.length > 1 || wildcard;
  const destIsDirSyntax = request.dest.endsWith('/') || request.dest.endsWith('/.');
  if (many && !destIsDirSyntax) throw new DockerfileSyntaxError(loc, `When using ${request.instruction} with more than one source file, the destination must be a directory and end with a /`);
  const written = posix.normalize(request.dest).replace(/^\/+/, '').replace(/\/+$/, '').replace(/^\.$/, '');
  const destExisting = written === '' ? '' : destTree.resolve(`/${written}`);
  const destIsDir = destIsDirSyntax || many || (destExisting !== null && destTree.lookup(destExisting) !== undefined && isDir(destTree.lookup(destExisting)!.stat)) || written === '';
  // Directories on the way that are symlinks in the image are followed (inside the image), as
  // Docker's copier does: `COPY x /var/run/app/` with var/run -> /run writes into run/app.
  const destRel = destIsDir ? inImageDir(destTree, written) : joinPath(inImageDir(destTree, posix.dirname(`/${written}`).slice(1)), posix.basename(written));

  const out = new Map<string, PlannedEntry>();
  const hash = createHash('sha256');
  const mode = (st: FsStat) => request.mode ?? (st.mode & 0o7777);
  const add = (e: PlannedEntry) => {
    out.set(e.path, e);
  };
  // Hard links are not kept: Docker's builder copies each path as its own file.
  const addNode = (layer: ConfinedDir, rel: string, st: FsStat, target: string) => {
    const kind = kindOf(st);
    if (kind === undefined) return;
    const mtime = request.epoch ?? st.mtime;
    const e: PlannedEntry = { path: target, kind, mode: mode(st), uid: owner.uid, gid: owner.gid, mtime, size: kind === 'file' ? st.size : 0 };
    if (kind === 'symlink') e.linkname = layer.readlink(rel);
    if (kind === 'file') e.source = { layer, path: rel };
    add(e);
  };
  const walk = (srcRel: string, target: string) => {
    for (const e of tree!.view.listDir(srcRel)) {
      if (ignored(tree!, e.path) && !(tree!.ignore?.hasExceptions && isDir(e.stat))) continue;
      const t = `${target === '' ? '' : `${target}/`}${e.name}`;
      if (isDir(e.stat)) {
        const before = out.size;
        if (!ignored(tree!, e.path)) addNode(e.layer, e.path, e.stat, t);
        walk(e.path, t);
        // An excluded directory stays only as the parent of re-included content.
        if (ignored(tree!, e.path) && out.size > before) addNode(e.layer, e.path, e.stat, t);
      } else addNode(e.layer, e.path, e.stat, t);
    }
  };
  for (const r of resolved) {
    if ('inline' in r) {
      const target = destIsDir ? (destRel === '' ? r.inline : `${destRel}/${r.inline}`) : destRel;
      const content = inline.get(r.inline)!;
      add({ path: target, kind: 'file', mode: request.mode ?? 0o644, uid: owner.uid, gid: owner.gid, mtime: now, size: content.length, content });
      continue;
    }
    const entry = r.rel === '' ? undefined : tree!.view.lookup(r.rel);
    if (r.rel === '' || (entry && isDir(entry.stat))) {
      // A directory's contents land in the destination; the destination takes its metadata.
      if (entry) addNode(entry.layer, entry.path, entry.stat, destRel);
      else out.set(destRel, { path: destRel, kind: 'dir', mode: request.mode ?? 0o755, uid: owner.uid, gid: owner.gid, mtime: now, size: 0 });
      walk(r.rel, destRel);
      continue;
    }
    if (!entry) throw new BuildSourceNotFoundError(loc, `${request.instruction} failed: file not found in ${tree!.what}: ${r.base}`);
    if (request.extract && kindOf(entry.stat) === 'file') {
      const archive = await readArchive(entry.layer, entry.path);
      if (archive) {
        const parts = { ...(request.owner ? { owner } : {}), ...(request.mode !== undefined ? { mode: request.mode } : {}), ...(request.epoch !== undefined ? { epoch: request.epoch } : {}) };
        for (const e of await archiveEntries(archive.bytes, archive.kind, destRel, { ...parts, loc, name: r.base })) add(e);
        continue;
      }
    }
    addNode(entry.layer, entry.path, entry.stat, destIsDir ? (destRel === '' ? r.base : `${destRel}/${r.base}`) : destRel);
  }
  out.delete('');
  // Parents of everything: existing directories keep their metadata, missing ones are 0755 root.
  for (const path of [...out.keys()]) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (out.has(p)) continue;
      const existing = destTree.lookup(p);
      if (existing && isDir(existing.stat)) out.set(p, { path: p, kind: 'dir', mode: existing.stat.mode & 0o7777, uid: existing.stat.uid, gid: existing.stat.gid, mtime: existing.stat.mtime, size: 0 });
      else out.set(p, { path: p, kind: 'dir', mode: 0o755, uid: owner.uid, gid: owner.gid, mtime: now, size: 0 });
    }
  }
  const entries = [...out.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // The source set's hash, in path order; file contents are read asynchronously (a large
  // context must not hold the event loop), and a file's size is what was actually read.
  for (const e of entries) {
    if (e.source) e.size = await hashFile(e.source.layer, e.source.path, e.size, hash);
    else if (e.content) hash.update(e.content);
    hash.update(JSON.stringify([e.path, e.kind, e.mode, e.uid, e.gid, e.size, e.linkname ?? '']));
  }
  const digest = hash.digest('hex');
  const single = resolved.length === 1 ? resolved[0]! : undefined;
  const kind = single === undefined ? 'multi' : 'inline' in single || (single.rel !== '' && !isDir(tree!.view.lookup(single.rel)?.stat ?? { mode: 0 } as FsStat)) ? 'file' : 'dir';
  return { entries, contentHash: `sha256:${digest}`, historySource: `${kind}:${digest}` };
}

function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** `rel` with its longest existing directory prefix resolved in the image (symlinks in-root). */
function inImageDir(tree: MergedView, rel: string): string {
  if (rel === '') return '';
  const parts = rel.split('/');
  for (let i = parts.length; i > 0; i--) {
    const r = tree.resolve(`/${parts.slice(0, i).join('/')}`);
    if (r === null) continue;
    const e = r === '' ? undefined : tree.lookup(r);
    if (r !== '' && (!e || !isDir(e.stat))) return rel;
    return [r, ...parts.slice(i)].filter((p) => p !== '').join('/');
  }
  return rel;
}

/** The whole file when it is a tar archive (by its magic), else undefined. */
async function readArchive(layer: ConfinedDir, rel: string): Promise<{ bytes: Buffer; kind: Exclude<ArchiveKind, undefined> } | undefined> {
  const fd = layer.openFile(rel);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const head = Buffer.alloc(Math.min(262, st.size));
    await readAsync(fd, head, 0, head.length, 0);
    const kind = archiveKind(head);
    if (kind === undefined || st.size > MAX_ADD_ARCHIVE) return undefined;
    const bytes = Buffer.alloc(st.size);
    let done = 0;
    while (done < st.size) {
      const { bytesRead } = await readAsync(fd, bytes, done, Math.min(CHUNK, st.size - done), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return { bytes: bytes.subarray(0, done), kind };
  } finally {
    closeSync(fd);
  }
}

/** Hashes a file's content into `hash`; returns the size actually read (the file may change). */
async function hashFile(layer: ConfinedDir, rel: string, size: number, hash: ReturnType<typeof createHash>): Promise<number> {
  const fd = layer.openFile(rel);
  try {
    if (!fstatSync(fd).isFile()) return 0;
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(size, 1)));
    let done = 0;
    while (done < size) {
      const { bytesRead } = await readAsync(fd, buf, 0, Math.min(buf.length, size - done), done);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
    return done;
  } finally {
    closeSync(fd);
  }
}
