/**
 * Launching a container process: cgroup, plan, native spawn — with every resource released
 * if any step fails. Shared by `run()` and `Container.start()`.
 * @module
 */
import { accessSync, chmodSync, closeSync, constants, lstatSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Cgroup } from '../cgroup/index.js';
import { AbortError, UnsupportedError, ValidationError } from '../errors.js';
import { assertUserNamespaces, checkIdsMapped, defaultRuntimeDir, isRootless, leaseHeldUserns, rootlessIdMaps, type HeldUsernsLease, type RootlessIdMaps } from '../rootless/index.js';
import type { ContainerConfig } from '../image/manifest.js';
import { execHelperExecutableFd, fromNativeError, helperExecutableFd, MountOpKind, native, type NativeBinding, type NativeErrorShape, type NativeLaunchSpec, type NativeSpawnResult } from '../native.js';
import { prepareNetwork, type PreparedNetwork } from '../network/attach.js';
import { prepareUserModeNetwork, wantsUserModeNetwork } from '../network/usermode-attach.js';
import { prepareRootlessNetwork, wantsRootlessUserNetwork } from '../network/rootless-attach.js';
import type { NetworkService } from '../network/network-service.js';
import { cgroupsForHost } from './cgroup-setup.js';
import { ContainerProcess } from './container-process.js';
import type { ContainerLayerPaths, StorageDriver } from '../storage/driver.js';
import { CLONE_NEWUSER, planLaunch, type LaunchPlan, type LaunchRoot } from './launch-plan.js';
import { createLaunchCgroup, type LimitsSkipped } from './limits.js';
import type { NormalizedRunOptions } from './run-options.js';
import { allocateAutoRange, releaseAutoRange } from './userns.js';

/** Where every container's private tmpfs is mounted, inside its own mount namespace only. */
export const STAGING_DIR = '/run/berth/rootfs';
/** berth's default cap on tasks per container: a fork bomb stops here. */
export const DEFAULT_PIDS_LIMIT = 4096;

/** What an image contributes under the options (Docker's config merge). */
export interface ImageDefaults {
  config?: ContainerConfig;
}

export interface LaunchRequest {
  /** Names the cgroup (`berth/<id>`); unique per launch. */
  id: string;
  root: LaunchRoot;
  argv: string[];
  options: NormalizedRunOptions;
  image?: ImageDefaults;
  /** Create accounting controllers (memory, cpu, freezer…) for stats() and pause(). */
  accounting?: boolean;
  /** A persistent overlay upper dir (containers: diff/commit/export); default a tmpfs that dies with the container. */
  upper?: { upperDir: string; workDir: string };
  /** Keep stdin open as a pipe even without `options.stdin` (attach). */
  stdinPipe?: boolean;
  /** The container outlives this process: no parent-death signal. */
  detached?: boolean;
  /** The runtime's networks: they resolve the network and container names of the options. */
  networks?: NetworkService;
  /** A container of `rt.containers`: its id and name on its networks (default: the launch id, no name). */
  container?: { id: string; name: string };
  /** PID 1 is berth's exec helper parked (`berth-exec park`), the workload comes later over `controlFd` (see `LaunchContext.park`). */
  park?: { controlFd: number };
  /** The native core (default: the addon); unit tests pass the recording fake. */
  native?: NativeBinding;
}

/** A started container process and what must be released after it exits. */
export interface Launched {
  process: ContainerProcess | null;
  cgroup: Cgroup;
  plan: LaunchPlan;
  /** Set when the command could not be executed (exit code 127 or 126, message for stderr). */
  execFailure?: { exitCode: 127 | 126; message: string };
  /** Bridge networks: the caller must `release()` it after the exit (leases, published ports). */
  network?: PreparedNetwork;
  /** The launch runs without a cgroup (see the `limits` option): what it lacks and why. */
  limitsSkipped?: LimitsSkipped;
}

let stagingReady: string | undefined;

/**
 * Where this process's containers assemble their root (inside their own mount namespaces):
 * {@link STAGING_DIR} for root, `<runtime dir>/rootfs` without root (`$XDG_RUNTIME_DIR/berth`).
 */
