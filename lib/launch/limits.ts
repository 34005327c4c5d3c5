/**
 * The `limits` launch option: what happens when berth may not create the container's cgroup
 * (rootless on cgroup v1, no delegated v2 subtree, a read-only cgroupfs, no cgroupfs at all).
 * `'strict'` (the default) refuses a launch that asked for memory, CPU or pids limits, naming
 * why and the fix; `'best-effort'` runs it without a cgroup and says so in the result. A launch
 * that asked for no limit runs either way: only berth's own default pids limit is lost, and the
 * result reports that too.
 * @module
 */
import { userInfo } from 'node:os';
import { AbsentCgroup } from '../cgroup/absent.js';
import { CgroupUnavailableError, type Cgroup, type CgroupDriver, type CgroupLimits, type CgroupOptions } from '../cgroup/index.js';
import { UnsupportedError, isBerthError } from '../errors.js';

/** How resource limits are treated where berth cannot create a cgroup. */
export type LimitsMode = 'strict' | 'best-effort';

/** The modes {@link LimitsMode} allows, for validation messages. */
export const LIMITS_MODES: readonly LimitsMode[] = ['strict', 'best-effort'];

/** Limits a launch ran without (only under `limits: 'best-effort'`, or berth's default pids limit). */
export interface LimitsSkipped {
  /**
   * The options whose limit is not in force, in option names (`memory`, `cpus`, `pids`...).
   * `pids` is listed when berth's default pids limit (4096) could not be set either.
   */
  readonly options: readonly string[];
  /** Why no cgroup could be made. */
  readonly reason: string;
  /** What would make limits work on this host. */
  readonly fix: string;
}

/** Launch options that need a cgroup, by option name. */
const LIMIT_OPTIONS = ['memory', 'memorySwap', 'cpus', 'cpuShares', 'cpuset', 'pids'] as const;

/** What the caller asked for, by option name; `pids` of berth's default is not asked for. */
export type RequestedLimits = Partial<Record<(typeof LIMIT_OPTIONS)[number], number | string | undefined>>;

/** The errno codes of "this process may not make a cgroup here". Anything else is a real failure. */
const DENIED = new Set(['EACCES', 'EPERM', 'EROFS']);

/** Why and how to fix it, from the refusal and the host's cgroup version. */
function explain(error: Error & { code?: string; path?: string }, version: 1 | 2 | null, uid: number): { reason: string; fix: string } {
  // The driver's probe already knows why (a read-only mount, a foreign tree) and the fix.
  if (error instanceof CgroupUnavailableError) return { reason: error.reason, fix: error.fix };
  const who = uid === 0 ? 'root' : `uid ${uid}`;
  if (version === null) return { reason: error.message, fix: 'mount a cgroup filesystem (mount -t cgroup2 none /sys/fs/cgroup)' };
  if (error.code === 'EROFS') {
    return { reason: `the cgroup filesystem is read-only here (${error.path ?? 'cgroupfs'}): berth runs where it may not create cgroups, e.g. inside another container`, fix: 'mount the cgroup filesystem read-write (for a container: give it a writable cgroup namespace)' };
  }
  const where = error.path ?? 'the cgroup filesystem';
  if (version === 1) {
    const user = uid === 0 ? 'root' : safeUserName(uid);
    if (uid === 0) return { reason: `root may not create cgroups in ${where} (${error.code ?? 'denied'}): berth runs without CAP_SYS_ADMIN over the cgroup filesystem, e.g. in a container`, fix: 'give berth a writable cgroup filesystem' };
    return {
      reason: `${who} may not create cgroups in ${where}: cgroup v1 has no delegation to non-root users`,
      fix: `as root, for each controller used (pids, and memory, cpu, cpuset as asked): mkdir -p /sys/fs/cgroup/<controller>/berth-${uid} && chown -R ${user} /sys/fs/cgroup/<controller>/berth-${uid}; or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1) and a delegated subtree`,
    };
  }
  return {
    reason: `${who} may not create cgroups in ${where}: no cgroup v2 subtree is delegated to this user`,
    fix: 'run under a delegated scope (systemd-run --user --scope -p Delegate=yes node …), or chown a cgroup v2 subtree to this user',
  };
}

function safeUserName(uid: number): string {
  try {
    return userInfo().username;
  } catch {
    return String(uid);
  }
}

/** Whether `error` says this process may not create a cgroup (as opposed to a bad limit or a kernel failure). */
function isDenied(error: unknown): error is Error & { code?: string; path?: string } {
  if (error instanceof CgroupUnavailableError) return true;
  return isBerthError(error) && typeof error.code === 'string' && DENIED.has(error.code);
}

/** `pids: -1` (or 0) and `memory: 0` ask for no limit (Docker), so nothing is lost without a cgroup. */
function isLimit(name: (typeof LIMIT_OPTIONS)[number], value: number | string | undefined): boolean {
  if (value === undefined) return false;
  if (name === 'pids') return Number(value) > 0;
  if (name === 'memory') return Number(value) !== 0;
  return true;
}

/** A launch's cgroup and the limits it runs without. */
export interface LaunchCgroup {
  cgroup: Cgroup;
  /** Present when the launch runs without a cgroup. */
  skipped?: LimitsSkipped;
}

/** What {@link createLaunchCgroup} needs. */
export interface LaunchCgroupRequest {
  id: string;
  /** The driver, or how it failed to be found (no cgroup filesystem). */
  driver: () => CgroupDriver;
  limits: CgroupLimits;
  requested: RequestedLimits;
  mode: LimitsMode;
  options?: CgroupOptions;
  /** The caller's effective uid, for the fix; default this process's. */
  uid?: number;
}

/**
 * Creates the launch's cgroup; where this process may not, applies `mode`.
 * @throws UnsupportedError (`strict`) when limits were asked for and no cgroup can be made: the
 *   message names the options, the reason and the fix (or `limits: 'best-effort'`).
 * @throws SystemError / ValidationError of the driver for every other failure (a bad cpuset, ENOSPC...).
 */
export function createLaunchCgroup(req: LaunchCgroupRequest): LaunchCgroup {
  let driver: CgroupDriver | undefined;
  try {
    driver = req.driver();
    return { cgroup: driver.create(req.id, req.limits, req.options) };
  } catch (error) {
    const noCgroupFs = driver === undefined && error instanceof UnsupportedError;
    if (!noCgroupFs && !isDenied(error)) throw error;
    const { reason, fix } = explain(error as Error & { code?: string; path?: string }, driver === undefined ? null : driver.version, req.uid ?? process.geteuid?.() ?? 0);
    const asked = LIMIT_OPTIONS.filter((name) => isLimit(name, req.requested[name]));
    if (asked.length > 0 && req.mode === 'strict') {
      throw new UnsupportedError(
        `${asked.join(', ')}: cannot be enforced: ${reason}. Fix: ${fix}; or pass limits: 'best-effort' to run without them`,
        { cause: error },
      );
    }
    // Without asked-for limits, only berth's default pids limit is lost; the pid namespace,
    // rlimits and timeouts still bound the container.
    const noPidsLimit = req.requested.pids !== undefined && !asked.includes('pids');
    const options = asked.includes('pids') || noPidsLimit ? asked : [...asked, 'pids'];
    return { cgroup: new AbsentCgroup(req.id, driver?.version ?? 2, reason), skipped: { options, reason, fix } };
  }
}
