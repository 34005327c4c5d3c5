/**
 * Removing a tree of the state directory that a rootless container or unpack filled: it holds
 * what belongs to other container ids (a 0700 directory of id 33) that this user's own uid
 * cannot empty. What `rm` refuses is removed inside the containers' user namespace, where those
 * ids are its own (the process's helper, ./userns-helper.ts).
 * @module
 */
import { removeTree } from '../host/remove-tree.js';
import { isRootless } from './identity.js';
import { sharedUsernsHelper } from './userns-helper.js';

/** `removeTree(path)`, finished by the user-namespace helper when rootless and refused. */
export async function removeOwnedTree(path: string): Promise<void> {
  try {
    // removeTree: the layer may be a btrfs subvolume, or hold ones the container made.
    await removeTree(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!isRootless() || (code !== 'EACCES' && code !== 'EPERM')) throw error;
    await sharedUsernsHelper().removeTrees([path]);
  }
}
