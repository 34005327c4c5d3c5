/**
 * Turns validated options plus host facts into the native launch spec: namespaces, mounts,
 * identity, capabilities, seccomp, rlimits, argv/env. No side effects but reading files.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { hostname as hostHostname } from 'node:os';
import { NotFoundError, ValidationError } from '../errors.js';
import { CreateKind, StdioMode, type NativeLaunchSpec } from '../native.js';
import { planHostEtc, planHostRootSymlinks } from '../rootfs/host-etc.js';
import { resolveUser, type ResolvedUser } from '../rootfs/passwd.js';
import { maskToNames, resolveCapabilities } from '../security/capabilities.js';
import { seccompProgramFor } from '../security/seccomp/index.js';
import { planRootfs, type CgroupMount, type RootfsSource } from './rootfs-plan.js';
import type { ContainerLayerPaths, StorageDriver } from '../storage/driver.js';
import { overlayDriver } from '../storage/overlay-driver.js';
import type { NormalizedRunOptions } from './run-options.js';
import { resolveRlimits } from './rlimits.js';
import { resolveIdMaps } from './userns.js';
import { readRootFiles } from '../rootfs/root-files.js';
import { networkKind, type PreparedNetwork } from '../network/attach.js';
import { renderResolvConf } from '../network/etc-files.js';
import { netnsSysctlOps } from '../network/netns-sysctls.js';

export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

/** Docker's default PATH for containers. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The root filesystem a launch starts from, as the caller resolved it. `driver` is the storage
 * driver that makes a root of the directory or layers; default kernel `overlay`.
 */
export type LaunchRoot =
  | { kind: 'rootfs'; dir: string; driver?: StorageDriver }
  | { kind: 'layers'; lowerDirs: string[]; driver?: StorageDriver }
  | { kind: 'host' };

export interface LaunchContext {
  root: LaunchRoot;
  argv: string[];
  options: NormalizedRunOptions;
  stagingDir: string;
  cgroupProcs: readonly string[];
  /** cgroup v2: the container's cgroup directory, to clone straight into (CLONE_INTO_CGROUP). */
  cgroupDir?: string;
  cgroupMounts: CgroupMount[];
  /** Image defaults (Env, WorkingDir, User) applied under the options. */
  imageEnv?: string[];
  imageWorkdir?: string;
  imageUser?: string;
  /** The sealed init helper's fd when `init` is set; with `park`, berth-exec's (it is the parked PID 1). */
  initFd?: number;
  /**
   * PID 1 is berth-exec parked (`berth-exec park`, src-native/park-main.cc): it runs no
   * command and waits until the workload arrives on `controlFd` (its stdin; the rest of its
   * stdio is `/dev/null`), and becomes it (a pooled sandbox, lib/launch/parked.ts).
   * It runs as the sandbox's root with the workload's capabilities plus those that switching
   * to the workload's user and bounding set needs, and under the workload's seccomp filter,
   * which the workload inherits: the workload's own spec then applies exactly what it says.
   */
  park?: { controlFd: number };
  stdinPiped: boolean;
  /** The container's persistent layer (its storage driver's directories); default: a throw-away one in a tmpfs that dies with the container. */
  upper?: ContainerLayerPaths;
  /** Bridge or `container:` networking, prepared by `prepareNetwork()` (lib/network/attach.ts). */
  network?: Pick<PreparedNetwork, 'kind' | 'hostname' | 'files' | 'interfaces' | 'netnsFd' | 'dns'>;
}

/** What to launch plus facts the caller needs afterwards. */
export interface LaunchPlan {
  spec: NativeLaunchSpec;
  hostname: string;
  user: ResolvedUser;
  /**
   * The workload's capability set (bounding = effective = permitted). Equal to the spec's,
   * except for a parked PID 1, which holds three more until it becomes the workload.
   */
  capabilityMask: bigint;
}

