/**
 * The cgroup v2 driver: one directory `<root>/berth/<id>` on the unified hierarchy.
 *
 * Rules (see `docs/design/cgroups.md`): controllers reach `berth/<id>` only if they are listed
 * in `<root>/cgroup.subtree_control` and in `berth/cgroup.subtree_control`. Berth writes the
 * latter (it owns `berth`) but never the root's: a missing controller there is an
 * UnsupportedError that says the command to run. v2 has no devices controller; the device
 * allow-list is a BPF_CGROUP_DEVICE program attached to each container's directory
 * (`CgroupFs.attachDeviceFilter`, lib/security/device-filter.ts).
 * @module
 */

import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { SystemError, UnsupportedError } from '../errors.js';
import {
  BERTH_PARENT,
  CPU_PERIOD_US,
  checkCpusetAvailable,
  collectPids,
  isCgroupId,
  limitControllers,
  removeAfterFailedCreate,
  nodeCgroupFs,
  parseCounter,
  parseLimit,
  readKeyed,
  readOptional,
  removeDirs,
  removeParentAtExit,
  retryIfParentVanished,
  removeEmptyParent,
  resolveLimits,
  stillBusy,
  validateCgroupId,
  waitUntil,
  type Cgroup,
  type CgroupDriver,
  type CgroupFs,
  type CgroupLimits,
  type CgroupOptions,
  type CgroupStats,
  type ResolvedLimits,
} from './types.js';
import { CgroupUnavailableError } from './nesting.js';

/** Options of {@link CgroupV2Driver}. */
export interface CgroupV2DriverOptions {
  /** The cgroup2 directory berth nests under (`<root>/berth/<id>`); usually the mount point. */
  root: string;
  /**
   * Why berth cannot create cgroups under `root` (read-only, a tree that does not contain its
   * own cgroup) and the fix: every `create()` then throws them as a `CgroupUnavailableError`.
   */
  problem?: { problem: string; fix: string };
  /** File-system seam; default the real cgroupfs. */
  fs?: CgroupFs;
  /** CPUs available, the bound for `cpus`; default `os.availableParallelism()`. */
  cpuCount?: number;
}

/**
 * Docker's `--cpu-shares` (2..262144) mapped onto `cpu.weight` (1..10000) with the formula
 * runc, crun and systemd agree on, so a container gets the same weight under every runtime.
 */
export function cpuSharesToWeight(shares: number): number {
  return Math.floor(1 + ((shares - 2) * 9999) / 262_142);
}

