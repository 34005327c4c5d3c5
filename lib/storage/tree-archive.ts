/**
 * A whole-tree layer's changes as an OCI layer tar (commit and build with a copying driver):
 * each added or changed entry from the tree, each deleted one as a `.wh.<name>` file, parents
 * before children. Hard links are kept within the archive: the first archived name of an inode
 * carries its content, later ones link to it (a link to a name the archive does not hold would
 * be a broken layer).
 * @module
 */
import { ConfinedDir } from '../image/merged-view.js';
import { S_IFMT, S_IFREG } from '../image/overlay-format.js';
import { tarTrailer } from '../image/tar-writer.js';
import type { LayerChange } from './driver.js';
import { emptyFile, entryBytes } from './rootfs-archive.js';

/** `changes` of the tree `treeDir` as a layer tar; `skip` names relative paths left out. */
export async function* treeChangesArchive(treeDir: string, changes: readonly LayerChange[], signal?: AbortSignal, skip: ReadonlySet<string> = new Set()): AsyncGenerator<Buffer> {
  const tree = ConfinedDir.open(treeDir);
  try {
    const links = new Map<number, string>();
    const sorted = [...changes].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    // Deleted directories' contents are gone with them: one whiteout each.
    const deletedDirs: string[] = [];
    for (const c of sorted) {
      signal?.throwIfAborted();
      const rel = c.path.slice(1);
      if (skip.has(rel) || deletedDirs.some((d) => rel.startsWith(`${d}/`))) continue;
      if (c.kind === 'D') {
        const slash = rel.lastIndexOf('/');
        yield emptyFile(slash < 0 ? `.wh.${rel}` : `${rel.slice(0, slash)}/.wh.${rel.slice(slash + 1)}`, 0);
        deletedDirs.push(rel);
        continue;
      }
      const st = tree.lstat(rel);
      if (st === null) continue; // removed meanwhile
      let linkTo: string | undefined;
      if ((st.mode & S_IFMT) === S_IFREG && st.nlink > 1) {
        linkTo = links.get(st.ino);
        if (linkTo === undefined) links.set(st.ino, rel);
      }
      yield* entryBytes(tree, rel, st, linkTo);
    }
    yield tarTrailer();
  } finally {
    tree.close();
  }
}