export function stagingDir(): string {
  return isRootless() ? join(defaultRuntimeDir(), 'rootfs') : STAGING_DIR;
}

/**
 * A rootless staging dir is this user's own and private: in a shared /tmp (no
 * XDG_RUNTIME_DIR) another user could otherwise plant it, or a symlink in its place.
 */
function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const me = process.geteuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== me) {
    throw new ValidationError('XDG_RUNTIME_DIR', `${dir} must be a directory owned by uid ${me} (it is ${st.isSymbolicLink() ? 'a symlink' : `owned by uid ${st.uid}`}); set XDG_RUNTIME_DIR to a private directory of this user`, { path: dir });
  }
  chmodSync(dir, 0o700);
}

/** Creates the staging dir (once per process) with the modes a user-namespaced root needs. */
export function ensureStagingDir(): string {
  if (stagingReady) return stagingReady;
  if (isRootless()) {
    const dir = stagingDir();
    ensurePrivateDir(dirname(dir));
    ensurePrivateDir(dir);
    stagingReady = dir;
    return dir;
  }
  mkdirSync(STAGING_DIR, { recursive: true });
  // Searchable, not readable: a container in a user namespace is "other" to these host-root
  // dirs and must still be able to look up its mount point; it holds nothing on the host.
  chmodSync(dirname(STAGING_DIR), 0o711);
  chmodSync(STAGING_DIR, 0o711);
  stagingReady = STAGING_DIR;
  return STAGING_DIR;
}

/**
 * Without root a bind source the user cannot read would mount, but show the container nothing
 * (or fail deep in the child): refuse it up front, naming it. The user's own permissions are
 * the bound, never widened: root of the container has no capability over host-owned files.
 */
function checkBindsReadable(opts: NormalizedRunOptions): void {
  (opts.mounts ?? []).forEach((m, i) => {
    if (m.type !== 'bind') return;
    let mode = constants.R_OK;
    try {
      if (statSync(m.source).isDirectory()) mode |= constants.X_OK;
      accessSync(m.source, mode);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return; // reported by the plan, as for root
      throw new ValidationError(`mounts[${i}].source`, `${m.source} is not readable by uid ${process.geteuid!()} (${code}): without root berth binds only what its user can read`, { path: m.source });
    }
  });
}

/**
 * A rootless launch's user namespace: the maps of {@link rootlessIdMaps} unless the caller gave
 * explicit ones; `'auto'` draws from a host-wide pool only root can map.
 */
function rootlessUserns(opts: NormalizedRunOptions): { options: NormalizedRunOptions; maps?: RootlessIdMaps } {
  assertUserNamespaces();
  checkBindsReadable(opts);
  if (opts.userns === 'auto') throw new UnsupportedError("userns: 'auto' needs root (it maps host-wide id ranges); without root every container maps root to you and 1..65535 to your /etc/subuid range");
  if (opts.userns !== undefined) return { options: opts };
  const maps = rootlessIdMaps(process.geteuid!(), process.getegid!());
  return { options: { ...opts, userns: { uidMap: maps.uidMap, gidMap: maps.gidMap } }, maps };
}

/** Rewrites misleading errnos into hints, as bubblewrap's mount_strerror does. */
function setupHint(e: { code: string; syscall: string; path?: string }): string | undefined {
  if (e.syscall.startsWith('fsconfig') && e.code === 'EINVAL') return 'overlayfs refused the layers: are they on a filesystem overlayfs supports?';
  if (e.syscall === 'clone' && e.code === 'ENOSPC') return 'namespace limit reached: check /proc/sys/user/max_*_namespaces';
  if (e.syscall === 'open_tree' && e.code === 'ENOENT') return 'the bind source does not exist';
  if (e.syscall === 'write' && e.path?.endsWith('cgroup.procs')) return 'could not join the container cgroup (pids limit reached?)';
  if (isRootless() && ['EACCES', 'EPERM', 'EOVERFLOW'].includes(e.code) && /^(openat|mkdir|symlink|mknod|rename|unlink)/.test(e.syscall)) {
    return `without root, the container's root may write only files whose owner its user namespace maps, and ${e.path ?? 'this path'} belongs to an unmapped owner (a rootfs owned by host root?): use a rootfs your user owns (copy it as yourself), or readonlyRootfs`;
  }
  return undefined;
}


