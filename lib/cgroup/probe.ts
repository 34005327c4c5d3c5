/**
 * Detect the host's cgroup layout from `/proc/self/mountinfo` (and `/proc/self/cgroup`) and
 * pick the driver. Never guesses paths: `cpu,cpuacct` co-mounted, controllers mounted in odd
 * places and the hybrid layout all come out of mountinfo.
 * @module
 */

import * as fs from 'node:fs';
import { basename, join, relative } from 'node:path';
import { UnsupportedError } from '../errors.js';
import type { CgroupDriver, CgroupFs } from './types.js';
import { placeInMount, type CgroupPlacement } from './nesting.js';
import { CgroupV1Driver, type V1Hierarchy } from './v1.js';
import { CgroupV2Driver } from './v2.js';

/** One line of mountinfo, the fields berth uses. */
export interface MountEntry {
  /** The path inside the filesystem that is mounted (for cgroupfs: the cgroup shown at the mount point). */
  readonly root: string;
  readonly mountPoint: string;
  /** Per-mount options (`ro`, `nosuid`, ...): a read-only bind of a writable cgroupfs shows here. */
  readonly mountOptions: readonly string[];
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

/** The cgroup layout of a host. */
export interface CgroupLayout {
  /** Which driver berth uses: 1 for legacy and hybrid hosts, 2 for unified ones. */
  readonly version: 1 | 2;
  /** `legacy`: v1 only; `hybrid`: v1 controllers plus a (mostly empty) cgroup2 mount; `unified`: v2 only. */
  readonly mode: 'legacy' | 'hybrid' | 'unified';
  /** The v1 hierarchies that carry controllers, in mountinfo order. */
  readonly v1: readonly V1Hierarchy[];
  /** The cgroup2 mount point, if any. */
  readonly unified?: string;
  /** Where berth nests on the cgroup2 mount and whether it can ({@link placeInMount}). */
  readonly unifiedPlacement?: CgroupPlacement;
}

/** Controller names a v1 hierarchy can carry (the other mount options are flags). */
const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids',
  'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc',
]);

/** mountinfo escapes space, tab, newline and backslash as 3-digit octal. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Parse `/proc/<pid>/mountinfo` (see proc(5)); malformed lines are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    // The optional fields end at a lone "-", after which come fstype, source, super options.
    const sep = fields.indexOf('-', 6);
    if (fields.length < 10 || sep < 0 || sep + 3 >= fields.length) continue;
    out.push({
      root: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      mountOptions: fields[5]!.split(','),
      fsType: fields[sep + 1]!,
      superOptions: fields[sep + 3]!.split(','),
    });
  }
  return out;
}

/** One line of `/proc/<pid>/cgroup`: `hierarchy-id:controller-list:path`. */
export interface ProcCgroupEntry {
  readonly hierarchyId: number;
  /** Empty for the v2 line (`0::/path`); `name=systemd` style names are kept. */
  readonly controllers: readonly string[];
  readonly path: string;
}

/** Parse `/proc/<pid>/cgroup`. */
export function parseProcCgroup(text: string): ProcCgroupEntry[] {
  const out: ProcCgroupEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (m === null) continue;
    out.push({ hierarchyId: Number(m[1]), controllers: m[2] === '' ? [] : m[2]!.split(','), path: m[3]! });
  }
  return out;
}

/**
 * Work out the layout from mountinfo. When `procSelfCgroup` is given, a v1 mount counts only
 * if the kernel lists its controllers for this process: the kernel's answer is authoritative,
 * a stale bind mount in mountinfo (a container given the host's /sys/fs/cgroup) is not.
 * Each hierarchy also gets its placement: where `berth/` goes (the container's own cgroup when
 * berth runs in one) and why berth cannot write there, if it cannot (read-only, or a tree that
 * does not contain berth's own cgroup): see `nesting.ts`.
 * @param pid1Cgroup `/proc/1/cgroup` as this process sees it (PID 1 of its PID namespace), to
 *   find the container's cgroup on v1 when the whole tree is visible.
 * @throws UnsupportedError when no cgroup filesystem with controllers is mounted.
 */
