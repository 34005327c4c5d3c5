/**
 * Planning an exec into a running container: the container's own identity and security
 * (capabilities, seccomp, no_new_privs) with the exec's argv, env, user and workdir.
 * @module
 */
import type { ContainerConfig } from '../image/manifest.js';
import type { NativeLaunchSpec } from '../native.js';
import { CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS, planLaunch, type LaunchContext, type LaunchPlan, type LaunchRoot } from './launch-plan.js';
import type { NormalizedRunOptions } from './run-options.js';

export const CLONE_NEWCGROUP = 0x02000000;

/** Options of an exec, with Docker's names. */
export interface ExecOptions {
  /** Extra environment, over the container's. */
  env?: Record<string, string | undefined>;
  /** User to run as (default: the container's). */
  user?: string;
  /** Working directory (default: the container's). */
  workdir?: string;
  /** Allocate a terminal. */
  tty?: boolean;
  /** Keep a stdin pipe (string/Buffer/Readable data, or `true` for an open pipe). */
  stdin?: boolean;
}

/** The namespaces an exec joins, given how the container was created. */
export function execNamespaces(container: { network: 'none' | 'host' | string; userns: boolean }): number {
  let flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWCGROUP;
  if (container.network !== 'host') flags |= CLONE_NEWNET;
  if (container.userns) flags |= CLONE_NEWUSER;
  return flags;
}

/**
 * A launch spec that joins the container of `pidfd`. `ctx` is the container's launch context
 * with the exec's argv and options merged in (env over the container's, user, workdir).
 */
export function planExec(ctx: LaunchContext, join: { pidfd: number; namespaces: number; helperFd: number }): NativeLaunchSpec {
  const { spec } = planLaunch(ctx);
  return {
    ...spec,
    // The cloned helper child creates nothing: it joins, then forks into the pid namespace.
    cloneFlags: 0,
    newCgroupNs: false,
    uidMap: undefined,
    gidMap: undefined,
    mounts: [],
    hostname: undefined,
    loopbackUp: false,
    join,
  } as NativeLaunchSpec;
}

/**
 * The launch context of a command run in a parked sandbox (lib/launch/parked.ts): the sandbox's
 * options with the command's env, user and workdir over them, in the sandbox's hostname, with
 * nothing the launch already did (mounts, network, init).
 */
export function parkedExecContext(
  sandbox: { root: LaunchRoot; options: NormalizedRunOptions; image?: { config?: ContainerConfig } },
  launched: LaunchPlan,
  argv: string[],
  command: { env?: Record<string, string | undefined>; user?: string; workdir?: string },
  stdinPiped: boolean,
  stagingDir: string,
  cgroupProcs: readonly string[],
): LaunchContext {
  const base = sandbox.options;
  const options: NormalizedRunOptions = {
    ...base,
    env: { ...(base.env ?? {}), ...(command.env ?? {}) },
    hostname: launched.hostname,
    mounts: [],
    init: false,
    tty: false,
    // The sandbox's network is set up already; the workload is born in its namespace.
    network: 'none',
    ...(command.workdir !== undefined ? { workdir: command.workdir } : {}),
    ...(command.user !== undefined ? { user: command.user } : {}),
  };
  delete options.networks;
  delete options.ports;
  const image = sandbox.image?.config;
  return {
    root: sandbox.root,
    argv,
    options,
    stagingDir,
    cgroupProcs,
    cgroupMounts: [],
    ...(image?.Env ? { imageEnv: image.Env } : {}),
    ...(image?.WorkingDir ? { imageWorkdir: image.WorkingDir } : {}),
    ...(image?.User ? { imageUser: image.User } : {}),
    stdinPiped,
  };
}

/**
 * The exec plan of a parked sandbox's own workload (lib/launch/parked.ts), derived from the
 * launch plan its PID 1 was started with instead of planned again: the same user, env, workdir,
 * rlimits and capabilities, without what only the launch does (namespaces, mounts, cgroup,
 * network, the id maps) and without the three capabilities only the parked PID 1 holds. Planning
 * it again read the rootfs's passwd and group a second time and made mounts to discard: a
 * sixth of the pool's refill on Node's thread. argv, execCandidates and stdio are the
 * request's (`withCommand()`); seccomp is null because PID 1 loaded that very filter at launch
 * and a filter is kept across execve.
 */
export function parkedWorkloadPlan(plan: LaunchPlan): NativeLaunchSpec {
  const { spec, user, capabilityMask: mask } = plan;
  const { uidMap: _u, gidMap: _g, cgroupDir: _c, interfaces: _i, netnsFd: _n, dns: _d, unprivileged: _p, joinUserns: _j, idMapHelpers: _h, ...kept } = spec;
  return {
    ...kept,
    cloneFlags: 0,
    newCgroupNs: false,
    cgroupProcs: [],
    mounts: [],
    hostname: undefined,
    loopbackUp: false,
    uid: user.uid,
    gid: user.gid,
    groups: user.additionalGids,
    capabilities: { ...spec.capabilities, bounding: mask, effective: mask, permitted: mask },
    seccomp: null,
    execFd: -1,
    argv: [],
    execCandidates: [],
    join: { pidfd: -1, namespaces: 0, helperFd: -1 },
  } as NativeLaunchSpec;
}
