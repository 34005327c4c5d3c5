/**
 * fuse-overlayfs without root: a container's root served by a daemon inside this process's
 * held user namespace, handed to the launch as a detached mount (docs/design/rootless.md,
 * "fuse-overlayfs without root").
 *
 * Without root a FUSE filesystem can only be mounted in a mount namespace that a user
 * namespace of ours owns, and the container's mount namespace is made from the host's, where
 * the user may mount nothing. `berth-helper fuse-root` (src-native/fuse-root.h) joins the held
 * user namespace, unshares a private mount namespace, starts fuse-overlayfs there on the
 * layer's `merged/`, clones the mount detached (open_tree OPEN_TREE_CLONE) and unmounts the
 * original, so the clone is the filesystem's only mount. This process takes the clone's descriptor with
 * pidfd_getfd and the launch attaches it as the root (`MountOpKind.MoveTree`,
 * move_mount before pivot_root); then this process closes its descriptor.
 *
 * Why a detached mount rather than the container joining a held mount namespace (Podman's
 * way): the daemon stays out of the container's pid namespace (the container cannot see,
 * signal or ptrace it) and out of its mount namespace, and nothing needs undoing: when the
 * container's mount namespace goes (its last process exits, also when this process is killed),
 * the filesystem loses its last mount, the kernel aborts the FUSE connection and the daemon
 * exits; the helper, its parent, reaps it and exits. Before the hand-over the daemon dies with
 * the helper (parent-death signal) and the helper gives the mount up when this process's pipe
 * closes. `merged/` is never mounted in the host's namespace, so no host mount, owner record or
 * scratch directory is left.
 * @module
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError } from '../errors.js';
import { helperExecutablePath, native } from '../native.js';
import { fuseOptionsOf, MERGED_DIR, requireFuseOverlayfs, type FuseMountRequest } from './fuse-mount.js';

/** The daemon's and the helper's stderr, next to `merged/` (the reason when a mount fails). */
const LOG_FILE = 'merged.log';
/** The helper waits up to 30 s for the mount; this bounds the whole exchange. */
const READY_TIMEOUT_MS = 40_000;

/** A detached fuse-overlayfs root, held by this process until the launch has attached it. */
export interface DetachedFuseRoot {
  /** This process's descriptor of the detached mount: `MountOpKind.MoveTree`'s `source`. */
  readonly fd: number;
  /** `berth-helper fuse-root`, the daemon's parent. */
  readonly helperPid: number;
  /** The fuse-overlayfs daemon (in the held user namespace, not in any container's pid namespace). */
  readonly daemonPid: number;
  /**
   * Waits for the helper's exit (after the daemon's) and resolves with its code: once the
   * descriptor is closed and no container holds the mount. The helper keeps Node's event
   * loop alive only while this is awaited.
   */
  waitExited(): Promise<number>;
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-5).join('; ');
  } catch {
    return '';
  }
}

/**
 * Mounts fuse-overlayfs for `request` inside the held user namespace `usernsFd` and returns the
 * detached mount (see the module comment).
 * @throws UnsupportedError when fuse-overlayfs or /dev/fuse is missing; SystemError
 *   `ERR_FUSE_OVERLAYFS` with the daemon's reason when the mount fails.
 */
export async function mountDetachedFuseRoot(request: FuseMountRequest, usernsFd: number): Promise<DetachedFuseRoot> {
  const program = requireFuseOverlayfs();
  const options = fuseOptionsOf(request);
  const mergedDir = join(request.layerDir, MERGED_DIR);
  mkdirSync(mergedDir, { recursive: true, mode: 0o755 });
  const logPath = join(request.layerDir, LOG_FILE);
  const log = openSync(logPath, 'w', 0o600);
  let child;
  try {
    // Its own session: a signal to Node's process group must not end a container's root.
    child = spawn(helperExecutablePath(), ['fuse-root', program, mergedDir, options], { stdio: ['pipe', 'pipe', log, usernsFd], detached: true });
  } finally {
    closeSync(log);
  }
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => resolve(127));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 125)));
  });
  child.stdin!.on('error', () => {});
  const line = await new Promise<string | undefined>((resolve) => {
    let out = '';
    const timer = setTimeout(() => resolve(undefined), READY_TIMEOUT_MS);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.stdout!.once('end', () => {
      clearTimeout(timer);
      resolve(out.includes('\n') ? out.slice(0, out.indexOf('\n')) : undefined);
    });
  });
  const words = line?.split(' ') ?? [];
  if (words[0] !== 'ready' || words.length !== 3 || child.pid === undefined) {
    child.stdin!.end();
    if (line === undefined && child.exitCode === null) child.kill('SIGKILL');
    await exited;
    const why = line?.startsWith('err ') ? line.slice(4) : line === undefined ? 'no answer' : `unexpected answer ${JSON.stringify(line)}`;
    const log = tail(logPath);
    throw new SystemError('ERR_FUSE_OVERLAYFS', `storage driver "fuse-overlayfs": the rootless mount of ${mergedDir} failed: ${why}${log ? ` (${log})` : ''}`, { path: mergedDir });
  }
  let fd: number;
  try {
    // The same open file as the helper's, not a reopen through /proc/<pid>/fd: the detached
    // mount belongs to the file open_tree returned and dissolves when the last copy of that
    // file closes. The helper is dumpable and of our user, so pidfd_getfd may take it.
    const core = native();
    const pidfd = core.pidfdOpen(child.pid);
    try {
      fd = core.pidfdGetfd(pidfd, Number(words[1]));
    } finally {
      closeSync(pidfd);
    }
  } catch (error) {
    child.stdin!.end();
    await exited;
    throw new SystemError('ERR_FUSE_OVERLAYFS', `storage driver "fuse-overlayfs": cannot take the detached mount from berth-helper fuse-root (pid ${child.pid}): ${(error as Error).message}`, { path: mergedDir });
  }
  child.stdin!.end('taken\n');
  // The helper lives as long as the container's root: it must not keep Node's event loop alive.
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  const helper = child;
  return {
    fd,
    helperPid: child.pid,
    daemonPid: Number(words[2]),
    waitExited: () => {
      helper.ref();
      return exited;
    },
  };
}
