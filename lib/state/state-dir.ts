/**
 * Opening a state directory safely.
 *
 * Everything a container can write lives below the state dir: its overlay upper dir, its
 * volumes' `_data`. A container's root can create a setuid-root file there (chmod u+s on a
 * copy of a shell); if another host user can reach the file, that user runs it as host root
 * (CVE-2021-41091 is this bug in Docker). A state dir left 0755 by whoever made it, or owned
 * by another user (who could chmod it or swap its entries), would expose all of it. So the dir
 * must be ours and 0700: nobody but root (and its owner) traverses into it, whatever the modes
 * below are.
 * @module
 */
import { closeSync, constants as FS, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync } from 'node:fs';
import { SystemError, ValidationError } from '../errors.js';

/** The mode a state directory is given: only its owner may traverse it. */
export const STATE_DIR_MODE = 0o700;

/**
 * Creates `root` (0700) if missing; otherwise checks it is a real directory owned by root or by
 * this process's user, and takes group and other permissions away.
 * @throws ValidationError when `root` is a symlink, not a directory, or owned by another user.
 */
export function secureStateDir(root: string): void {
  mkdirSync(root, { recursive: true, mode: STATE_DIR_MODE });
  let fd: number;
  try {
    // O_NOFOLLOW: a symlinked state dir points wherever its author chose, possibly into a tree
    // they control; the checks below run on the opened inode, not on a path that can change.
    fd = openSync(root, FS.O_RDONLY | FS.O_DIRECTORY | FS.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new ValidationError('root', `${root} is a symlink: give the real directory`, { path: root });
    if (code === 'ENOTDIR') {
      // O_DIRECTORY is checked before O_NOFOLLOW: a symlink to a directory fails as ENOTDIR.
      const link = lstatSync(root, { throwIfNoEntry: false })?.isSymbolicLink() === true;
      throw new ValidationError('root', link ? `${root} is a symlink: give the real directory` : `${root} is not a directory`, { path: root });
    }
    throw new SystemError(code ?? 'EIO', `opening the state directory ${root}: ${(error as Error).message}`, { syscall: 'open', path: root, cause: error });
  }
  try {
    const st = fstatSync(fd);
    const me = process.geteuid?.() ?? 0;
    if (st.uid !== 0 && st.uid !== me) {
      throw new ValidationError('root', `${root} is owned by uid ${st.uid}: a state directory must belong to root or to this user (uid ${me}), since its owner can reach every container's files`, { path: root });
    }
    if ((st.mode & 0o7777) !== STATE_DIR_MODE) fchmodSync(fd, STATE_DIR_MODE);
  } finally {
    closeSync(fd);
  }
}
