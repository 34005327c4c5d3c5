/**
 * Which resource controllers berth can use on this host, for `rt.info()`: the layout
 * {@link detectCgroupLayout} finds, then per controller whether berth may write where it would
 * (v1: the hierarchy is mounted and writable; v2: the controller is enabled in the root's
 * `cgroup.subtree_control`, which berth never writes itself — docs/design/cgroups.md).
 * @module
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BERTH_PARENT } from './types.js';
import { detectCgroupLayout, type CgroupLayout } from './probe.js';

/** The controllers berth's limits use, by their v2 names (v1 `blkio` is `io`). */
export const LIMIT_CONTROLLERS = ['memory', 'cpu', 'pids', 'cpuset', 'io', 'devices'] as const;

/** A controller berth's limits use. */
export type LimitController = (typeof LIMIT_CONTROLLERS)[number];

/** Whether berth can use one controller, and why not. */
export interface ControllerStatus {
  readonly usable: boolean;
  /** Where it is (mount point, `cgroup.subtree_control`) or what is missing. */
  readonly detail: string;
  /**
   * The one-line fix when a change on this host would make it usable (e.g.
   * `echo +memory > /sys/fs/cgroup/cgroup.subtree_control`), absent otherwise.
   */
  readonly fix?: string;
}

/** The cgroup facts of the host. */
export interface CgroupInfo {
  /** `1` on legacy and hybrid hosts, `2` on unified ones; `null` when no cgroup filesystem is mounted. */
  readonly version: 1 | 2 | null;
  /** `legacy` (v1 only), `hybrid` (v1 controllers and an empty cgroup2), `unified` (v2), or `none`. */
  readonly mode: CgroupLayout['mode'] | 'none';
  /** Why `version` is `null`; empty otherwise. */
  readonly detail: string;
  /**
   * The `berth` parent directories berth creates its cgroups in, one per hierarchy it may use:
   * below the mount point on a bare host, below the container's own cgroup inside one.
   */
  readonly parents: readonly string[];
  readonly controllers: Readonly<Record<LimitController, ControllerStatus>>;
}

/** What the probe reads; each field defaults to this host. A seam for tests over fixture text. */
export interface CgroupInfoSource {
  mountinfo?: string;
  procSelfCgroup?: string;
  /** `/proc/1/cgroup` (PID 1 of this PID namespace). */
  pid1Cgroup?: string;
  /** Contents of a cgroup file, `undefined` when unreadable. */
  read?(path: string): string | undefined;
  /** Whether this process may create cgroups in `dir`. */
  writable?(dir: string): boolean;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function isWritable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function v1Controllers(layout: CgroupLayout, writable: (dir: string) => boolean): Record<LimitController, ControllerStatus> {
  const status = (name: LimitController): ControllerStatus => {
    const v1name = name === 'io' ? 'blkio' : name;
    const h = layout.v1.find((x) => x.controllers.includes(v1name));
    if (h === undefined) return { usable: false, detail: `the ${v1name} hierarchy is not mounted`, fix: `mount -t cgroup -o ${v1name} cgroup /sys/fs/cgroup/${v1name}` };
    if (h.problem !== undefined) return { usable: false, detail: h.problem, ...(h.fix === undefined ? {} : { fix: h.fix }) };
    const base = h.base ?? h.mountPoint;
    // berth creates its parent on first use: that directory (once made, perhaps chowned to a
    // user) or the directory holding it must be writable.
    if (!writable(join(base, BERTH_PARENT)) && !writable(base)) {
      return { usable: false, detail: `${base} is not writable by this process (cgroup v1 has no delegation to users)` };
    }
    return { usable: true, detail: base };
  };
  return Object.fromEntries(LIMIT_CONTROLLERS.map((c) => [c, status(c)])) as Record<LimitController, ControllerStatus>;
}

function v2Controllers(root: string, problem: { problem: string; fix?: string } | undefined, read: (path: string) => string | undefined, writable: (dir: string) => boolean): Record<LimitController, ControllerStatus> {
  const words = (text: string | undefined) => new Set((text ?? '').split(/\s+/).filter(Boolean));
  const offered = words(read(join(root, 'cgroup.controllers')));
  const enabled = words(read(join(root, 'cgroup.subtree_control')));
  const canWrite = writable(root);
  const status = (name: LimitController): ControllerStatus => {
    if (problem !== undefined) return { usable: false, detail: problem.problem, ...(problem.fix === undefined ? {} : { fix: problem.fix }) };
    if (!canWrite) return { usable: false, detail: `${root} is not writable by this process (no delegated cgroup v2 subtree)` };
    // v2 has no devices controller: berth attaches a BPF_CGROUP_DEVICE program instead.
    if (name === 'devices') return { usable: true, detail: 'BPF_CGROUP_DEVICE program' };
    if (enabled.has(name)) return { usable: true, detail: `enabled in ${join(root, 'cgroup.subtree_control')}` };
    if (offered.has(name)) return { usable: false, detail: `offered but not enabled in ${join(root, 'cgroup.subtree_control')}`, fix: `echo +${name} > ${join(root, 'cgroup.subtree_control')}` };
    return { usable: false, detail: `the kernel does not offer ${name} in ${join(root, 'cgroup.controllers')}` };
  };
  return Object.fromEntries(LIMIT_CONTROLLERS.map((c) => [c, status(c)])) as Record<LimitController, ControllerStatus>;
}

/**
 * The host's cgroup version and usable controllers, from the same detection the drivers use.
 * Never throws: a host without cgroups is reported with `version: null`.
 */
export function describeCgroups(source: CgroupInfoSource = {}): CgroupInfo {
  const mountinfo = source.mountinfo ?? readOrUndefined('/proc/self/mountinfo') ?? '';
  const procSelfCgroup = source.procSelfCgroup ?? (source.mountinfo === undefined ? readOrUndefined('/proc/self/cgroup') : undefined);
  const pid1Cgroup = source.pid1Cgroup ?? (source.mountinfo === undefined ? readOrUndefined('/proc/1/cgroup') : undefined);
  const read = source.read ?? readOrUndefined;
  const writable = source.writable ?? isWritable;
  let layout: CgroupLayout;
  try {
    layout = detectCgroupLayout(mountinfo, procSelfCgroup, pid1Cgroup);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    const none: ControllerStatus = { usable: false, detail: 'no cgroup filesystem' };
    return { version: null, mode: 'none', detail, parents: [], controllers: Object.fromEntries(LIMIT_CONTROLLERS.map((c) => [c, none])) as Record<LimitController, ControllerStatus> };
  }
  if (layout.version === 1) {
    const parents = [...new Set(layout.v1.filter((h) => h.problem === undefined).map((h) => join(h.base ?? h.mountPoint, BERTH_PARENT)))];
    return { version: 1, mode: layout.mode, detail: '', parents, controllers: v1Controllers(layout, writable) };
  }
  const placement = layout.unifiedPlacement!;
  const parents = placement.problem === undefined ? [join(placement.base, BERTH_PARENT)] : [];
  return { version: 2, mode: layout.mode, detail: '', parents, controllers: v2Controllers(placement.base, placement.problem === undefined ? undefined : { problem: placement.problem, ...(placement.fix === undefined ? {} : { fix: placement.fix }) }, read, writable) };
}
