/**
 * `rt.info()`: what a user debugging berth needs to know about the runtime and its host, with
 * `docker info`'s field names where Docker has one and berth's own beside them. The host facts
 * are probed once per runtime (a runtime's host does not change under it); the counts are read
 * at each call.
 * @module
 */
import { readFileSync } from 'node:fs';
import { arch, availableParallelism, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { describeCgroups, type CgroupInfo } from './cgroup/controllers.js';
import { filesystemTypeOf, operatingSystem, probeIdMapping, probeKernelFeatures, userNameOf, type IdMappingInfo, type KernelFeatures } from './host/index.js';
import { packageRoot } from './native.js';
import { heldUsernsPid } from './rootless/index.js';
import { describeNetworkTools, type NetworkToolsInfo } from './network/host-tools.js';
import { deriveAdvice, warningLines, type Advice, type HostFacts } from './runtime-advice.js';
import type { StorageDriverName } from './storage/driver.js';
import type { StorageChoice } from './storage/select.js';

/** Why the storage driver is the one in use, and whether it works here. */
export interface StorageInfo {
  /** The driver that makes containers' roots from image layers (`Runtime.open({ storageDriver })`). */
  readonly driver: StorageDriverName;
  /** Whether the driver works on the state directory's filesystem (it was tried). */
  readonly usable: boolean;
  /** Why this driver, or why it does not work. */
  readonly reason: string;
  /** The state directory's filesystem, in Docker's words (`extfs`, `xfs`, `tmpfs`, `overlayfs`, ...). */
  readonly backingFilesystem: string;
}

/** Whether berth can enforce resource limits here, i.e. what the `limits` launch option decides. */
export interface LimitsInfo {
  /** `memory`, `cpus` and `pids` can be enforced: this process may create cgroups with those controllers. */
  readonly enforceable: boolean;
  /**
   * What happens to a launch: `enforced`, or (not enforceable) that `limits: 'strict'` (the
   * default) refuses `memory`/`cpus`/`pids` and `limits: 'best-effort'` runs without a cgroup.
   */
  readonly detail: string;
}

/** The object {@link Runtime.info} returns. Field names in PascalCase are `docker info`'s. */
export interface RuntimeInfo {
  /** berth's package version (Docker: the daemon's version). */
  readonly ServerVersion: string;
  /** Containers of this state directory, in any state. */
  readonly Containers: number;
  readonly ContainersRunning: number;
  readonly ContainersPaused: number;
  /** Created, exited and dead containers. */
  readonly ContainersStopped: number;
  /** Images in the store (one per image id). */
  readonly Images: number;
  /** Storage driver of image layers (`overlay`, `fuse-overlayfs`, `vfs`, `btrfs`); see {@link RuntimeInfo.Storage} for why. */
  readonly Driver: string;
  /** Docker's pairs: `Backing Filesystem`, `Supports overlay` (tried), `Reason`. */
  readonly DriverStatus: ReadonlyArray<readonly [string, string]>;
  /** `cgroupfs`: berth writes cgroup files itself (no systemd); `none` without a cgroup filesystem. */
  readonly CgroupDriver: 'cgroupfs' | 'none';
  /** `'1'` (legacy and hybrid hosts: berth drives v1), `'2'`, or `''` without cgroups. */
  readonly CgroupVersion: '1' | '2' | '';
  /** `uname -r`. */
  readonly KernelVersion: string;
  /** `PRETTY_NAME` of /etc/os-release. */
  readonly OperatingSystem: string;
  readonly OSType: 'linux';
  /** Node's `process.arch` (`x64`, `arm64`). */
  readonly Architecture: string;
  /** CPUs this process may run on. */
  readonly NCPU: number;
  /** Bytes of RAM. */
  readonly MemTotal: number;
  /** What confines containers: `name=seccomp,profile=builtin` (when the kernel has filters), `name=no-new-privileges`, `name=rootless`. */
  readonly SecurityOptions: readonly string[];
  /** One `WARNING: <problem>. Fix: <command>` line per entry of {@link RuntimeInfo.Fixes}. */
  readonly Warnings: readonly string[];

  /** The state directory. */
  readonly RootDir: string;
  /** True when this process is not root (rootless mode; issue 15). */
  readonly Rootless: boolean;
  /** Effective uid of this process. */
  readonly Uid: number;
  /** `process.version`. */
  readonly NodeVersion: string;
  /** Volumes of this state directory. */
  readonly Volumes: number;
  /** Networks of this state directory. */
  readonly Networks: number;
  /**
   * How container ids map to host ids, and the helpers and ranges that decide it; rootless:
   * `HeldNamespacePid`, the pid of the holder of this process's user namespace that rootless
   * containers are created in (null until the first rootless launch, and after the last
   * `rt.close()`; docs/design/rootless.md).
   */
  readonly IdMapping: IdMappingInfo & { readonly HeldNamespacePid: number | null };
  readonly Storage: StorageInfo;
  /** cgroup version, mode (`legacy`/`hybrid`/`unified`) and which controllers berth can use. */
  readonly Cgroups: CgroupInfo;
  /** Whether resource limits are enforced here, and what `limits: 'strict' | 'best-effort'` does if not. */
  readonly Limits: LimitsInfo;
  /** Packet filter, bridge support and user-mode network stacks. */
  readonly Network: NetworkToolsInfo;
  /** Kernel features, each with how it was probed. */
  readonly KernelFeatures: KernelFeatures;
  /** Each missing piece with its one-line fix (empty when nothing is missing). */
  readonly Fixes: readonly Advice[];
}

/** The counts {@link assembleRuntimeInfo} adds to the host facts. */
export interface RuntimeCounts {
  readonly containers: { readonly total: number; readonly running: number; readonly paused: number };
  readonly images: number;
  readonly volumes: number;
  readonly networks: number;
}

/**
 * Probe the host for a runtime of `root`. Nothing is left behind (the overlay probe's mount is
 * never attached and its directories are removed) and nothing throws for a missing feature.
 */
export async function probeHostFacts(root: string): Promise<HostFacts> {
  const uid = process.geteuid?.() ?? 0;
  const userName = userNameOf(uid);
  const kernelRelease = release();
  const cgroups = describeCgroups();
  const features = probeKernelFeatures(root, kernelRelease);
  // CLONE_INTO_CGROUP takes a v2 cgroup fd: on a v1 (or hybrid) host berth moves the child instead.
  const clone3IntoCgroup = cgroups.version === 2 || !features.clone3IntoCgroup.available
    ? features.clone3IntoCgroup
    : { ...features.clone3IntoCgroup, available: false, detail: `${features.clone3IntoCgroup.detail}, but cgroup v${cgroups.version ?? '-'} (${cgroups.mode}): berth moves the child into its cgroups instead` };
  return {
    root,
    uid,
    userName,
    kernelRelease,
    backingFilesystem: filesystemTypeOf(root),
    features: { ...features, clone3IntoCgroup },
    idMapping: probeIdMapping(uid, userName),
    cgroups,
    network: await describeNetworkTools(uid),
  };
}

let version: string | undefined;

/** The `version` of berth's package.json. */
function berthVersion(): string {
  if (version === undefined) {
    try {
      version = String((JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown }).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

/** The runtime's storage choice as reported. */
function storageOf(choice: StorageChoice): StorageInfo {
  return { driver: choice.driver.name, usable: choice.usable, reason: choice.reason, backingFilesystem: choice.backingFilesystem };
}

function limitsOf(c: CgroupInfo): LimitsInfo {
  const missing = (['memory', 'cpu', 'pids'] as const).filter((name) => !c.controllers[name].usable);
  if (missing.length === 0) return { enforceable: true, detail: 'enforced: memory, cpu and pids cgroups can be created' };
  const why = missing.map((name) => `${name}: ${c.controllers[name].detail}`).join('; ');
  return {
    enforceable: false,
    detail: `not enforceable (${why}): limits: 'strict' (the default) refuses memory/cpus/pids options; limits: 'best-effort' runs containers without a cgroup and reports limitsSkipped`,
  };
}

/** Host facts, the runtime's storage driver and the counts as the {@link RuntimeInfo} document. */
export function assembleRuntimeInfo(facts: HostFacts, counts: RuntimeCounts, choice: StorageChoice): RuntimeInfo {
  const fixes = deriveAdvice(facts);
  const storage = storageOf(choice);
  const { total, running, paused } = counts.containers;
  return {
    ServerVersion: berthVersion(),
    Containers: total,
    ContainersRunning: running,
    ContainersPaused: paused,
    ContainersStopped: total - running - paused,
    Images: counts.images,
    Driver: storage.driver,
    DriverStatus: [
      ['Backing Filesystem', storage.backingFilesystem],
      ['Supports overlay', String(facts.features.overlay.available)],
      ['Reason', storage.reason],
    ],
    CgroupDriver: facts.cgroups.version === null ? 'none' : 'cgroupfs',
    CgroupVersion: facts.cgroups.version === null ? '' : facts.cgroups.version === 1 ? '1' : '2',
    KernelVersion: facts.kernelRelease,
    OperatingSystem: operatingSystem(),
    OSType: 'linux',
    Architecture: arch(),
    NCPU: availableParallelism(),
    MemTotal: totalmem(),
    SecurityOptions: [
      ...(facts.features.seccomp.available ? ['name=seccomp,profile=builtin'] : []),
      'name=no-new-privileges',
      ...(facts.uid !== 0 ? ['name=rootless'] : []),
    ],
    Warnings: warningLines(fixes),
    RootDir: facts.root,
    Rootless: facts.uid !== 0,
    Uid: facts.uid,
    NodeVersion: process.version,
    Volumes: counts.volumes,
    Networks: counts.networks,
    IdMapping: { ...facts.idMapping, HeldNamespacePid: heldUsernsPid() ?? null },
    Storage: storage,
    Cgroups: facts.cgroups,
    Limits: limitsOf(facts.cgroups),
    Network: facts.network,
    KernelFeatures: facts.features,
    Fixes: fixes,
  };
}
