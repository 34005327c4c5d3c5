/**
 * Whether the btrfs driver works on a state directory, found by doing what it does: a scratch
 * subvolume is created there, snapshotted and both destroyed (containerd's rule: probe a
 * feature by using it). The filesystem type alone would not tell a mount without the rights to
 * destroy subvolumes (not root, no `user_subvol_rm_allowed`) or a kernel that refuses the ioctls.
 * @module
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createSubvolume, destroySubvolume, snapshotSubvolume } from '../host/btrfs-subvolumes.js';
import { filesystemTypeOf } from '../host/filesystem.js';
import { isAlive, selfIdentity } from '../state/process-identity.js';
import type { DriverTrial } from './select.js';

/** Tries the btrfs driver's three ioctls in `dir` (it exists); leaves nothing behind either way. */
export async function tryBtrfs(dir: string): Promise<DriverTrial> {
  const fs = filesystemTypeOf(dir);
  if (fs !== 'btrfs') {
    return { ok: false, detail: `the state directory is on ${fs}, not btrfs`, fix: 'put the state directory on a btrfs filesystem (Runtime.open({ root })), or use storageDriver "overlay" or "vfs"' };
  }
  // What a trial of a process that died half-way left.
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = /^\.btrfs-probe-(\d+)-(\d+)-[a-z0-9]+(-snap)?$/.exec(name);
    if (m && !isAlive({ pid: Number(m[1]), startTime: m[2]! })) await destroySubvolume(join(dir, name)).catch(() => undefined);
  }
  const me = selfIdentity();
  const base = join(dir, `.btrfs-probe-${me.pid}-${me.startTime}-${Math.random().toString(36).slice(2, 10)}`);
  const made: string[] = [];
  try {
    await createSubvolume(base);
    made.push(base);
    await snapshotSubvolume(base, `${base}-snap`, { readonly: true });
    made.push(`${base}-snap`);
    for (const p of made.splice(0).reverse()) await destroySubvolume(p);
    return { ok: true, detail: 'subvolumes are created, snapshotted and destroyed on the state directory\'s btrfs' };
  } catch (error) {
    for (const p of made.reverse()) await destroySubvolume(p).catch(() => undefined);
    const fix = (process.geteuid?.() ?? 0) !== 0 ? 'run as root, or mount the filesystem with user_subvol_rm_allowed, or use storageDriver "overlay" or "vfs"' : 'use storageDriver "overlay" or "vfs"';
    return { ok: false, detail: `btrfs subvolumes do not work on the state directory: ${error instanceof Error ? error.message : String(error)}`, fix };
  }
}
