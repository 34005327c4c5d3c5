/**
 * The host side of the `fuse-overlayfs` driver: its daemon, the mount it serves on a layer's
 * `merged` directory, and the `merged.owner` record that lets a later process undo both.
 *
 * Kernel overlay is mounted inside the container's own mount namespace, where nothing outlives
 * the container. A FUSE filesystem needs a daemon, and berth runs it on the host side (its
 * namespaces, as root) with only the container's directories as options: the container sees
 * it only through the FUSE protocol on its root, never as a process (another pid namespace) or
 * a device (`/dev/fuse` is not in its `/dev`). The daemon is a child of Node in a session of
 * its own (`-f`, spawned detached): no signal to Node's process group and not Node's death
 * end a detached container's filesystem, and Node reaps it while Node runs. When the last mount of its filesystem goes (the host-side
 * one detached, the container's mount namespace gone) the kernel aborts the connection and the
 * daemon exits by itself; berth ends it by pid only when that did not happen (another mount
 * namespace copied the mount) and only when it is still the process berth started (pid and
 * start time, and its command line names this mount).
 *
 * `merged.owner` (next to `merged`) records who holds the host-side mount: the Node process
 * that mounted it, then a detached container's monitor. It is written before the mount, so a
 * process killed at any point leaves a record: the next `Runtime.open()` unmounts what an
 * owner that died left (its daemon then exits by itself unless a container still uses the
 * filesystem), and a start or removal of the container unmounts and ends the daemon.
 * @module
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants as FS, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError, UnsupportedError } from '../errors.js';
import { isAlive, processStartTime, selfIdentity, type ProcessIdentity } from '../state/process-identity.js';
import { mountAt } from '../host/mountinfo.js';
import { findTool } from '../host/tools.js';

/** The directory of a layer where its fuse-overlayfs view is mounted on the host side. */
export const MERGED_DIR = 'merged';
/** The record of who holds that mount, next to it. */
export const OWNER_FILE = 'merged.owner';
/** The daemon's stderr (its reason when a mount fails). */
const LOG_FILE = 'merged.log';
/** How often a starting mount is looked for in mountinfo. */
const POLL_MS = 10;
/** How long a mount or an unmount may take before berth gives up (a hung daemon, a hung FUSE request). */
const TOOL_TIMEOUT_MS = 30_000;
/** How long an unmounted daemon has to exit by itself before berth ends it. */
const DAEMON_EXIT_MS = 2_000;

/** Who holds a layer's host-side mount, and which daemon serves it. */
export interface FuseOwnerRecord {
  owner: ProcessIdentity;
  daemon?: ProcessIdentity;
}