/** A launch made ready: cgroup created, network prepared, spec planned. */
export interface PreparedLaunch {
  cgroup: Cgroup;
  network?: PreparedNetwork;
  plan: LaunchPlan;
  /** Releases the network and removes the cgroup (after a failed or abandoned launch). */
  abandon(): Promise<void>;
  /** Gives back a `userns: 'auto'` range allocated for this launch, once its process is gone. */
  releaseIds?: () => Promise<void>;
  /** Closes what the spawn needed and nothing after it (the held user namespace's lease); call once the spawn returned. Idempotent. */
  spawned?: () => void;
  /** The launch runs without a cgroup (see the `limits` option): what it lacks and why. */
  limitsSkipped?: LimitsSkipped;
  /** The storage driver's host-side part of the root (fuse-overlayfs), told how the spawn went. */
  hostRoot?: HostRoot;
}

/** A root whose driver mounted something on the host side for this launch. */
export interface HostRoot {
  driver: StorageDriver;
  layer: ContainerLayerPaths;
  /** Without root: the root arrived as a detached mount, attached by the spec's `MoveTree` op. */
  detached?: boolean;
}

/**
 * The driver's host-side mount for this launch's root, when its driver has one. A detached
 * root (fuse-overlayfs without root, in the held namespace `userns`) goes into the plan's
 * `MoveTree` op, which the driver emitted without a descriptor.
 */
async function mountHostRoot(req: LaunchRequest, plan: LaunchPlan, userns: HeldUsernsLease | undefined): Promise<HostRoot | undefined> {
  const root = req.root;
  if (root.kind === 'host' || !root.driver?.mountHostRoot || !req.upper) return undefined;
  const made = await root.driver.mountHostRoot(req.upper, root.kind === 'rootfs' ? [root.dir] : root.lowerDirs, userns ? { fd: userns.fd } : undefined);
  if (!made) return { driver: root.driver, layer: req.upper };
  for (const op of plan.spec.mounts) if (op.kind === MountOpKind.MoveTree) op.source = String(made.treeFd);
  return { driver: root.driver, layer: req.upper, detached: true };
}

const CAP_MKNOD = 27n;

/**
 * Without a cgroup there is no device whitelist. In a user namespace the kernel refuses device
 * nodes anyway; outside one, CAP_MKNOD would let the container make /dev/sda and read the
 * host's disk, so it goes.
 */
function withoutDeviceNodes(spec: NativeLaunchSpec): void {
  if ((spec.cloneFlags & CLONE_NEWUSER) !== 0) return;
  const bit = 1n << CAP_MKNOD;
  for (const set of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const) spec.capabilities[set] &= ~bit;
}

/**
 * Everything before the spawn, shared by `launch()` and the detached launcher: the cgroup, the
 * network (leases, ports, rules) and the plan. On failure nothing is left behind.
 */