export function detectCgroupLayout(mountinfo: string, procSelfCgroup?: string, pid1Cgroup?: string): CgroupLayout {
  const mounts = parseMountinfo(mountinfo);
  const own = procSelfCgroup === undefined ? undefined : parseProcCgroup(procSelfCgroup);
  const live = own === undefined ? undefined : new Set(own.flatMap((e) => e.controllers));
  const pid1 = pid1Cgroup === undefined ? undefined : parseProcCgroup(pid1Cgroup);
  const pathOf = (entries: ProcCgroupEntry[] | undefined, controllers: readonly string[]): string | undefined =>
    entries?.find((e) => e.controllers.some((c) => controllers.includes(c)))?.path;

  const candidates: V1Hierarchy[] = [];
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    const controllers = m.superOptions.filter((o) => V1_CONTROLLERS.has(o));
    if (controllers.length === 0) continue; // name=systemd and other named hierarchies
    if (live !== undefined && !controllers.some((c) => live.has(c))) continue;
    const placement = placeInMount(m, pathOf(own, controllers), pathOf(pid1, controllers));
    candidates.push({ controllers, mountPoint: m.mountPoint, base: placement.base, ...(placement.problem === undefined ? {} : { problem: placement.problem, fix: placement.fix ?? '' }) });
  }
  // The same hierarchy may be mounted twice (bind mounts): a usable mount serves before one
  // berth cannot write, then mountinfo order decides.
  const v1: V1Hierarchy[] = [];
  const claimed = new Set<string>();
  for (const h of [...candidates.filter((c) => c.problem === undefined), ...candidates.filter((c) => c.problem !== undefined)]) {
    if (h.controllers.every((c) => claimed.has(c))) continue;
    for (const c of h.controllers) claimed.add(c);
    v1.push(h);
  }
  v1.sort((a, b) => candidates.indexOf(a) - candidates.indexOf(b));

  const cg2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const cg2Mount = cg2.find((m) => m.mountPoint === '/sys/fs/cgroup') ?? cg2[0];
  const unified = cg2Mount?.mountPoint;
  const unifiedPlacement = cg2Mount === undefined ? undefined : placeInMount(cg2Mount, own?.find((e) => e.hierarchyId === 0)?.path);

  if (v1.length > 0) return { version: 1, mode: unified === undefined ? 'legacy' : 'hybrid', v1, ...(unified === undefined ? {} : { unified, unifiedPlacement: unifiedPlacement! }) };
  if (unified !== undefined) return { version: 2, mode: 'unified', v1, unified, unifiedPlacement: unifiedPlacement! };
  throw new UnsupportedError(
    'no cgroup filesystem is mounted (neither cgroup2 nor cgroup v1 controllers in /proc/self/mountinfo); mount one with: mount -t cgroup2 none /sys/fs/cgroup',
    { path: '/proc/self/mountinfo' },
  );
}

/** Options of {@link probeCgroups}; everything defaults to this host. */
export interface ProbeOptions {
  /** Contents of mountinfo; default `/proc/self/mountinfo`. */
  mountinfo?: string;
  /** Contents of `/proc/self/cgroup`; default read from the kernel (and skipped when `mountinfo` is injected). */
  procSelfCgroup?: string;
  /** Contents of `/proc/1/cgroup`; default read from the kernel (and skipped when `mountinfo` is injected). */
  pid1Cgroup?: string;
  /**
   * v2: the cgroup2 directory berth nests under, default the cgroup2 mount point.
   * v1: the directory holding the controller mounts (each hierarchy at `<root>/<basename of
   * its mount point>`), default the mount points from mountinfo; used to aim at fixtures.
   */
  root?: string;
  /** File-system seam for the driver; default the real cgroupfs. */
  fs?: CgroupFs;
  /** CPUs available, the bound for `cpus`; default `os.availableParallelism()`. */
  cpuCount?: number;
  /** v1: an administrator's parent directory for a non-root user (see `CgroupV1DriverOptions.delegatedParent`). */
  delegatedParent?: string;
}

/**
 * Detect v1 / hybrid / v2 and return the matching driver. Hybrid hosts use the v1 driver: their
 * cgroup2 mount has no controllers.
 * @throws UnsupportedError when the host has no usable cgroup filesystem.
 */
export function probeCgroups(opts: ProbeOptions = {}): CgroupDriver {
  const mountinfo = opts.mountinfo ?? fs.readFileSync('/proc/self/mountinfo', 'utf8');
  // An injected mountinfo describes another host: pairing it with this host's
  // /proc/self/cgroup would filter its hierarchies against the wrong kernel.
  const procSelfCgroup = opts.procSelfCgroup ?? (opts.mountinfo === undefined ? readOrUndefined('/proc/self/cgroup') : undefined);
  const pid1Cgroup = opts.pid1Cgroup ?? (opts.mountinfo === undefined ? readOrUndefined('/proc/1/cgroup') : undefined);
  const layout = detectCgroupLayout(mountinfo, procSelfCgroup, pid1Cgroup);
  const common = {
    ...(opts.fs === undefined ? {} : { fs: opts.fs }),
    ...(opts.cpuCount === undefined ? {} : { cpuCount: opts.cpuCount }),
  };
  if (layout.version === 2) {
    const placement = layout.unifiedPlacement!;
    return new CgroupV2Driver({
      root: opts.root ?? placement.base,
      ...(placement.problem === undefined ? {} : { problem: { problem: placement.problem, fix: placement.fix ?? '' } }),
      ...common,
    });
  }
  const root = opts.root;
  // Fixtures keep each hierarchy's base at the same place relative to its mount point.
  const hierarchies = root === undefined
    ? layout.v1
    : layout.v1.map((h) => {
      const mountPoint = join(root, basename(h.mountPoint));
      return { ...h, mountPoint, base: join(mountPoint, relative(h.mountPoint, h.base ?? h.mountPoint)) };
    });
  return new CgroupV1Driver({ hierarchies, ...common, ...(opts.delegatedParent === undefined ? {} : { delegatedParent: opts.delegatedParent }) });
}

function readOrUndefined(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