function readSmallFile(path: string): string | undefined {
  try {
    // Never follow a symlink out of a rootfs: /etc/passwd -> /host/file would leak host data.
    if (!lstatSync(path).isFile()) return undefined;
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The container's /etc/passwd and /etc/group, as it will see them: an image or rootfs is read
 * confined to itself (its /etc may be a symlink to the host's: lib/rootfs/root-files.ts); the
 * host's own root is the host's.
 */
function readAccountFiles(root: LaunchRoot): [string | undefined, string | undefined] {
  if (root.kind === 'host') return [readSmallFile('/etc/passwd'), readSmallFile('/etc/group')];
  const [passwd, group] = readRootFiles(root.kind === 'layers' ? root.lowerDirs : [root.dir], ['/etc/passwd', '/etc/group']);
  return [passwd, group];
}

function resolveIdentity(ctx: LaunchContext): ResolvedUser {
  const user = ctx.options.user ?? ctx.imageUser;
  const [passwd, group = ''] = readAccountFiles(ctx.root);
  if (user !== undefined && user !== '' && !/^\d+(:\d+)?$/.test(user) && passwd === undefined) {
    throw new NotFoundError(`user: unable to find user ${user}: no /etc/passwd in the root filesystem`, { option: 'user' });
  }
  return resolveUser(user, { passwd: passwd ?? '', group });
}

/** Every capability the kernel may know of (bits 0..63): the set of a user namespace's root. */
const ALL_CAPABILITIES = (1n << 64n) - 1n;

let ownPermitted: bigint | undefined;
/** This process's permitted capabilities: a child can never be given more. */
export function ownPermittedCapabilities(status?: string): bigint {
  if (status === undefined && ownPermitted !== undefined) return ownPermitted;
  const m = /^CapPrm:\s*([0-9a-f]+)$/m.exec(status ?? readFileSync('/proc/self/status', 'utf8'));
  const value = m ? BigInt(`0x${m[1]}`) : 0n;
  if (status === undefined) ownPermitted = value;
  return value;
}

/**
 * `privileged` means every capability *this process* holds (root on some hosts lacks
 * CAP_SYS_RESOURCE); an explicit `capAdd` of one it lacks is refused with the reason.
 */
export function grantableCapabilities(
  caps: { names: string[]; mask: bigint },
  privileged: boolean,
  own = ownPermittedCapabilities(),
): { names: string[]; mask: bigint } {
  const missing = caps.mask & ~own;
  if (missing === 0n) return caps;
  if (privileged) {
    const mask = caps.mask & own;
    return { names: maskToNames(mask), mask };
  }
  throw new ValidationError('capAdd', `${maskToNames(missing).join(', ')} cannot be granted: this process does not hold it`);
}

const hostDirCache = new Map<string, boolean>();
/** Host /etc entries do not change kind between runs; stat each once per process. */
function isHostDir(path: string): boolean {
  let dir = hostDirCache.get(path);
  if (dir === undefined) {
    try {
      dir = statSync(path).isDirectory();
    } catch {
      dir = false;
    }
    hostDirCache.set(path, dir);
  }
  return dir;
}


function buildEnv(ctx: LaunchContext, hostname: string, user: ResolvedUser): string[] {
  const env = new Map<string, string>([
    ['PATH', DEFAULT_PATH],
    ['HOSTNAME', hostname],
  ]);
  for (const kv of ctx.imageEnv ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  if (ctx.options.tty) env.set('TERM', 'xterm');
  if (!env.has('HOME')) env.set('HOME', user.home || '/');
  for (const [k, v] of Object.entries(ctx.options.env ?? {})) {
    if (v === undefined) env.delete(k);
    else env.set(k, v);
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** Where execve will look, in order: Docker resolves argv[0] through the container's PATH. */
export function execCandidates(argv0: string, path: string): string[] {
  if (argv0.includes('/')) return [argv0];
  const dirs = path.split(':').map((d) => (d === '' ? '.' : d));
  return dirs.map((d) => `${d.replace(/\/+$/, '')}/${argv0}`);
}

/** The PATH argv[0] is resolved on: the one of the command's environment, else Docker's default. */
function pathOf(env: readonly string[]): string {
  return env.find((kv) => kv.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
}

/** A command's stdio (not a parked init's, not a terminal): stdin a pipe or /dev/null, output pipes. */
function commandStdio(stdinPiped: boolean): NativeLaunchSpec['stdio'] {
  return [{ mode: stdinPiped ? StdioMode.Pipe : StdioMode.Null }, { mode: StdioMode.Pipe }, { mode: StdioMode.Pipe }];
}

/**
 * `spec`, the plan of a command run without init (`planLaunch()`'s or `planExec()`'s), for
 * another argv and stdin. Only these fields depend on the command, and they are computed here
 * as `planLaunch()` computes them; everything else (identity, capabilities, env, rlimits,
 * workdir) stays. A pooled sandbox plans its exec once, before the request
 * (launch/parked.ts): planning reads the rootfs's passwd and group files, builds the seccomp
 * program and the mounts, ≈ 1 ms of a pooled `/bin/true`.
 */
export function withCommand(spec: NativeLaunchSpec, argv: readonly string[], stdinPiped: boolean): NativeLaunchSpec {
  return { ...spec, argv: [...argv], execCandidates: execCandidates(argv[0]!, pathOf(spec.env)), stdio: commandStdio(stdinPiped) };
}

function hostsFile(hostname: string, extra: ReadonlyArray<{ host: string; ip: string }> = []): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n${extra.map((h) => `${h.ip}\t${h.host}\n`).join('')}`;
}

let hostRootPlan: ReturnType<typeof planHostRootSymlinks> | undefined;

function rootSource(ctx: LaunchContext): RootfsSource {
  if (ctx.root.kind === 'host') {
    // Whether /bin is a symlink into /usr does not change while a process runs.
    hostRootPlan ??= planHostRootSymlinks('/');
    return { kind: 'host', rootBinds: hostRootPlan.binds, rootSymlinks: hostRootPlan.symlinks };
  }
  return { kind: 'layers', lowerDirs: ctx.root.kind === 'rootfs' ? [ctx.root.dir] : ctx.root.lowerDirs, driver: ctx.root.driver ?? overlayDriver };
}

function bindCreateKinds(spec: NativeLaunchSpec, ctx: LaunchContext): void {
  // A bind's mount point must match its source: a file over a file, a dir over a dir.
  for (const m of ctx.options.mounts ?? []) {
    if (m.type !== 'bind') continue;
    let isDir: boolean;
    try {
      isDir = statSync(m.source).isDirectory();
    } catch {
      throw new NotFoundError(`mounts: bind source "${m.source}" does not exist`, { option: 'mounts', path: m.source });
    }
    const op = spec.mounts.find((o) => o.source === m.source && o.target === m.target);
    if (op) op.create = isDir ? CreateKind.Dir : CreateKind.File;
  }
}

/** Builds the launch spec for one container process. */
/**
 * What a parked PID 1 needs beyond the workload's capabilities to become the workload:
 * CAP_SETGID and CAP_SETUID (setgroups, setresgid, setresuid) and CAP_SETPCAP (dropping from
 * the bounding set), as an exec from the host has them. The workload drops them again.
 */
const PARK_CAPS = (1n << 6n) | (1n << 7n) | (1n << 8n);

export function planLaunch(ctx: LaunchContext): LaunchPlan {
  const o = ctx.options;
  const network = networkKind(o);
  const net = ctx.network;
  const userns = o.userns !== undefined;
  const hostname = net?.hostname ?? o.hostname ?? (network === 'host' ? hostHostname() : randomBytes(6).toString('hex'));
  const user = resolveIdentity(ctx);
  const workdir = o.workdir ?? ctx.imageWorkdir ?? '/';
  // Without root, the container's capabilities are those of its own user namespace, where the
  // child holds every one; this process's (empty) set is not the bound.
  const own = userns && (process.geteuid?.() ?? 0) !== 0 ? ALL_CAPABILITIES : ownPermittedCapabilities();
  const caps = grantableCapabilities(resolveCapabilities({ capAdd: o.capAdd, capDrop: o.capDrop, privileged: o.privileged }), o.privileged === true, own);
  const seccomp = o.privileged ? null : seccompProgramFor(o.seccomp ?? 'default', caps.names);

  const files: Array<{ path: string; content: string; mode: number }> = [];
  const readonlyBinds: Array<{ path: string; dir: boolean }> = [];
  const symlinks: Array<{ path: string; target: string }> = [];
  const dirs: Array<{ path: string; mode: number }> = [];
  const resolvConf =
    net?.files.resolvConf ??
    (network === 'host' ? readSmallFile('/etc/resolv.conf') : o.dns ? renderResolvConf(undefined, o.dns) : undefined);
  if (ctx.root.kind === 'host') {
    const etc = planHostEtc({
      hostname,
      user: { uid: user.uid, gid: user.gid, home: user.home || '/', ...(user.name ? { name: user.name } : {}) },
      ...(resolvConf !== undefined ? { resolvConf } : {}),
    });
    dirs.push({ path: '/etc', mode: 0o755 }, { path: '/tmp', mode: 0o1777 }, { path: '/var/tmp', mode: 0o1777 }, { path: '/root', mode: 0o700 });
    if (user.home && user.home !== '/' && user.home !== '/root') dirs.push({ path: user.home, mode: 0o755 });
    readonlyBinds.push(...etc.binds.map((path) => ({ path, dir: isHostDir(path) })));
    symlinks.push(...etc.symlinks);
    files.push(...etc.files.map((f) => (f.path === '/etc/hosts' && net ? { ...f, content: net.files.hosts } : f)));
  } else {
    const hosts = net?.files.hosts ?? (network === 'host' ? readSmallFile('/etc/hosts') ?? hostsFile(hostname) : hostsFile(hostname, o.extraHosts));
    files.push(
      { path: '/etc/hostname', content: `${hostname}\n`, mode: 0o644 },
      { path: '/etc/hosts', content: hosts, mode: 0o644 },
      { path: '/etc/resolv.conf', content: resolvConf ?? '# berth: network "none" has no DNS\n', mode: 0o644 },
    );
  }
  const mounts = planRootfs({
    source: rootSource(ctx),
    stagingDir: ctx.stagingDir,
    userns,
    netns: network !== 'host',
    privileged: o.privileged === true,
    readonlyRootfs: o.readonlyRootfs === true,
    files,
    readonlyBinds,
    symlinks,
    cgroupMounts: ctx.cgroupMounts,
    workdir,
    mounts: o.mounts ?? [],
    dirs,
    // The host's own tools need a writable /tmp: a fresh tmpfs, as bubblewrap gives.
    tmpfs: ctx.root.kind === 'host' ? [{ path: '/tmp', mode: 0o1777 }] : [],
    ...(ctx.upper ? { upper: ctx.upper } : {}),
  });
  const env = buildEnv(ctx, hostname, user);
  const park = ctx.park !== undefined && ctx.initFd !== undefined;
  const init = (o.init === true || park) && ctx.initFd !== undefined;
  let cloneFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID;
  // `container:<id>`: no namespace of its own; the child joins the other one (spec.netnsFd).
  if (network !== 'host' && network !== 'container') cloneFlags |= CLONE_NEWNET;
  const idMaps = userns ? resolveIdMaps(o.userns!) : undefined;
  if (idMaps) cloneFlags |= CLONE_NEWUSER;
  mounts.push(...netnsSysctlOps(network, idMaps?.gidMap));

  const spec: NativeLaunchSpec = {
    cloneFlags,
    newCgroupNs: true,
    ...(idMaps ? { uidMap: idMaps.uidMap, gidMap: idMaps.gidMap } : {}),
    cgroupProcs: [...ctx.cgroupProcs],
    ...(ctx.cgroupDir ? { cgroupDir: ctx.cgroupDir } : {}),
    mounts,
    hostname,
    loopbackUp: network === 'none' || network === 'bridge',
    rlimits: resolveRlimits(o.ulimits),
    uid: park ? 0 : user.uid,
    gid: park ? 0 : user.gid,
    groups: park ? [] : user.additionalGids,
    capabilities: {
      bounding: park ? caps.mask | PARK_CAPS : caps.mask,
      effective: park ? caps.mask | PARK_CAPS : caps.mask,
      permitted: park ? caps.mask | PARK_CAPS : caps.mask,
      // Empty, as Docker since CVE-2022-24769: inheritable caps would survive into
      // non-root programs with matching file capabilities.
      inheritable: 0n,
      ambient: 0n,
    },
    noNewPrivileges: true,
    seccomp,
    dieWithParent: true,
    cwd: workdir,
    argv: park ? ['berth-init', 'park'] : init ? ['berth-init', 'init', '--', ...ctx.argv] : ctx.argv,
    env,
    execCandidates: init ? [] : execCandidates(ctx.argv[0]!, pathOf(env)),
    execFd: init ? ctx.initFd! : -1,
    stdio: park
      ? [{ mode: StdioMode.InheritFd, fd: ctx.park!.controlFd }, { mode: StdioMode.Null }, { mode: StdioMode.Null }]
      : commandStdio(ctx.stdinPiped),
    tty: o.tty === true,
    ...(net && net.interfaces.length > 0 ? { interfaces: net.interfaces } : {}),
    ...(net?.netnsFd !== undefined ? { netnsFd: net.netnsFd } : {}),
    ...(net?.dns && net.interfaces.length > 0 ? { dns: net.dns } : {}),
  };
  bindCreateKinds(spec, ctx);
  return { spec, hostname, user, capabilityMask: caps.mask };
}
