/**
 * The errors of copying files into and out of containers (`putArchive`, `getArchive`,
 * `copyTo`, `copyFrom`) that the general classes of lib/errors.ts do not say well enough.
 * @module
 */
import { BerthError, ConflictError, type BerthErrorDetails } from '../errors.js';

/**
 * An archive entry that would land outside its destination, or that berth does not copy
 * there: a `..` or absolute name, a path through a symlink, a hard link leaving the
 * destination, a device node for an unprivileged container. Nothing of it was written.
 */
export class UnsafeArchiveEntryError extends BerthError {
  /** The entry's name as the archive gives it. */
  readonly entry: string;
  constructor(where: string, entry: string, reason: string, details: BerthErrorDetails = {}) {
    super('ERR_UNSAFE_ARCHIVE_ENTRY', `${where}: archive entry ${JSON.stringify(entry)} refused: ${reason}`, { path: entry, ...details });
    this.entry = entry;
  }
}

/**
 * A copy would replace a directory with a non-directory or the reverse (Docker refuses both:
 * `docker cp` never deletes a tree to make room), or a destination is not what the copy needs.
 */
export class ArchiveConflictError extends ConflictError {
  constructor(message: string, path: string) {
    super(message, { path });
  }
}
