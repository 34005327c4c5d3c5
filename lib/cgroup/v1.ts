/**
 * The cgroup v1 driver: one directory `<mount>/berth/<id>` per hierarchy the container needs.
 *
 * Hierarchies come from mountinfo, so a host that co-mounts `cpu,cpuacct` gets one directory
 * serving both. Quirks handled here (see `docs/design/cgroups.md`):
 * - a new cpuset cgroup has empty `cpuset.cpus`/`cpuset.mems` and refuses tasks (ENOSPC), so
 *   both `berth` and `berth/<id>` get their parent's values;
 * - `memory.memsw.limit_in_bytes` must stay >= `memory.limit_in_bytes` at every write;
 * - the devices hierarchy is always joined, because berth keeps CAP_MKNOD.
 * @module
 */

import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { SystemError, UnsupportedError } from '../errors.js';
import {
  BERTH_PARENT,
  removeEmptyParent,
  removeParentAtExit,
  retryIfParentVanished,
  CPU_PERIOD_US,
  DEFAULT_DEVICE_RULES,
  checkCpusetAvailable,
  collectPids,
  deviceRuleString,
  isCgroupId,
  limitControllers,
  removeAfterFailedCreate,
  nodeCgroupFs,
  parseCounter,
  parseLimit,
  readKeyed,
  readOptional,
  removeDirs,
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

/** One mounted v1 hierarchy: the controllers attached to it and where it is mounted. */
export interface V1Hierarchy {
  readonly controllers: readonly string[];
  readonly mountPoint: string;
  /**
   * The directory that holds `berth/`: default `mountPoint`; inside a container, the
   * container's own cgroup (see `nesting.ts`).
   */
  readonly base?: string;
  /** Why berth cannot create cgroups in this hierarchy (read-only, a foreign tree). */
  readonly problem?: string;
  /** What would let it, with a `problem`. */
  readonly fix?: string;
}

/** Options of {@link CgroupV1Driver}. */
export interface CgroupV1DriverOptions {
  /** The mounted hierarchies, usually from {@link probeCgroups}. */
  hierarchies: readonly V1Hierarchy[];
  /** File-system seam; default the real cgroupfs. */
  fs?: CgroupFs;
  /** CPUs available, the bound for `cpus`; default `os.availableParallelism()`. */
  cpuCount?: number;
  /**
   * The parent directory's name in each hierarchy, made and chowned to a non-root user by an
   * administrator (cgroup v1 has no delegation of its own): berth's cgroups go in it, and it
   * is never created or removed by berth. Default: `berth`, made on first use and removed
   * when empty at exit.
   */
  delegatedParent?: string;
}

/** Drives berth's cgroups on a cgroup v1 (legacy or hybrid) host. */
export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;
  readonly hierarchies: readonly V1Hierarchy[];
  readonly #fs: CgroupFs;
  readonly #cpuCount: number;
  /** controller -> mount point; the first mount of a controller wins. */
  readonly #mountOf = new Map<string, string>();
  /** controller -> the directory holding its `berth/` parent (the mount point, or the container's cgroup below it). */
  readonly #baseOf = new Map<string, string>();
  /** controller -> why berth cannot create cgroups in its hierarchy, and the fix. */
  readonly #problemOf = new Map<string, { problem: string; fix: string }>();
  #swapAccounting: boolean | undefined;
  readonly #parent: string;
  readonly #delegated: boolean;

  constructor(opts: CgroupV1DriverOptions) {
    this.hierarchies = Object.freeze(opts.hierarchies.map((h) => Object.freeze({ ...h, controllers: [...h.controllers] })));
    this.#fs = opts.fs ?? nodeCgroupFs;
    this.#cpuCount = opts.cpuCount ?? availableParallelism();
    this.#parent = opts.delegatedParent ?? BERTH_PARENT;
    this.#delegated = opts.delegatedParent !== undefined;
    for (const h of this.hierarchies) {
      for (const c of h.controllers) {
        if (this.#mountOf.has(c)) continue;
        this.#mountOf.set(c, h.mountPoint);
        this.#baseOf.set(c, h.base ?? h.mountPoint);
        if (h.problem !== undefined) this.#problemOf.set(c, { problem: h.problem, fix: h.fix ?? '' });
      }
    }
  }

  /** Where `controller`'s hierarchy is mounted, if it is. */
  mountPointOf(controller: string): string | undefined {
    return this.#mountOf.get(controller);
  }

  create(id: string, limits: CgroupLimits, options: CgroupOptions = {}): Cgroup {
    validateCgroupId(id);
    const r = resolveLimits(limits, this.#cpuCount);
    const accounting = options.accounting === true;

    // pids: berth always sets a pids limit. devices: berth keeps CAP_MKNOD, so the device
    // whitelist is what stops a container from opening host block devices.
    const devices = options.devices !== false;
    const limited = limitControllers(r, accounting);
    const required = [...(devices ? ['pids', 'devices'] : ['pids']), ...limited.required];
    const optional = [...limited.optional, ...(accounting ? ['cpuacct', 'freezer', 'blkio'] : [])];

    for (const c of required) {
      if (!this.#mountOf.has(c)) {
        throw new UnsupportedError(
          `cgroup v1 controller "${c}" is not mounted (berth needs it for ${c === 'devices' ? 'the device whitelist' : c === 'pids' ? 'the pids limit' : `the ${c} limit`}); mount it with: mkdir -p /sys/fs/cgroup/${c} && mount -t cgroup -o ${c} cgroup /sys/fs/cgroup/${c}`,
        );
      }
      const p = this.#problemOf.get(c);
      if (p !== undefined) throw new CgroupUnavailableError(p.problem, p.fix, this.#mountOf.get(c)!);
    }

    // Preflight every check that needs no write, so a refusal leaves nothing behind.
    this.#checkSwap(r);
    if (r.cpuset !== undefined) {
      const mp = this.#baseOf.get('cpuset')!;
      const avail = readOptional(this.#fs, join(mp, 'cpuset.effective_cpus')) ?? this.#fs.read(join(mp, 'cpuset.cpus'));
      checkCpusetAvailable(r.cpuset, avail);
    }

    const dirOf = new Map<string, string>();
    const mounts: string[] = [];
    for (const c of [...required, ...optional]) {
      // An accounting-only controller this host lacks, or cannot write, is skipped.
      if (this.#problemOf.has(c)) continue;
      const mp = this.#baseOf.get(c);
      if (mp === undefined) continue;
      dirOf.set(c, join(mp, this.#parent, id));
      if (!mounts.includes(mp)) mounts.push(mp);
    }

    const created: string[] = [];
    try {
      for (const mp of mounts) {
        const dir = join(mp, this.#parent, id);
        retryIfParentVanished(() => {
          this.#ensureParent(mp);
          this.#fs.mkdir(dir);
        });
        created.push(dir);
      }
      removeParentAtExit(this);
      this.#configure(dirOf, r);
    } catch (err) {
      removeAfterFailedCreate(this.#fs, created);
      throw err;
    }
    return new CgroupV1(id, dirOf, this.#fs);
  }

  open(id: string): Cgroup | undefined {
    validateCgroupId(id);
    const dirOf = new Map<string, string>();
    for (const [c, mp] of this.#baseOf) {
      const dir = join(mp, this.#parent, id);
      if (this.#fs.exists(dir)) dirOf.set(c, dir);
    }
    return dirOf.size === 0 ? undefined : new CgroupV1(id, dirOf, this.#fs);
  }

  list(): string[] {
    const ids = new Set<string>();
    for (const mp of new Set(this.#baseOf.values())) {
      for (const name of this.#fs.listDirs(join(mp, this.#parent))) if (isCgroupId(name)) ids.add(name);
    }
    return [...ids].sort();
  }

  removeParentIfEmpty(): boolean {
    if (this.#delegated) return false; // the administrator's, not berth's
    let gone = true;
    for (const mp of new Set(this.#baseOf.values())) gone = removeEmptyParent(this.#fs, join(mp, this.#parent)) && gone;
    return gone;
  }

  /** Swap limit without swap accounting: drop Docker's implicit default, refuse an explicit one. */
  #checkSwap(r: ResolvedLimits): void {
    if (r.memorySwap === undefined) return;
    // Swap accounting is fixed at boot: ask the kernel once per driver.
    this.#swapAccounting ??= this.#fs.exists(join(this.#baseOf.get('memory')!, 'memory.memsw.limit_in_bytes'));
    if (this.#swapAccounting) return;
    if (r.memorySwapExplicit) {
      throw new UnsupportedError(
        'memorySwap: this kernel has no swap accounting (memory.memsw.limit_in_bytes is missing); boot with swapaccount=1 (cgroup_enable=memory swapaccount=1), or leave memorySwap unset',
      );
    }
    delete r.memorySwap;
  }

  /** Create `<base>/berth` if needed; on a cpuset hierarchy make it able to hold children. */
  #ensureParent(mp: string): void {
    const parent = join(mp, this.#parent);
    // stat first: a failing mkdir costs an exception per hierarchy on every create.
    if (!this.#fs.exists(parent)) {
      try {
        this.#fs.mkdir(parent);
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') throw err; // lost a race: fine
      }
    }
    if (this.#hasController(mp, 'cpuset')) {
      // Re-checked on every create, not only after our own mkdir: another process may have
      // created the parent a moment ago and not filled it yet. The writes are idempotent.
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if (this.#fs.read(join(parent, file)).trim() === '') {
          this.#fs.write(join(parent, file), this.#fs.read(join(mp, file)).trim());
        }
      }
    }
  }

  #hasController(mp: string, controller: string): boolean {
    return this.#baseOf.get(controller) === mp;
  }

  #configure(dirOf: ReadonlyMap<string, string>, r: ResolvedLimits): void {
    const w = (controller: string, file: string, value: string | number): void => {
      this.#fs.write(join(dirOf.get(controller)!, file), String(value));
    };
    if (dirOf.has('cpuset')) {
      const parent = join(this.#baseOf.get('cpuset')!, this.#parent);
      w('cpuset', 'cpuset.cpus', r.cpuset ?? this.#fs.read(join(parent, 'cpuset.cpus')).trim());
      w('cpuset', 'cpuset.mems', this.#fs.read(join(parent, 'cpuset.mems')).trim());
    }
    if (r.memory !== undefined) {
      // A fresh cgroup has both limits at "unlimited": lowering memory first keeps the
      // kernel's invariant limit <= memsw true at each step.
      w('memory', 'memory.limit_in_bytes', r.memory);
      if (r.memorySwap !== undefined) w('memory', 'memory.memsw.limit_in_bytes', r.memorySwap === 'max' ? -1 : r.memorySwap);
    }
    if (r.cpuShares !== undefined) w('cpu', 'cpu.shares', r.cpuShares);
    if (r.cpuQuota !== undefined) {
      w('cpu', 'cpu.cfs_period_us', CPU_PERIOD_US);
      w('cpu', 'cpu.cfs_quota_us', r.cpuQuota);
    }
    if (r.pids !== undefined) w('pids', 'pids.max', r.pids);
    // Deny-all first, then the whitelist. The kernel parses one rule per write(2); the rules
    // share one open file because opening a cgroup file costs more than the write.
    if (!dirOf.has('devices')) return; // a user-namespaced launch of a non-root caller (CgroupOptions.devices)
    w('devices', 'devices.deny', 'a');
    this.#fs.writeEach(join(dirOf.get('devices')!, 'devices.allow'), DEFAULT_DEVICE_RULES.map(deviceRuleString));
  }
}

/** A berth cgroup on v1: a directory in each hierarchy it joined. */
export class CgroupV1 implements Cgroup {
  readonly version = 1 as const;
  readonly id: string;
  readonly paths: readonly string[];
  readonly procsFiles: readonly string[];
  readonly #dirOf: ReadonlyMap<string, string>;
  readonly #fs: CgroupFs;

  /** @param dirOf controller -> this cgroup's directory in that controller's hierarchy. */
  constructor(id: string, dirOf: ReadonlyMap<string, string>, cgfs: CgroupFs = nodeCgroupFs) {
    this.id = id;
    this.#dirOf = new Map(dirOf);
    this.#fs = cgfs;
    this.paths = Object.freeze([...new Set(dirOf.values())]);
    this.procsFiles = Object.freeze(this.paths.map((p) => join(p, 'cgroup.procs')));
  }

  /** This cgroup's directory in `controller`'s hierarchy, if it joined that hierarchy. */
  dirOf(controller: string): string | undefined {
    return this.#dirOf.get(controller);
  }

  oomKillCount(): number {
    const dir = this.#dirOf.get('memory');
    return dir === undefined ? 0 : readKeyed(readOptional(this.#fs, join(dir, 'memory.oom_control')), 'oom_kill');
  }

  pids(): number[] {
    const seen = new Set<number>();
    for (const dir of this.paths) collectPids(this.#fs, dir, seen);
    return [...seen].sort((a, b) => a - b);
  }

  kill(opts: { timeoutMs?: number } = {}): void {
    const freezer = this.#dirOf.get('freezer');
    if (freezer !== undefined && this.#fs.exists(freezer)) {
      // Frozen tasks cannot fork between our reading the pid list and the signals landing;
      // they die as soon as they are thawed.
      try {
        this.#fs.write(join(freezer, 'freezer.state'), 'FROZEN');
        waitUntil(() => this.#fs.read(join(freezer, 'freezer.state')).trim() === 'FROZEN', 100);
        for (const pid of this.pids()) this.#fs.kill(pid, 'SIGKILL');
      } finally {
        this.#fs.write(join(freezer, 'freezer.state'), 'THAWED');
      }
    }
    // Without a freezer a task may fork after the read; re-reading and re-killing until the
    // list is empty closes that race (the pids limit bounds how many children can appear).
    const emptied = waitUntil(() => {
      const pids = this.pids();
      for (const pid of pids) this.#fs.kill(pid, 'SIGKILL');
      return pids.length === 0;
    }, opts.timeoutMs ?? 1000);
    if (!emptied) throw stillBusy(this.paths[0]!, this.pids());
  }

  freeze(opts: { timeoutMs?: number } = {}): void {
    const file = join(this.#freezerDir(), 'freezer.state');
    this.#fs.write(file, 'FROZEN');
    let polls = 0;
    const frozen = waitUntil(() => {
      if (this.#fs.read(file).trim() === 'FROZEN') return true;
      // A task that forked or was in an uninterruptible sleep during the first pass stays
      // FREEZING; writing FROZEN again makes the kernel retry the stragglers.
      if (++polls % 8 === 0) this.#fs.write(file, 'FROZEN');
      return false;
    }, opts.timeoutMs ?? 1000);
    if (!frozen) {
      this.#fs.write(file, 'THAWED');
      throw new SystemError('EBUSY', `freezing ${file} did not complete in time (a task is stuck in the kernel); the cgroup was thawed again`, { syscall: 'write', path: file });
    }
  }

  thaw(): void {
    this.#fs.write(join(this.#freezerDir(), 'freezer.state'), 'THAWED');
  }

  stats(): CgroupStats {
    const read = (controller: string, file: string): string | undefined => {
      const dir = this.#dirOf.get(controller);
      return dir === undefined ? undefined : readOptional(this.#fs, join(dir, file));
    };
    const stats: CgroupStats = {
      memory: { usage: parseCounter(read('memory', 'memory.usage_in_bytes')), limit: parseLimit(read('memory', 'memory.limit_in_bytes')) },
      pids: { current: parseCounter(read('pids', 'pids.current')), limit: parseLimit(read('pids', 'pids.max')) },
      cpu: { usageNanos: parseCounter(read('cpuacct', 'cpuacct.usage')) },
    };
    if (this.#dirOf.has('blkio')) {
      // The throttle layer sees every bio whatever the I/O scheduler; bfq's file is the
      // fallback on kernels built without blk-throttle.
      const text = read('blkio', 'blkio.throttle.io_service_bytes_recursive') ?? read('blkio', 'blkio.bfq.io_service_bytes_recursive');
      stats.blkio = parseBlkio(text);
    }
    return stats;
  }

  remove(opts: { timeoutMs?: number } = {}): void {
    removeDirs(this.#fs, this.paths, opts.timeoutMs);
  }

  #freezerDir(): string {
    const dir = this.#dirOf.get('freezer');
    if (dir === undefined) {
      throw new UnsupportedError(`cgroup ${this.id} has no freezer cgroup: create it with { accounting: true } to freeze it (or the host has no v1 freezer hierarchy mounted)`);
    }
    return dir;
  }
}

/** Sum `Read`/`Write` of a v1 `blkio.*io_service_bytes*` file (lines `8:0 Read 4096`). */
export function parseBlkio(text: string | undefined): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of (text ?? '').split('\n')) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (dev === undefined || value === undefined || !dev.includes(':')) continue;
    if (op === 'Read') readBytes += Number(value) || 0;
    else if (op === 'Write') writeBytes += Number(value) || 0;
  }
  return { readBytes, writeBytes };
}