export async function prepareLaunch(req: LaunchRequest, how: { accounting: boolean; stdinPiped: boolean }): Promise<PreparedLaunch> {
  const opts = req.options;
  if (opts.signal?.aborted) throw new AbortError('aborted before the container started', { cause: opts.signal.reason });
  const staging = ensureStagingDir();
  const rootless = isRootless() ? rootlessUserns(opts) : undefined;
  const { cgroup, skipped } = createLaunchCgroup({
    id: req.id,
    driver: () => cgroupsForHost().driver,
    limits: {
      memory: opts.memory,
      memorySwap: opts.memorySwap,
      cpus: opts.cpus,
      cpuShares: opts.cpuShares,
      cpuset: opts.cpuset,
      pids: opts.pids ?? DEFAULT_PIDS_LIMIT,
    },
    requested: opts,
    mode: opts.limits ?? 'strict',
    // Without root the container is in a user namespace, where device nodes cannot be made.
    options: { accounting: how.accounting, ...(isRootless() ? { devices: false } : {}) },
  });
  let network: PreparedNetwork | undefined;
  let idRange: { key: string } | undefined;
  let hostRoot: HostRoot | undefined;
  let userns: HeldUsernsLease | undefined;
  const spawned = (): void => userns?.release();
  const abandon = async (): Promise<void> => {
    spawned();
    await hostRoot?.driver.afterSpawn?.(hostRoot.layer, { kind: 'failed' }).catch(() => {});
    await network?.release().catch(() => {});
    if (idRange) await releaseAutoRange(idRange.key).catch(() => {});
    try {
      cgroup.remove({ timeoutMs: 1000 });
    } catch {
      // the launch error is the one to report
    }
  };
  try {
    network = await prepareLaunchNetwork(req, rootless !== undefined);
    const image = req.image?.config;
    let options = rootless?.options ?? opts;
    if (options.userns === 'auto') {
      // A range of its own until it exits (lib/launch/userns.ts); containers of
      // rt.containers come here with the explicit maps allocated at create.
      idRange = { key: `run:${req.id}` };
      const range = await allocateAutoRange(idRange);
      options = { ...opts, userns: { uidMap: range.uidMap, gidMap: range.gidMap } };
    }
    const plan = planLaunch({
      root: req.root,
      argv: req.argv,
      options,
      stagingDir: staging,
      cgroupProcs: cgroup.procsFiles,
      // v2: born in the cgroup. A cgroup.procs write (the fallback, and all v1 can do) takes the
      // kernel's threadgroup rwsem for writing, which waits a grace period when idle (~10 ms).
      ...(cgroup.version === 2 && cgroup.paths[0] ? { cgroupDir: cgroup.paths[0] } : {}),
      cgroupMounts: skipped ? [] : cgroupsForHost().mountsFor(cgroup),
      // A parked PID 1 is `berth-exec park` (freestanding, a few pages): the command's execve
      // tears its address space down on the request's path (src-native/park-main.cc).
      ...(req.park ? { initFd: execHelperExecutableFd() } : opts.init ? { initFd: helperExecutableFd() } : {}),
      ...(req.park ? { park: req.park } : {}),
      ...(image?.Env ? { imageEnv: image.Env } : {}),
      ...(image?.WorkingDir ? { imageWorkdir: image.WorkingDir } : {}),
      ...(image?.User ? { imageUser: image.User } : {}),
      ...(req.upper ? { upper: req.upper } : {}),
      stdinPiped: how.stdinPiped,
      ...(network ? { network } : {}),
    });
    if (skipped) withoutDeviceNodes(plan.spec);
    if (rootless) {
      plan.spec.unprivileged = true;
      if (rootless.maps) {
        checkIdsMapped(rootless.maps, plan.user, process.env['USER'] ?? String(process.geteuid!()));
        // Created inside this process's held namespace: no newuidmap/newgidmap per launch
        // (lib/rootless/held-userns.ts). Explicit maps of the caller still get a namespace of their own.
        userns = await leaseHeldUserns(rootless.maps);
        plan.spec.joinUserns = { fd: userns.fd, setgroupsDenied: userns.setgroupsDenied };
      }
    }
    // Last: what the plan refuses (a user namespace on fuse-overlayfs as root) starts no daemon;
    // without root the daemon runs in the held namespace just leased.
    hostRoot = await mountHostRoot(req, plan, userns);
    const releaseIds = idRange ? () => releaseAutoRange(idRange!.key) : undefined;
    return { cgroup, plan, abandon, spawned, ...(network ? { network } : {}), ...(releaseIds ? { releaseIds } : {}), ...(skipped ? { limitsSkipped: skipped } : {}), ...(hostRoot ? { hostRoot } : {}) };
  } catch (error) {
    await abandon();
    throw error;
  }
}

/**
 * The launch's network: without root a user network (a name of `rt.networks`) is a veth into
 * this process's rootless network namespace (lib/network/rootless-attach.ts), and the other
 * bridge-kind networks are the container's own namespace with a user-mode stack
 * (lib/network/usermode-attach.ts), which a detached container's monitor starts itself (so
 * only its plan is made here); with root, bridges and leases.
 */