/** What stops fuse-overlayfs from working on this host, and the fix; undefined when nothing does. */
export function fuseOverlayfsMissing(): { detail: string; fix: string } | undefined {
  const root = (process.geteuid?.() ?? 0) === 0;
  if (!findTool('fuse-overlayfs')) return { detail: 'the fuse-overlayfs program was not found', fix: 'apt-get install fuse-overlayfs' };
  try {
    accessSync('/dev/fuse', FS.R_OK | FS.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (!root && code === 'EACCES') {
      // Without root the daemon opens the device itself, inside the user namespace: the mode
      // distributions give it (udev: 0666) is what lets it, and nothing berth could do instead.
      return {
        detail: 'the FUSE device /dev/fuse cannot be opened by this user (EACCES: its mode is not the usual 0666)',
        fix: 'as root: chmod 0666 /dev/fuse (udev\'s default; a udev rule KERNEL=="fuse", MODE="0666" keeps it), or use storageDriver "overlay" or "vfs"',
      };
    }
    return {
      detail: `the FUSE device /dev/fuse cannot be opened (${code})`,
      fix: 'give the container the device (docker run --device /dev/fuse; a pod: a hostPath /dev/fuse or a device plugin) or load the fuse module (modprobe fuse)',
    };
  }
  return undefined;
}

/** Throws the typed error of {@link fuseOverlayfsMissing}. @throws UnsupportedError */
export function requireFuseOverlayfs(): string {
  const missing = fuseOverlayfsMissing();
  if (missing) throw new UnsupportedError(`storage driver "fuse-overlayfs": ${missing.detail}; fix: ${missing.fix}`, { option: 'storageDriver', path: '/dev/fuse' });
  return findTool('fuse-overlayfs')!;
}

/** fuse-overlayfs takes its directories in one `-o` string: `,` and `:` separate, so they cannot be in a path. */
function checkOptionPath(path: string, what: string): string {
  if (/[,:\\\n]/.test(path)) {
    throw new UnsupportedError(`storage driver "fuse-overlayfs": the ${what} ${JSON.stringify(path)} has a ",", ":", "\\" or newline, which fuse-overlayfs's options cannot carry: use a state directory whose path has none`, { path });
  }
  return path;
}

export interface FuseMountRequest {
  /** The image's layer directories, top first. */
  lowerDirs: readonly string[];
  upperDir: string;
  workDir: string;
  /** The layer's directory: `merged/` and `merged.owner` are made in it. */
  layerDir: string;
  readonly?: boolean;
}

/** fuse-overlayfs's `-o` string for `request` (every path checked: see {@link checkOptionPath}). */
export function fuseOptionsOf(request: FuseMountRequest): string {
  // An image with no layer (a `{ rootfs }` is one) still needs one lower dir for the option.
  const lowers = request.lowerDirs.map((d) => checkOptionPath(d, 'layer directory'));
  const opts = [
    `lowerdir=${lowers.join(':')}`,
    `upperdir=${checkOptionPath(request.upperDir, 'upper directory')}`,
    `workdir=${checkOptionPath(request.workDir, 'work directory')}`,
    // Whoever the container runs as reads its root: the kernel checks modes (default_permissions).
    'allow_other',
    'default_permissions',
    ...(request.readonly ? ['ro'] : []),
  ];
  return opts.join(',');
}

function argsOf(request: FuseMountRequest, mergedDir: string): string[] {
  return ['-o', fuseOptionsOf(request), checkOptionPath(mergedDir, 'mount point')];
}

function ownerPath(layerDir: string): string {
  return join(layerDir, OWNER_FILE);
}

/** The record of `layerDir`, or undefined (none, or unreadable: nothing of ours to undo). */
export function readOwner(layerDir: string): FuseOwnerRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(ownerPath(layerDir), 'utf8')) as FuseOwnerRecord;
    return r && typeof r.owner?.pid === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}

function writeOwner(layerDir: string, record: FuseOwnerRecord): void {
  const tmp = `${ownerPath(layerDir)}.tmp`;
  writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
  renameSync(tmp, ownerPath(layerDir));
}

/** Makes `owner` (a detached container's monitor) the holder of the host-side mount of `layerDir`. */
export function handOverMount(layerDir: string, owner: ProcessIdentity): void {
  const r = readOwner(layerDir);
  if (r) writeOwner(layerDir, { ...r, owner });
}

/**
 * The daemon serving `mergedDir`: the fuse-overlayfs process whose last argument is it. Its
 * start time makes the record name it and no later process with the same pid.
 */
function findDaemon(mergedDir: string): ProcessIdentity | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = commandLine(Number(name));
    if (argv && isDaemonOf(argv, mergedDir)) {
      const startTime = processStartTime(Number(name));
      if (startTime !== undefined) return { pid: Number(name), startTime };
    }
  }
  return undefined;
}

function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return undefined;
  }
}

function isDaemonOf(argv: string[], mergedDir: string): boolean {
  return argv.length > 1 && /(^|\/)fuse-overlayfs$/.test(argv[0]!) && argv[argv.length - 1] === mergedDir;
}

function failure(detail: string, mergedDir: string, cause?: unknown): SystemError {
  return new SystemError('ERR_FUSE_MOUNT', `fuse-overlayfs could not mount ${mergedDir}: ${detail.trim() || 'it exited without a message'}`, { syscall: 'mount', path: mergedDir, ...(cause ? { cause } : {}) });
}

