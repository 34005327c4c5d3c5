/**
 * What the storage probe's fallback tests need: a state directory on a filesystem where kernel
 * overlay refuses its upper dir, also inside a user namespace (an overlay mount, made here as
 * root), and a small image tarball to import there (busybox and a directory owned by 33).
 * Mount and unmount need root.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTar } from './tar-builder.js';
import type { RootlessUser } from './rootless-user.js';

/** The user's state directory on the overlay, and what unmounts the overlay. */
export interface OverlayState {
  root: string;
  unmount(): void;
}

/** An overlay mount made by {@link mountOverlay}. */
export interface OverlayMount {
  /** `base/m`, where it is mounted. */
  merged: string;
  unmount(): void;
}

/** Mounts an overlay at `base/m` over `base/l`, `base/u` and `base/w` (made here); the caller unmounts. */
export function mountOverlay(base: string): OverlayMount {
  for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(base, d), { recursive: true });
  const merged = join(base, 'm');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${join(base, 'l')},upperdir=${join(base, 'u')},workdir=${join(base, 'w')}`, merged], { stdio: 'pipe' });
  return { merged, unmount: () => execFileSync('umount', [merged]) };
}

/** Mounts an overlay at `work/ovl/m` and makes `state` in it, owned by `user`; the caller unmounts. */
export function mountOverlayState(work: string, user: RootlessUser): OverlayState {
  const base = join(work, 'ovl');
  const { merged, unmount } = mountOverlay(base);
  try {
    const root = join(merged, 'state');
    mkdirSync(root);
    chownSync(root, user.uid, user.gid);
    for (const d of [work, base, merged]) chmodSync(d, 0o755);
    return { root, unmount };
  } catch (error) {
    unmount();
    throw error;
  }
}

/** Writes a tarball (readable by all) of /bin/busybox with `applets` linked to it and `data/by-33` owned by 33; returns its path. */
export function writeProbeImageTar(file: string, applets: readonly string[]): string {
  writeFileSync(file, buildTar([
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...applets.map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
    { name: 'data/', type: 'dir', mode: 0o755, uid: 33, gid: 33 },
    { name: 'data/by-33', content: 'x', uid: 33, gid: 33 },
  ]));
  chmodSync(file, 0o644);
  return file;
}
