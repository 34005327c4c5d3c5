/**
 * The overlay trial of a process that is not root: kernel overlay is mounted inside a user
 * namespace there (`userxattr`, Linux 5.11+), so that is where it is tried. A throw-away child
 * is created in a new user namespace (the caller's single-id map, written by this process: no
 * setuid helper) and a new mount namespace, mounts an overlay of scratch directories below the
 * state directory as its one mount operation, and execs `true`. The mount lives only in that
 * namespace and dies with it; the scratch directories are removed. Overlay refuses some upper
 * filesystems (overlay itself: berth inside a container; some FUSE and network filesystems),
 * and some kernels or policies refuse overlay in a user namespace at all: then the spawn fails
 * with what the kernel said.
 *
 * Writing a child's map needs this process to be dumpable, which a rootless launch can leave it
 * not (a credential change in the launch's middle process, which shares Node's memory, resets
 * the flag on it): then `/proc/<child>/setgroups` is root's and the write is refused (EACCES),
 * and the trial runs instead inside the process's held user namespace (lib/rootless/held-userns.ts,
 * the one its containers run in). Not always there: the holder is a process of its own, which
 * a runtime that only pulls would otherwise not start.
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isSystemError } from '../errors.js';
import { filesystemTypeOf } from '../host/filesystem.js';
import { MountOpKind, StdioMode, native, type NativeExitStatus, type NativeLaunchSpec } from '../native.js';
import { leaseHeldUserns } from '../rootless/held-userns.js';
import { rootlessIdMaps } from '../rootless/id-maps.js';
import type { DriverTrial } from './select.js';

const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNS = 0x00020000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Tries kernel overlay with its upper dir below `dir`, inside a user namespace (see the module comment). */
export async function tryOverlayInUserns(dir: string): Promise<DriverTrial> {
  const fs = filesystemTypeOf(dir);
  let scratch: string | undefined;
  try {
    scratch = mkdtempSync(join(dir, '.storage-probe-'));
    for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(scratch, d));
    const spec: NativeLaunchSpec = {
      cloneFlags: CLONE_NEWUSER | CLONE_NEWNS,
      newCgroupNs: false,
      uidMap: `0 ${process.geteuid!()} 1\n`,
      gidMap: `0 ${process.getegid!()} 1\n`,
      unprivileged: true,
      cgroupProcs: [],
      mounts: [{ kind: MountOpKind.Overlay, target: join(scratch, 'm'), lowerDirs: [join(scratch, 'l')], source: join(scratch, 'u'), data: join(scratch, 'w'), fstype: 'userxattr', flags: 0 }],
      loopbackUp: false,
      rlimits: [],
      uid: 0,
      gid: 0,
      groups: [],
      capabilities: { bounding: 0n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n },
      noNewPrivileges: true,
      seccomp: null,
      dieWithParent: true,
      cwd: '/',
      argv: ['true'],
      env: [],
      execCandidates: ['/bin/true', '/usr/bin/true'],
      execFd: -1,
      stdio: [{ mode: StdioMode.Null }, { mode: StdioMode.Null }, { mode: StdioMode.Null }],
      tty: false,
    };
    let spawned;
    try {
      spawned = await native().spawn(spec);
    } catch (error) {
      if (!isSystemError(error) || error.code !== 'EACCES') throw error;
      const userns = await leaseHeldUserns(rootlessIdMaps(process.geteuid!(), process.getegid!()));
      try {
        // CLONE_NEWUSER stays with joinUserns: the child is created inside the held namespace.
        const { uidMap: _u, gidMap: _g, ...rest } = spec;
        spawned = await native().spawn({ ...rest, joinUserns: { fd: userns.fd, setgroupsDenied: userns.setgroupsDenied } });
      } finally {
        userns.release();
      }
    }
    const status = await new Promise<NativeExitStatus>((resolve) => native().watchExit(spawned.pidfd, resolve));
    if (status.code !== 0) return { ok: false, detail: `the overlay trial in a user namespace ended with ${status.signal != null ? `signal ${status.signal}` : `code ${status.code}`}`, fix: 'use storageDriver "vfs"' };
    return { ok: true, detail: `kernel overlay mounts inside a user namespace (userxattr) with its upper dir on the state directory's filesystem (${fs})` };
  } catch (error) {
    const fix = fs === 'overlayfs'
      ? 'put the state directory on a volume or tmpfs (Runtime.open({ root })), or use storageDriver "vfs"'
      : 'use a state directory on ext4, xfs, btrfs or tmpfs (Runtime.open({ root })) on Linux 5.11 or later, or storageDriver "vfs"';
    return { ok: false, detail: `kernel overlay does not mount inside a user namespace with its upper dir on ${fs}: ${messageOf(error)}`, fix };
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}