/** Drives berth's cgroups on a cgroup v2 (unified) host. */
export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;
  readonly root: string;
  readonly #fs: CgroupFs;
  readonly #cpuCount: number;
  readonly #problem: { problem: string; fix: string } | undefined;

  constructor(opts: CgroupV2DriverOptions) {
    this.root = opts.root;
    this.#problem = opts.problem;
    this.#fs = opts.fs ?? nodeCgroupFs;
    this.#cpuCount = opts.cpuCount ?? availableParallelism();
  }

  create(id: string, limits: CgroupLimits, options: CgroupOptions = {}): Cgroup {
    validateCgroupId(id);
    const r = resolveLimits(limits, this.#cpuCount);
    const accounting = options.accounting === true;

    // Freezing and cpu.stat are core files on v2: only these controllers need enabling.
    const limited = limitControllers(r, accounting);
    const required = ['pids', ...limited.required];
    const optional = [...limited.optional, ...(accounting ? ['io'] : [])];

    if (this.#problem !== undefined) throw new CgroupUnavailableError(this.#problem.problem, this.#problem.fix, this.root);
    const rootEnabled = words(this.#fs.read(join(this.root, 'cgroup.subtree_control')));
    for (const c of required) {
      if (!rootEnabled.has(c)) throw this.#missingController(c, rootEnabled);
    }
    const controllers = [...required, ...optional.filter((c) => rootEnabled.has(c))];

    const parent = join(this.root, BERTH_PARENT);
    const dir = join(parent, id);
    retryIfParentVanished(() => {
      if (!this.#fs.exists(parent)) {
        try {
          this.#fs.mkdir(parent);
        } catch (err) {
          if ((err as { code?: string }).code !== 'EEXIST') throw err; // lost a race: fine
        }
      }
      const parentEnabled = words(this.#fs.read(join(parent, 'cgroup.subtree_control')));
      const missing = controllers.filter((c) => !parentEnabled.has(c));
      if (missing.length > 0) {
        // One write enables them all; concurrent creates writing the same "+x" are harmless.
        this.#fs.write(join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
      }

      this.#checkSwap(r, parent);
      if (r.cpuset !== undefined) {
        checkCpusetAvailable(r.cpuset, this.#fs.read(join(parent, 'cpuset.cpus.effective')));
      }

      this.#fs.mkdir(dir);
    });
    removeParentAtExit(this);
    try {
      // Before any process can join: the allow-list holds from the container's first instruction.
      if (options.devices !== false) this.#fs.attachDeviceFilter(dir);
      this.#configure(dir, r);
    } catch (err) {
      removeAfterFailedCreate(this.#fs, [dir]);
      throw err;
    }
    return new CgroupV2(id, dir, this.#fs);
  }

  open(id: string): Cgroup | undefined {
    validateCgroupId(id);
    const dir = join(this.root, BERTH_PARENT, id);
    return this.#fs.exists(dir) ? new CgroupV2(id, dir, this.#fs) : undefined;
  }

  list(): string[] {
    return this.#fs.listDirs(join(this.root, BERTH_PARENT)).filter(isCgroupId).sort();
  }

  removeParentIfEmpty(): boolean {
    return removeEmptyParent(this.#fs, join(this.root, BERTH_PARENT));
  }

  #missingController(c: string, rootEnabled: ReadonlySet<string>): UnsupportedError {
    const file = join(this.root, 'cgroup.subtree_control');
    const available = words(readOptional(this.#fs, join(this.root, 'cgroup.controllers')) ?? '');
    const enabled = rootEnabled.size === 0 ? 'none' : [...rootEnabled].join(' ');
    if (!available.has(c)) {
      return new UnsupportedError(
        `cgroup v2 controller "${c}" is not available in ${this.root} (cgroup.controllers: ${[...available].join(' ') || 'none'}); ` +
          `it is disabled in the kernel or not delegated to this cgroup. Enable it on the kernel command line or delegate it (systemd: Delegate=${c})`,
        { path: join(this.root, 'cgroup.controllers') },
      );
    }
    // A container's namespace root holds the container's own processes, and v2 refuses to
    // enable controllers for children of a cgroup with processes (EBUSY, "no internal
    // processes"): they must move to a leaf first, as Docker-in-Docker's entrypoint does.
    const procs = (readOptional(this.#fs, join(this.root, 'cgroup.procs')) ?? '').trim();
    const moveFirst = procs === '' || this.#isHostRoot()
      ? ''
      : `; ${this.root} holds processes (${procs.split(/\s+/).length}), which v2 forbids for a cgroup that enables controllers for its children: ` +
        `first move them into a leaf (mkdir ${join(this.root, 'init')} && for p in $(cat ${join(this.root, 'cgroup.procs')}); do echo $p > ${join(this.root, 'init', 'cgroup.procs')}; done), as Docker-in-Docker does`;
    return new UnsupportedError(
      `cgroup v2 controller "${c}" is not enabled for child cgroups of ${this.root} (${file}: ${enabled}). ` +
        `Berth does not change cgroups it did not create; enable it with: echo +${c} > ${file}${moveFirst}`,
      { path: file },
    );
  }

  /** The real root cgroup is exempt from the no-internal-processes rule; it alone lacks `cgroup.type`. */
  #isHostRoot(): boolean {
    return !this.#fs.exists(join(this.root, 'cgroup.type'));
  }

  /** Swap limit without swap accounting: drop Docker's implicit default, refuse an explicit one. */
  #checkSwap(r: ResolvedLimits, parent: string): void {
    if (r.memorySwap === undefined) return;
    if (this.#fs.exists(join(parent, 'memory.swap.max'))) return;
    if (r.memorySwapExplicit) {
      throw new UnsupportedError(
        'memorySwap: this kernel has no swap accounting (memory.swap.max is missing); enable CONFIG_MEMCG_SWAP (and swapaccount=1 on kernels before 5.8), or leave memorySwap unset',
      );
    }
    delete r.memorySwap;
  }

  #configure(dir: string, r: ResolvedLimits): void {
    const w = (file: string, value: string | number): void => this.#fs.write(join(dir, file), String(value));
    if (r.memory !== undefined) {
      w('memory.max', r.memory);
      // v2 limits swap alone; Docker's memorySwap is memory+swap.
      if (r.memorySwap !== undefined) w('memory.swap.max', r.memorySwap === 'max' ? 'max' : r.memorySwap - r.memory);
    }
    if (r.cpuQuota !== undefined) w('cpu.max', `${r.cpuQuota} ${CPU_PERIOD_US}`);
    if (r.cpuShares !== undefined) w('cpu.weight', cpuSharesToWeight(r.cpuShares));
    if (r.cpuset !== undefined) w('cpuset.cpus', r.cpuset);
    if (r.pids !== undefined) w('pids.max', r.pids);
  }
}

/** A berth cgroup on v2: one directory. */
export class CgroupV2 implements Cgroup {
  readonly version = 2 as const;
  readonly id: string;
  readonly paths: readonly string[];
  readonly procsFiles: readonly string[];
  readonly #dir: string;
  readonly #fs: CgroupFs;

  constructor(id: string, dir: string, cgfs: CgroupFs = nodeCgroupFs) {
    this.id = id;
    this.#dir = dir;
    this.#fs = cgfs;
    this.paths = Object.freeze([dir]);
    this.procsFiles = Object.freeze([join(dir, 'cgroup.procs')]);
  }

  oomKillCount(): number {
    // memory.events is hierarchical: kills in sub-cgroups the container made count too.
    return readKeyed(readOptional(this.#fs, join(this.#dir, 'memory.events')), 'oom_kill');
  }

  pids(): number[] {
    const seen = new Set<number>();
    collectPids(this.#fs, this.#dir, seen);
    return [...seen].sort((a, b) => a - b);
  }

  kill(opts: { timeoutMs?: number } = {}): void {
    const killFile = join(this.#dir, 'cgroup.kill');
    // cgroup.kill (5.14+) kills the whole subtree atomically, forks in flight included.
    const atomic = this.#fs.exists(killFile);
    if (atomic) this.#fs.write(killFile, '1');
    const emptied = waitUntil(() => {
      const pids = this.pids();
      if (!atomic) for (const pid of pids) this.#fs.kill(pid, 'SIGKILL');
      return pids.length === 0;
    }, opts.timeoutMs ?? 1000);
    if (!emptied) throw stillBusy(this.#dir, this.pids());
  }

  freeze(opts: { timeoutMs?: number } = {}): void {
    this.#fs.write(join(this.#dir, 'cgroup.freeze'), '1');
    const events = join(this.#dir, 'cgroup.events');
    // The write only requests the freeze; cgroup.events says when every task has stopped.
    const frozen = waitUntil(() => readKeyed(this.#fs.read(events), 'frozen') === 1, opts.timeoutMs ?? 1000);
    if (!frozen) {
      this.#fs.write(join(this.#dir, 'cgroup.freeze'), '0');
      throw new SystemError('EBUSY', `freezing ${this.#dir} did not complete in time (cgroup.events never reported frozen 1); the cgroup was thawed again`, {
        syscall: 'write',
        path: join(this.#dir, 'cgroup.freeze'),
      });
    }
  }

  thaw(): void {
    this.#fs.write(join(this.#dir, 'cgroup.freeze'), '0');
  }

  stats(): CgroupStats {
    const read = (file: string): string | undefined => readOptional(this.#fs, join(this.#dir, file));
    const stats: CgroupStats = {
      memory: { usage: parseCounter(read('memory.current')), limit: parseLimit(read('memory.max')) },
      pids: { current: parseCounter(read('pids.current')), limit: parseLimit(read('pids.max')) },
      cpu: { usageNanos: readKeyed(read('cpu.stat'), 'usage_usec') * 1000 },
    };
    const io = read('io.stat');
    if (io !== undefined) stats.blkio = parseIoStat(io);
    return stats;
  }

  remove(opts: { timeoutMs?: number } = {}): void {
    removeDirs(this.#fs, this.paths, opts.timeoutMs);
  }
}

/** Sum `rbytes`/`wbytes` over the devices of a v2 `io.stat` (`8:0 rbytes=1 wbytes=2 ...`). */
export function parseIoStat(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of text.split('\n')) {
    for (const field of line.trim().split(/\s+/).slice(1)) {
      const [key, value] = field.split('=');
      if (key === 'rbytes') readBytes += Number(value) || 0;
      else if (key === 'wbytes') writeBytes += Number(value) || 0;
    }
  }
  return { readBytes, writeBytes };
}

function words(text: string): Set<string> {
  return new Set(text.split(/\s+/).filter(Boolean));
}
