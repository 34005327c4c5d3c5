/**
 * A busybox rootfs made by the rootless test user in its own home, as a rootless user unpacks
 * one: its files are the user's, so container root owns them through the id map (a root-owned
 * tree, such as test/helpers/busybox-rootfs.ts builds, would only be readable inside).
 * Runs in the program a rootless test starts as the user; it needs /bin/busybox.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface UserRootfsOptions {
  /** Also an account `app` (1000:1000) in /etc/passwd and /etc/group. Default false. */
  appUser?: boolean;
  /** Directories made besides the usual ones (relative to the root). */
  dirs?: readonly string[];
}

const DIRS = ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root', 'var', 'run'];

/** Builds the rootfs under `$HOME/rootfs-*` and returns its path; the user's removal deletes it. */
export function userBusyboxRootfs(options: UserRootfsOptions = {}): string {
  const root = mkdtempSync(join(process.env['HOME']!, 'rootfs-'));
  for (const d of [...DIRS, ...(options.dirs ?? [])]) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') symlinkSync('busybox', join(root, 'bin', applet));
  }
  const app = options.appUser === true;
  writeFileSync(join(root, 'etc/passwd'), `root:x:0:0:root:/root:/bin/sh\n${app ? 'app:x:1000:1000:app:/:/bin/sh\n' : ''}`);
  writeFileSync(join(root, 'etc/group'), `root:x:0:\n${app ? 'app:x:1000:\n' : ''}`);
  return root;
}