async function prepareLaunchNetwork(req: LaunchRequest, rootless: boolean): Promise<PreparedNetwork | undefined> {
  const opts = req.options;
  if (rootless && wantsRootlessUserNetwork(opts)) {
    return prepareRootlessNetwork({ launchId: req.id, options: opts, ...(req.networks ? { networks: req.networks } : {}), ...(req.container ? { container: req.container } : {}) });
  }
  if (rootless && wantsUserModeNetwork(opts)) return prepareUserModeNetwork({ launchId: req.id, options: opts });
  if (opts.hostLoopback) throw new ValidationError('hostLoopback', "applies to a user-mode network (a Node process without root); a bridge network never leads to the host's loopback");
  return prepareNetwork({
    launchId: req.id,
    options: opts,
    ...(req.networks ? { networks: req.networks } : {}),
    ...(req.container ? { container: req.container } : {}),
  });
}

/** The message and exit code Docker gives when the command cannot be executed. */
export function execFailureOf(f: NativeErrorShape & { notFound: boolean }, argv0: string): { exitCode: 127 | 126; message: string } {
  const message = f.notFound
    ? `berth: exec: "${argv0}": executable file not found in $PATH\n`
    : `berth: exec: "${f.path ?? argv0}": ${f.code === 'EACCES' ? 'permission denied' : f.message}\n`;
  return { exitCode: f.notFound ? 127 : 126, message };
}

/**
 * Creates the cgroup, plans and spawns. On any failure the cgroup is removed before the
 * error propagates; on success the caller owns `cgroup` and must remove it after exit.
 */
export async function launch(req: LaunchRequest): Promise<Launched> {
  const prepared = await prepareLaunch(req, {
    accounting: req.accounting === true,
    stdinPiped: req.options.stdin !== undefined || req.stdinPipe === true,
  });
  return spawnPrepared(req, prepared);
}

/**
 * The spawn of a prepared launch. On any failure `prepared.abandon()` runs (network, ids,
 * cgroup) before the error propagates, as a `SystemError` with a hint for the errnos
 * that mislead; a command that cannot be executed is a result (`execFailure`), not an error.
 */
export async function spawnPrepared(req: LaunchRequest, prepared: PreparedLaunch): Promise<Launched> {
  const { cgroup, network, plan, abandon, releaseIds, limitsSkipped, hostRoot, spawned: closeSpawnFds } = prepared;
  const skipped = limitsSkipped ? { limitsSkipped } : {};
  const binding = req.native ?? native();
  try {
    if (req.detached) plan.spec.dieWithParent = false;
    let spawned: NativeSpawnResult;
    try {
      spawned = await binding.spawn(plan.spec, network?.beforeGo ? (pid) => network.beforeGo!(pid) : undefined);
    } catch (error) {
      throw fromNativeError(error, { hint: setupHint });
    } finally {
      network?.closeFds();
      closeSpawnFds?.();
    }
    // The container's mount namespace holds its root now (or the exec failed: nothing does).
    await hostRoot?.driver.afterSpawn?.(hostRoot.layer, { kind: spawned.execFailed ? 'failed' : 'attached' });
    if (spawned.execFailed) {
      for (const fd of spawned.stdio) if (fd >= 0) closeSync(fd);
      await network?.release();
      await releaseIds?.();
      return { process: null, cgroup, plan, execFailure: execFailureOf(spawned.execFailed, req.argv[0]!), ...skipped };
    }
    await network?.started(spawned.pid);
    const proc = new ContainerProcess(spawned);
    // The ids are free again once nothing of the container runs: its PID 1 exited and, with a
    // pid namespace, the kernel killed everything else in it.
    if (releaseIds) void proc.exited.finally(() => releaseIds().catch(() => {}));
    return { process: proc, cgroup, plan, ...(network ? { network } : {}), ...skipped };
  } catch (error) {
    await abandon();
    throw error;
  }
}