function logOf(layerDir: string): string {
  return join(layerDir, LOG_FILE);
}

function readLog(layerDir: string): string {
  try {
    return readFileSync(logOf(layerDir), 'utf8').slice(0, 4096);
  } catch {
    return '';
  }
}

interface StartedDaemon {
  mergedDir: string;
  daemon: ProcessIdentity;
}

/**
 * Starts the daemon in the foreground (`-f`) as this process's child in a session of its own:
 * a child is reaped by Node while Node runs, even when Node is a container's PID 1 (a
 * daemonizing fuse-overlayfs would be reparented to it and never reaped), and no signal to
 * Node's process group reaches it. Its stderr goes to `merged.log` (a pipe would kill it with
 * SIGPIPE once Node is gone).
 */
function startDaemon(request: FuseMountRequest): StartedDaemon {
  const program = requireFuseOverlayfs();
  const mergedDir = join(request.layerDir, MERGED_DIR);
  const args = argsOf(request, mergedDir);
  mkdirSync(mergedDir, { recursive: true, mode: 0o700 });
  // Before the mount: a process killed between the two leaves a record to sweep by.
  writeOwner(request.layerDir, { owner: selfIdentity() });
  const log = openSync(logOf(request.layerDir), 'w', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(program, ['-f', ...args], { detached: true, stdio: ['ignore', 'ignore', log] });
  } finally {
    closeSync(log);
  }
  child.on('error', () => {});
  child.unref();
  const startTime = child.pid === undefined ? undefined : processStartTime(child.pid);
  if (child.pid === undefined || startTime === undefined) throw failure(`${program} did not start`, mergedDir);
  const daemon = { pid: child.pid, startTime };
  writeOwner(request.layerDir, { owner: selfIdentity(), daemon });
  return { mergedDir, daemon };
}

/** 'mounted', 'failed' (the daemon is gone) or 'waiting'. */
function mountState(started: StartedDaemon): 'mounted' | 'failed' | 'waiting' {
  if (mountAt(started.mergedDir)?.fstype === 'fuse.fuse-overlayfs') return 'mounted';
  return isAlive(started.daemon) ? 'waiting' : 'failed';
}

/**
 * Starts a fuse-overlayfs daemon that mounts the layer's merged view on `<layerDir>/merged`
 * (the host side), after undoing what an earlier run left there. Resolves with that path once
 * the mount exists.
 * @throws UnsupportedError (binary, device, root, a path fuse-overlayfs cannot take);
 *   SystemError `ERR_FUSE_MOUNT` with fuse-overlayfs's own message.
 */
export async function mountFuseOverlay(request: FuseMountRequest): Promise<string> {
  // A launch mounts a layer its container is not running on (start refuses a running one, a
  // run's layer is new): what an earlier run left (a stopped detached container's mount, a
  // daemon still on its way out) is ended first, so one daemon at a time uses the work dir.
  await releaseFuseMount(request.layerDir);
  const started = startDaemon(request);
  const deadline = Date.now() + TOOL_TIMEOUT_MS;
  let state = mountState(started);
  while (state === 'waiting' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    state = mountState(started);
  }
  if (state !== 'mounted') {
    const detail = state === 'failed' ? readLog(request.layerDir) : `no mount after ${TOOL_TIMEOUT_MS} ms`;
    await releaseFuseMount(request.layerDir);
    throw failure(detail, started.mergedDir);
  }
  return started.mergedDir;
}

/**
 * {@link mountFuseOverlay}, synchronously (bounded by a timeout): for opening a stopped
 * container's root and for the probe, whose callers are synchronous.
 */
export function mountFuseOverlaySync(request: FuseMountRequest): string {
  const started = startDaemon(request);
  const deadline = Date.now() + TOOL_TIMEOUT_MS;
  let state = mountState(started);
  while (state === 'waiting' && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, POLL_MS);
    state = mountState(started);
  }
  if (state !== 'mounted') {
    const detail = state === 'failed' ? readLog(request.layerDir) : `no mount after ${TOOL_TIMEOUT_MS} ms`;
    releaseFuseMountSync(request.layerDir);
    throw failure(detail, started.mergedDir);
  }
  return started.mergedDir;
}

