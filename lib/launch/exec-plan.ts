/**
 * Planning an exec into a running container: the container's own identity and security
 * (capabilities, seccomp, no_new_privs) with the exec's argv, env, user and workdir.
 * @module
 */
import type { NativeLaunchSpec } from '../native.js';
import { CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS, planLaunch, type LaunchContext } from './launch-plan.js';

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
