/**
 * Reading and rewriting files inside a running container (its /etc/hosts when peers come and
 * go) through `/proc/<pid>/root`, confined by the native fs operations: the path is resolved
 * with RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS, so a container that replaced its /etc/hosts with
 * a symlink to a host path gets an error, not a write to the host.
 * @module
 */
import { closeSync, readSync, statSync, writeSync } from 'node:fs';
import { isAlive, type ProcessIdentity } from '../state/process-identity.js';
import { fsOps } from '../image/fs-ops.js';
import { native } from '../native.js';

/**
 * Runs `fn` with a root fd of the container whose PID 1 is `pid`, after checking that the pid
 * still names that process (start time) and, once the root is open, that it is still alive
 * (its pidfd), so a recycled pid can never lead into another process's root.
 */
function withContainerRoot<T>(pid: ProcessIdentity, fn: (rootFd: number) => T): T | undefined {
  if (!isAlive(pid)) return undefined;
  const n = native();
  let pidfd: number;
  try {
    pidfd = n.pidfdOpen(pid.pid);
  } catch {
    return undefined;
  }
  try {
    if (!isAlive(pid)) return undefined;
    const rootFd = fsOps().fsOpenRoot(`/proc/${pid.pid}/root`);
    try {
      if (!n.sendSignal(pidfd, 0)) return undefined;
      // A process whose root is ours is no container (a host-network process, a bug):
      // its /etc is the host's, and it is never berth's to write.
      const root = fsOps().fsLstatAt(rootFd, '');
      const own = statSync('/');
      if (!root || (root.dev === own.dev && root.ino === own.ino)) return undefined;
      return fn(rootFd);
    } finally {
      closeSync(rootFd);
    }
  } finally {
    closeSync(pidfd);
  }
}

/**
 * Replaces a small file in a running container. False when the container is gone or the write
 * failed (read-only root, path replaced). The new content is written beside the file and
 * renamed over it: the container's resolver reads /etc/hosts at any moment, and replacing it in
 * place showed it a missing or empty file ("bad address") while a peer joined.
 */
export function writeContainerFile(pid: ProcessIdentity, relPath: string, content: string, mode = 0o644): boolean {
  try {
    return (
      withContainerRoot(pid, (rootFd) => {
        const slash = relPath.lastIndexOf('/');
        const temp = `${relPath.slice(0, slash + 1)}.${relPath.slice(slash + 1)}.berth-${process.pid}`;
        const fd = fsOps().fsMakeEntry(rootFd, { path: temp, kind: 'file', mode });
        try {
          writeSync(fd, content);
        } catch (error) {
          closeSync(fd);
          fsOps().fsRemoveAt(rootFd, temp);
          throw error;
        }
        fsOps().fsFinishFile(fd, { mode }, temp);
        try {
          fsOps().fsRenameAt(rootFd, temp, relPath);
        } catch (error) {
          fsOps().fsRemoveAt(rootFd, temp);
          throw error;
        }
        return true;
      }) ?? false
    );
  } catch {
    return false;
  }
}

/** Reads a small file of a running container; undefined when absent or unreadable. */
export function readContainerFile(pid: ProcessIdentity, relPath: string, limit = 1 << 20): string | undefined {
  try {
    return withContainerRoot(pid, (rootFd) => {
      const fd = fsOps().fsOpenAt(rootFd, relPath);
      try {
        const buf = Buffer.alloc(limit);
        let n = 0;
        for (;;) {
          const r = readSync(fd, buf, n, limit - n, null);
          if (r <= 0) break;
          n += r;
        }
        return buf.subarray(0, n).toString('utf8');
      } finally {
        closeSync(fd);
      }
    });
  } catch {
    return undefined;
  }
}