function isMounted(mergedDir: string): boolean {
  return mountAt(mergedDir) !== undefined;
}

/**
 * Detaches the host-side mount of `layerDir` (lazily: a container's mount namespace keeps the
 * filesystem and its daemon for as long as it lives). The record stays, naming the daemon, so
 * a removal can still end it if it outlives its container.
 */
export async function detachHostMount(layerDir: string): Promise<void> {
  const mergedDir = join(layerDir, MERGED_DIR);
  if (isMounted(mergedDir)) await lazyUmount(mergedDir);
}

function umountLazySync(mergedDir: string): void {
  const umount = findTool('umount');
  if (!umount) throw new UnsupportedError('umount was not found: install util-linux (mount)', { path: mergedDir });
  try {
    execFileSync(umount, ['-l', mergedDir], { encoding: 'utf8', timeout: TOOL_TIMEOUT_MS, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    // Gone meanwhile (a racing sweep) is what was wanted.
    if (!isMounted(mergedDir)) return;
    throw new SystemError('ERR_FUSE_UMOUNT', `umount -l ${mergedDir} failed: ${String((error as { stderr?: unknown }).stderr ?? (error as Error).message).trim()}`, { syscall: 'umount2', path: mergedDir, cause: error });
  }
}

/** Whether `daemon` is still the fuse-overlayfs process berth started for `mergedDir`. */
function isOurDaemon(daemon: ProcessIdentity | undefined, mergedDir: string): daemon is ProcessIdentity {
  if (!daemon || !isAlive(daemon)) return false;
  const argv = commandLine(daemon.pid);
  return argv !== undefined && isDaemonOf(argv, mergedDir) && processStartTime(daemon.pid) === daemon.startTime;
}

function endDaemonSync(daemon: ProcessIdentity | undefined, mergedDir: string, waitMs: number): void {
  const deadline = Date.now() + waitMs;
  // The kernel aborted the connection when the last mount went: the daemon is on its way out.
  while (isOurDaemon(daemon, mergedDir) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  if (!isOurDaemon(daemon, mergedDir)) return;
  // Still serving a copy of the mount in some other mount namespace: its container is gone.
  signal(daemon, 'SIGTERM');
  const killBy = Date.now() + waitMs;
  while (isOurDaemon(daemon, mergedDir) && Date.now() < killBy) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  if (isOurDaemon(daemon, mergedDir)) signal(daemon, 'SIGKILL');
}

/** Signals the daemon; one that exited since it was checked (ESRCH) is what was wanted. */
function signal(daemon: ProcessIdentity, sig: NodeJS.Signals): void {
  try {
    process.kill(daemon.pid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function endDaemon(daemon: ProcessIdentity | undefined, mergedDir: string): Promise<void> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (let waited = 0; isOurDaemon(daemon, mergedDir) && waited < DAEMON_EXIT_MS; waited += 20) await sleep(20);
  if (!isOurDaemon(daemon, mergedDir)) return;
  signal(daemon, 'SIGTERM');
  for (let waited = 0; isOurDaemon(daemon, mergedDir) && waited < DAEMON_EXIT_MS; waited += 20) await sleep(20);
  if (isOurDaemon(daemon, mergedDir)) signal(daemon, 'SIGKILL');
}

/**
 * Undoes the fuse-overlayfs mount of `layerDir`: the host-side mount detached, the daemon
 * ended (by its recorded pid, only while it is still that fuse-overlayfs), the record and the
 * empty mount point removed. Nothing to do when there is no record.
 *
 * `sweep`: only when the recorded owner died, and the daemon is waited for but never ended. A
 * detached container whose monitor died may still run (reconcile then keeps it running), its
 * mount namespace holding the filesystem: the daemon then outlives the host-side mount and
 * the record stays, for the container's removal to end it. With no such holder the kernel
 * ends the connection once the host-side mount is gone, and the daemon exits by itself.
 */
export async function releaseFuseMount(layerDir: string, options: { sweep?: boolean } = {}): Promise<boolean> {
  const record = readOwner(layerDir);
  if (!record) return false;
  if (options.sweep && isAlive(record.owner)) return false;
  const mergedDir = join(layerDir, MERGED_DIR);
  if (isMounted(mergedDir)) await lazyUmount(mergedDir);
  const daemon = record.daemon ?? findDaemon(mergedDir);
  if (options.sweep) {
    if (!(await exited(daemon, mergedDir))) return false;
  } else {
    await endDaemon(daemon, mergedDir);
  }
  rmSync(ownerPath(layerDir), { force: true });
  rmSync(logOf(layerDir), { force: true });
  removeMountPoint(mergedDir);
  return true;
}

/** Whether the daemon is gone within {@link DAEMON_EXIT_MS}. */
async function exited(daemon: ProcessIdentity | undefined, mergedDir: string): Promise<boolean> {
  for (let waited = 0; isOurDaemon(daemon, mergedDir) && waited < DAEMON_EXIT_MS; waited += 20) await new Promise((r) => setTimeout(r, 20));
  return !isOurDaemon(daemon, mergedDir);
}

/** The empty mount point; left when something is still mounted there (rmdir(2) refuses). */
function removeMountPoint(mergedDir: string): void {
  try {
    rmdirSync(mergedDir);
  } catch {
    // absent, or busy: nothing more to do
  }
}

/** {@link releaseFuseMount} (not a sweep), synchronously (bounded waits). */
export function releaseFuseMountSync(layerDir: string): void {
  const record = readOwner(layerDir);
  if (!record) return;
  const mergedDir = join(layerDir, MERGED_DIR);
  if (isMounted(mergedDir)) umountLazySync(mergedDir);
  endDaemonSync(record.daemon ?? findDaemon(mergedDir), mergedDir, DAEMON_EXIT_MS);
  rmSync(ownerPath(layerDir), { force: true });
  rmSync(logOf(layerDir), { force: true });
  removeMountPoint(mergedDir);
}

function lazyUmount(mergedDir: string): Promise<void> {
  const umount = findTool('umount');
  if (!umount) return Promise.reject(new UnsupportedError('umount was not found: install util-linux (mount)', { path: mergedDir }));
  return new Promise((resolve, reject) => {
    execFile(umount, ['-l', mergedDir], { encoding: 'utf8', timeout: TOOL_TIMEOUT_MS }, (error, _stdout, stderr) => {
      if (!error || !isMounted(mergedDir)) return resolve();
      reject(new SystemError('ERR_FUSE_UMOUNT', `umount -l ${mergedDir} failed: ${(stderr || error.message).trim()}`, { syscall: 'umount2', path: mergedDir, cause: error }));
    });
  });
}

/**
 * A stopped container's root, opened through a fuse-overlayfs mount that exists only as long
 * as the returned fd: mounted, opened with `open`, then detached at once (the fd keeps the
 * filesystem; closing it ends the daemon). `request.layerDir` is a fresh directory of its own.
 */
export function openThroughFuse(request: FuseMountRequest, open: (mergedDir: string) => number): number {
  const mergedDir = mountFuseOverlaySync(request);
  let fd: number;
  try {
    fd = open(mergedDir);
  } catch (error) {
    releaseFuseMountSync(request.layerDir);
    throw error;
  }
  // The open fd holds the filesystem now; its daemon exits when the fd is closed.
  umountLazySync(mergedDir);
  rmSync(ownerPath(request.layerDir), { force: true });
  rmSync(logOf(request.layerDir), { force: true });
  return fd;
}

/**
 * Sweeps the fuse-overlayfs mounts whose owner died, in the layer directories `layerDirs`
 * (containers' and `run()` layers' directories); returns those it released.
 */
export async function sweepFuseMounts(layerDirs: Iterable<string>): Promise<string[]> {
  const released: string[] = [];
  for (const dir of layerDirs) {
    if (await releaseFuseMount(dir, { sweep: true })) released.push(dir);
  }
  return released;
}
