/**
 * A container's root file system as one directory fd, whatever its state, for `docker cp`.
 *
 * - **Running or paused**: `/proc/<pid>/root` of its PID 1, opened as a root whose symlinks
 *   are followed only inside it (`RESOLVE_IN_ROOT`). Its volumes, binds and tmpfs mounts are
 *   there, with their read-only flags. The pid is checked against the start time recorded in
 *   the state *after* the open: a pid reused by another process between the state read and the
 *   open would show a different start time, so the fd is of this container or is not used.
 * - **Created or exited**: nothing is mounted anywhere (the overlay lived only in the
 *   container's mount namespace). The storage driver opens its root without attaching it
 *   anywhere (overlay: a detached overlay of its layers, upper and work dir, made with the new
 *   mount API: in no mount namespace, gone when its fd closes or this process dies). The container's lock is held until then, so it cannot start (and
 *   mount the same upper dir) meanwhile. Its volumes and binds are not part of it.
 *
 * Nothing from the container's file system ever runs or is loaded in a host context (no
 * chroot, no libnss, no helper binary of the container): berth reads and writes its files
 * through fds only (CVE-2019-14271 was `docker cp` loading the container's libnss).
 * @module
 */
import { readFileSync } from 'node:fs';
import { ConflictError, UnsupportedError, isSystemError } from '../errors.js';
import { fsOps, type FsOpsBinding } from '../image/fs-ops.js';
import { ConfinedDir } from '../image/merged-view.js';
import type { HeldLock } from '../state/lock.js';
import { storageDriverNamed } from '../storage/select.js';
import { processStartTime } from '../state/process-identity.js';
import { IdMap } from './archive-paths.js';
import { isActive, type ContainerRecord, type ContainerState } from './container-record.js';

/** What opening a container's root needs from the container. @internal */
export interface ContainerRootAccess {
  read(): Promise<{ record: ContainerRecord; state: ContainerState }>;
  /** The container's lock (the one every state transition holds). */
  lock(): Promise<HeldLock>;
  upperDir: string;
  workDir: string;
}

/** An opened root; {@link OpenedContainerRoot.close} when done. @internal */
export interface OpenedContainerRoot {
  root: ConfinedDir;
  /** Through a running (or paused) PID 1's `/proc/<pid>/root`. */
  live: boolean;
  uids: IdMap;
  gids: IdMap;
  record: ContainerRecord;
  /** Mount targets that a detached root does not show (`[]` for a live one). */
  hiddenMounts: string[];
  close(): void;
}

/** Names the container in messages. */
export function containerLabel(record: ContainerRecord): string {
  return `container ${record.name}`;
}

function refuseState(record: ContainerRecord, state: ContainerState): void {
  if (state.status === 'removing') throw new ConflictError(`${containerLabel(record)} is marked for removal and cannot be used`);
  if (state.status === 'dead') throw new ConflictError(`${containerLabel(record)} is dead (its removal failed); remove it with force`);
}

function openLive(record: ContainerRecord, state: ContainerState, fs: FsOpsBinding): OpenedContainerRoot | undefined {
  if (!isActive(state.status) || state.pid <= 0 || state.pidStartTime === undefined) return undefined;
  let fd: number;
  let uidText: string;
  let gidText: string;
  try {
    fd = fs.fsOpenRoot(`/proc/${state.pid}/root`, { follow: true, crossMounts: true });
  } catch (error) {
    if (isSystemError(error) && (error.code === 'ENOENT' || error.code === 'ESRCH' || error.code === 'EACCES')) return undefined;
    throw error;
  }
  try {
    uidText = readFileSync(`/proc/${state.pid}/uid_map`, 'utf8');
    gidText = readFileSync(`/proc/${state.pid}/gid_map`, 'utf8');
  } catch {
    fs.fsCloseRoot(fd);
    return undefined;
  }
  // After the open: the process that was this container's PID 1 still is, so it was the one opened.
  if (processStartTime(state.pid) !== state.pidStartTime) {
    fs.fsCloseRoot(fd);
    return undefined;
  }
  const root = ConfinedDir.adopt(`${containerLabel(record)}:/`, fd, fs);
  return { root, live: true, uids: IdMap.fromProcText(uidText), gids: IdMap.fromProcText(gidText), record, hiddenMounts: [], close: () => root.close() };
}

function mountDetached(record: ContainerRecord, access: ContainerRootAccess, purpose: 'read' | 'write', lock: HeldLock, fs: FsOpsBinding): OpenedContainerRoot {
  const s = record.source;
  if (s.kind === 'host') {
    throw new UnsupportedError(`${containerLabel(record)} runs on the host's root ({ host: true }) and is not running: copy files while it runs, or on the host directly`);
  }
  const userns = record.options.userns;
  const maps = userns !== undefined && userns !== 'auto' ? userns : undefined;
  let fd: number;
  try {
    fd = storageDriverNamed(record.storageDriver).openDetachedRoot(
      {
        lowerDirs: s.kind === 'image' ? s.lowerDirs : [s.dir],
        layer: { upperDir: access.upperDir, workDir: access.workDir },
        // Reading never writes; a read-only root stays read-only for copies too.
        readonly: purpose === 'read' || record.options.readonlyRootfs === true,
        userxattr: maps !== undefined,
      },
      { follow: true },
      fs,
    );
  } catch (error) {
    if (isSystemError(error) && error.code === 'EINVAL' && error.syscall.startsWith('fsconfig(lowerdir+')) {
      throw new UnsupportedError(`${containerLabel(record)} is not running, and copying files of a stopped container needs Linux 6.8 (overlay "lowerdir+"): start it first`, { cause: error });
    }
    throw error;
  }
  const root = ConfinedDir.adopt(`${containerLabel(record)}:/`, fd, fs);
  const hiddenMounts = (record.mounts ?? record.options.mounts ?? []).map((m) => m.target);
  return {
    root,
    live: false,
    // Image layers are shown to a user-namespaced container through idmapped mounts: an id on
    // disk there is the id the container sees, so an unmapped host id is kept as it is.
    uids: new IdMap(maps?.uidMap, 'keep'),
    gids: new IdMap(maps?.gidMap, 'keep'),
    record,
    hiddenMounts,
    close: () => {
      try {
        root.close();
      } finally {
        lock.release();
      }
    },
  };
}

/**
 * Opens the root of the container behind `access` (see the module comment).
 * @param purpose `read` mounts a stopped container's root read-only.
 * @throws ConflictError while it is being removed or dead; UnsupportedError for a stopped
 *   `{ host: true }` container, or a stopped one on a kernel older than 6.8.
 */
export async function openContainerRoot(access: ContainerRootAccess, purpose: 'read' | 'write', fs: FsOpsBinding = fsOps()): Promise<OpenedContainerRoot> {
  const first = await access.read();
  refuseState(first.record, first.state);
  const live = openLive(first.record, first.state, fs);
  if (live) return live;
  const lock = await access.lock();
  try {
    const { record, state } = await access.read();
    refuseState(record, state);
    // It may have started meanwhile; under the lock the state is the truth.
    const nowLive = openLive(record, state, fs);
    if (nowLive) {
      lock.release();
      return nowLive;
    }
    return mountDetached(record, access, purpose, lock, fs);
  } catch (error) {
    lock.release();
    throw error;
  }
}
