/**
 * The cgroup contract shared by the v1 and v2 drivers: the public interfaces, the validation
 * and normalisation of limits (one place decides Docker's rules, both drivers only translate
 * them into files), and the narrow file-system seam the drivers talk to the kernel through.
 *
 * The seam exists so the drivers can be exercised against a temp directory that imitates
 * cgroupfs (see `test/unit/cgroup-v2.test.ts`), the way youki tests its syscall layer with a
 * recording implementation. Production code always uses {@link nodeCgroupFs}.
 * @module
 */

import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { SystemError, ValidationError, isBerthError } from '../errors.js';
import { attachDefaultDeviceFilter } from './device-program.js';

/** Resource limits for one container's cgroup. Every field is optional; `undefined` = no limit. */
export interface CgroupLimits {
  /** Memory limit in bytes. `0` means no limit (Docker). */
  memory?: number;
  /**
   * Memory + swap limit in bytes, with Docker's semantics: the *total* of memory and swap.
   * - `undefined` or `0` with `memory` set: twice `memory` (so as much swap as memory), silently
   *   skipped when the host has no swap accounting — Docker's default.
   * - `-1`: unlimited swap.
   * - equal to `memory`: no swap at all.
   * - otherwise must be `>= memory`, and `memory` must be set.
   * An explicit value on a host without swap accounting is an `UnsupportedError`
   * (Docker only warns; berth does not drop a limit the caller asked for).
   */
  memorySwap?: number;
  /** CPU time as a number of CPUs, e.g. `0.5`: quota = cpus x 100000us per 100000us period. */
  cpus?: number;
  /** Docker's `--cpu-shares` (2..262144, default weight 1024). v2 converts it to `cpu.weight`. */
  cpuShares?: number;
  /** CPUs the container may run on, kernel list syntax: `"0-1"`, `"0,2"`, `"0-3,6"`. */
  cpuset?: string;
  /** Maximum number of tasks (processes + threads). `-1` or `0` means unlimited. */
  pids?: number;
}

/** Options for {@link CgroupDriver.create}. */
export interface CgroupOptions {
  /**
   * Create the accounting controllers (memory, cpu, cpuacct, pids, blkio/io, freezer) even when
   * no limit needs them, so that `stats()` and `freeze()` work later. Default `false`.
   */
  accounting?: boolean;
  /**
   * Enforce the device allow-list (v1 `devices` controller, v2 BPF program). Default `true`.
   * `false` only for a container in a user namespace, where the kernel refuses device nodes
   * anyway, made by a non-root caller, who may not write `devices.deny` or attach the program.
   */
  devices?: boolean;
}

/** A point-in-time reading of a cgroup's counters. Unlimited limits read as `Infinity`. */
export interface CgroupStats {
  /** Bytes charged (v1 `memory.usage_in_bytes`, includes page cache; v2 `memory.current`). */
  memory: { usage: number; limit: number };
  pids: { current: number; limit: number };
  /** Total CPU time consumed by the cgroup's tasks. */
  cpu: { usageNanos: number };
  /** Bytes read/written on block devices, summed over devices; absent without blkio/io accounting. */
  blkio?: { readBytes: number; writeBytes: number };
}

/**
 * One container's cgroup (one directory per v1 hierarchy, one directory on v2).
 * Readings of controllers that were not created for this cgroup return neutral values
 * (0 usage, `Infinity` limit); create with `{ accounting: true }` for meaningful stats.
 */
export interface Cgroup {
  readonly id: string;
  readonly version: 1 | 2;
  /** Every directory berth created for this cgroup. */
  readonly paths: readonly string[];
  /** The `cgroup.procs` files the launcher writes the child's pid into (one per v1 hierarchy; one on v2). */
  readonly procsFiles: readonly string[];
  /** How many times the kernel's OOM killer killed a task in this cgroup. */
  oomKillCount(): number;
  /** Pids of the processes currently in the cgroup (and in any sub-cgroup the container made). */
  pids(): number[];
  /**
   * Kill every process and wait (bounded) until the cgroup is empty.
   * @throws SystemError `EBUSY` if processes remain after `timeoutMs` (default 1000).
   */
  kill(opts?: { timeoutMs?: number }): void;
  /** Freeze every task; returns once the kernel reports the cgroup frozen (bounded). */
  freeze(opts?: { timeoutMs?: number }): void;
  thaw(): void;
  stats(): CgroupStats;
  /**
   * Remove the directories berth created. Retries `EBUSY` briefly (`timeoutMs`, default 50)
   * because the kernel releases a just-emptied cgroup asynchronously. Missing directories are
   * fine. Sub-cgroups created by someone else inside it are never removed: the error says so.
   */
  remove(opts?: { timeoutMs?: number }): void;
}

/** Creates, finds and lists berth's cgroups on one cgroup version. */
export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Create the cgroup `berth/<id>` with `limits`. Throws `SystemError` `EEXIST` if it exists. */
  create(id: string, limits: CgroupLimits, options?: CgroupOptions): Cgroup;
  /** An existing berth cgroup, e.g. to reconcile after a crash; `undefined` if there is none. */
  open(id: string): Cgroup | undefined;
  /** Ids of the existing berth cgroups. */
  list(): string[];
  /**
   * Removes the `berth` parent directories when no berth cgroup is left in them (they are made
   * on the first create and kept meanwhile, as Docker keeps `/docker`): for a caller that is
   * done with containers on this host, e.g. a test suite or a benchmark at its end. Returns
   * whether every parent is gone. Never touches a parent that still holds a container's cgroup.
   */
  removeParentIfEmpty(): boolean;
}

/** rmdir of a berth parent: true when it is gone, false while children keep it (EBUSY, ENOTEMPTY). */
export function removeEmptyParent(fs: CgroupFs, parent: string): boolean {
  if (!fs.exists(parent)) return true;
  if (fs.listDirs(parent).length > 0) return false;
  try {
    fs.rmdir(parent);
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') return true;
    if (code === 'EBUSY' || code === 'ENOTEMPTY') return false;
    throw err;
  }
}

/**
 * Runs `step` (make the parent, then the container's directory in it) again when it failed with
 * ENOENT: another process's exit may have removed the empty parent in between
 * ({@link removeParentAtExit}). Once the container's directory exists, the parent cannot go.
 */
export function retryIfParentVanished<T>(step: () => T): T {
  for (let attempt = 0; ; attempt++) {
    try {
      return step();
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT' || attempt >= 5) throw err;
    }
  }
}

const parentsToRemove = new Set<{ removeParentIfEmpty(): boolean }>();

/**
 * When this process exits, removes the berth parent of every driver that made a cgroup in it,
 * if no container's cgroup (of any process) is left there: a first sandbox leaves no trace on
 * the host, and nothing is added to the start path.
 */
export function removeParentAtExit(driver: { removeParentIfEmpty(): boolean }): void {
  if (parentsToRemove.size === 0) {
    process.once('exit', () => {
      for (const d of parentsToRemove) {
        try {
          d.removeParentIfEmpty();
        } catch {
          // exiting: a parent that cannot go stays for the next process
        }
      }
    });
  }
  parentsToRemove.add(driver);
}

/** The parent directory every berth cgroup lives in, on both versions. */
export const BERTH_PARENT = 'berth';

/** CFS period berth uses for `cpus`, in microseconds (Docker's and the kernel's default). */
export const CPU_PERIOD_US = 100_000;

export { DEFAULT_DEVICE_RULES, deviceRuleString, type DeviceRule } from '../security/device-rules.js';

// ---------------------------------------------------------------------------------------------
// Limits: validation and Docker's rules, decided once for both drivers.

/** Limits after validation, in the units the kernel files take. */
export interface ResolvedLimits {
  memory?: number;
  /** Total memory+swap in bytes, or `'max'`. */
  memorySwap?: number | 'max';
  /** True when the caller set `memorySwap` (an explicit swap limit must not be dropped). */
  memorySwapExplicit: boolean;
  /** CFS quota in microseconds per {@link CPU_PERIOD_US}. */
  cpuQuota?: number;
  cpuShares?: number;
  cpuset?: string;
  pids?: number | 'max';
}

const LIMIT_KEYS = new Set(['memory', 'memorySwap', 'cpus', 'cpuShares', 'cpuset', 'pids']);

/**
 * Validate `limits` and apply Docker's defaults.
 * @param cpuCount CPUs available to this process (the bound for `cpus`).
 * @throws ValidationError naming the offending field.
 */
export function resolveLimits(limits: CgroupLimits, cpuCount = availableParallelism()): ResolvedLimits {
  if (typeof limits !== 'object' || limits === null) {
    throw new ValidationError('limits', 'must be an object');
  }
  for (const key of Object.keys(limits)) {
    if (!LIMIT_KEYS.has(key) && (limits as Record<string, unknown>)[key] !== undefined) {
      throw new ValidationError(key, `unknown cgroup limit (known: ${[...LIMIT_KEYS].join(', ')})`);
    }
  }
  const out: ResolvedLimits = { memorySwapExplicit: false };

  const { memory, memorySwap, cpus, cpuShares, cpuset, pids } = limits;
  if (memory !== undefined) {
    if (!Number.isSafeInteger(memory) || memory < 0) {
      throw new ValidationError('memory', `must be a non-negative integer number of bytes, got ${String(memory)}`);
    }
    if (memory > 0) out.memory = memory;
  }
  if (memorySwap !== undefined && memorySwap !== 0) {
    if (!Number.isSafeInteger(memorySwap) || memorySwap < -1) {
      throw new ValidationError('memorySwap', `must be -1 (unlimited) or a number of bytes, got ${String(memorySwap)}`);
    }
    if (out.memory === undefined) {
      throw new ValidationError('memorySwap', 'needs memory to be set as well (memorySwap is the total of memory and swap)');
    }
    if (memorySwap !== -1 && memorySwap < out.memory) {
      throw new ValidationError('memorySwap', `(${memorySwap}) must be >= memory (${out.memory}): it is the total of memory and swap`);
    }
    out.memorySwap = memorySwap === -1 ? 'max' : memorySwap;
    out.memorySwapExplicit = true;
  } else if (out.memory !== undefined) {
    // Docker's default: as much swap as memory.
    out.memorySwap = out.memory * 2;
  }

  if (cpus !== undefined && cpus !== 0) {
    if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus < 0.01 || cpus > cpuCount) {
      throw new ValidationError('cpus', `range is from 0.01 to ${cpuCount}.00, as there are only ${cpuCount} CPUs available; got ${String(cpus)}`);
    }
    out.cpuQuota = Math.round(cpus * CPU_PERIOD_US);
  }
  if (cpuShares !== undefined && cpuShares !== 0) {
    if (!Number.isSafeInteger(cpuShares) || cpuShares < 2 || cpuShares > 262_144) {
      throw new ValidationError('cpuShares', `must be an integer from 2 to 262144, got ${String(cpuShares)}`);
    }
    out.cpuShares = cpuShares;
  }
  if (cpuset !== undefined) {
    parseCpuList(cpuset, 'cpuset');
    out.cpuset = cpuset;
  }
  if (pids !== undefined) {
    if (!Number.isSafeInteger(pids) || pids < -1) {
      throw new ValidationError('pids', `must be a positive integer, or -1/0 for unlimited; got ${String(pids)}`);
    }
    out.pids = pids <= 0 ? 'max' : pids;
  }
  return out;
}

/**
 * Parse a kernel CPU list (`"0-2,5"`) into the set of CPU numbers.
 * @throws ValidationError on anything else (spaces, reversed ranges, empty items).
 */
export function parseCpuList(list: string, option = 'cpuset'): Set<number> {
  if (typeof list !== 'string' || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) {
    throw new ValidationError(option, `must be a CPU list like "0-1" or "0,2", got ${JSON.stringify(list)}`);
  }
  const cpus = new Set<number>();
  for (const item of list.split(',')) {
    const [lo, hi = lo] = item.split('-').map(Number) as [number, number?];
    if (hi < lo) throw new ValidationError(option, `range "${item}" is reversed`);
    if (hi - lo > 65_536) throw new ValidationError(option, `range "${item}" is too large`);
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  return cpus;
}

/**
 * Check that every CPU of `requested` is in the parent's `available` list (the kernel would
 * answer a bare EINVAL; Docker reports the same condition as a validation error).
 */
export function checkCpusetAvailable(requested: string, available: string): void {
  const avail = available.trim() === '' ? new Set<number>() : parseCpuList(available.trim(), 'cpuset');
  const missing = [...parseCpuList(requested)].filter((c) => !avail.has(c));
  if (missing.length > 0) {
    throw new ValidationError('cpuset', `requested CPUs are not available - requested ${requested}, available: ${available.trim()}`);
  }
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** True if `id` is a name berth could have given a cgroup (used to ignore foreign entries). */
export function isCgroupId(id: string): boolean {
  return typeof id === 'string' && ID_RE.test(id);
}

/** A cgroup id becomes a directory name: one safe path component, nothing else. */
export function validateCgroupId(id: string): void {
  if (!isCgroupId(id)) {
    throw new ValidationError('id', `must be 1-128 characters of [A-Za-z0-9_.-] starting with a letter or digit, got ${JSON.stringify(id)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The file-system seam.

/**
 * The handful of operations the drivers perform on cgroupfs. Every method throws
 * {@link SystemError} (with `.syscall`, `.path`, `.code`) on failure.
 */
export interface CgroupFs {
  /** mkdir(2), not recursive: the kernel creates the interface files. */
  mkdir(path: string): void;
  /** rmdir(2) of a cgroup directory (its interface files are not real files). */
  rmdir(path: string): void;
  read(path: string): string;
  /** One write(2) of `data` to an existing file (cgroup files take one command per write). */
  write(path: string, data: string): void;
  /** One open, then one write(2) per item: several commands to the same file (devices.allow). */
  writeEach(path: string, items: readonly string[]): void;
  exists(path: string): boolean;
  /** Names of the sub-directories of `path`; `[]` if it does not exist. */
  listDirs(path: string): string[];
  /** Send `signal` to `pid`; a pid that already exited (ESRCH) is not an error. */
  kill(pid: number, signal: NodeJS.Signals): void;
  /**
   * cgroup v2: enforce the device allow-list ({@link DEFAULT_DEVICE_RULES}) on the cgroup
   * directory `path` by attaching a `BPF_CGROUP_DEVICE` program.
   */
  attachDeviceFilter(path: string): void;
}

const VERBS: Record<string, string> = {
  mkdir: 'creating cgroup directory',
  rmdir: 'removing cgroup directory',
  read: 'reading',
  write: 'writing to',
  readdir: 'listing',
  kill: 'signalling',
};

/** Turn a Node fs error into berth's {@link SystemError}, naming the file (and the value written). */
export function toSystemError(err: unknown, syscall: string, path: string, data?: string): Error {
  if (isBerthError(err)) return err;
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string') return err as Error;
  const what = data === undefined ? '' : ` ${JSON.stringify(data.trim())}`;
  const verb = syscall === 'write' ? `writing${what} to` : VERBS[syscall] ?? syscall;
  return new SystemError(e.code, `${verb} ${path} failed: ${e.code}${hint(e.code, syscall, path)}`, {
    syscall,
    path,
    ...(typeof e.errno === 'number' ? { errno: Math.abs(e.errno) } : {}),
    cause: err,
  });
}

function hint(code: string, syscall: string, path: string): string {
  if (code === 'EACCES' || code === 'EPERM') return ' (berth needs root, or a cgroup delegated to this user)';
  if (code === 'EEXIST' && syscall === 'mkdir') return ' (a cgroup with this id already exists)';
  if (code === 'EBUSY' && syscall === 'rmdir') return ' (the cgroup still has processes or sub-cgroups)';
  if (code === 'EINVAL' && path.endsWith('cpuset.cpus')) return ' (CPUs not available to the parent cgroup)';
  if (code === 'ENOSPC' && path.endsWith('cgroup.procs')) return ' (cpuset.cpus/mems of this cgroup are empty)';
  return '';
}

// O_WRONLY|O_TRUNC without O_CREAT: a missing interface file must fail with ENOENT (the
// controller is not enabled) instead of being "created", and write-only files such as
// devices.allow or cgroup.kill must not be opened for reading.
const WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_TRUNC;

/** The real cgroupfs, through synchronous `node:fs` (kernel pseudo-files answer in microseconds). */
export const nodeCgroupFs: CgroupFs = Object.freeze({
  mkdir(path: string): void {
    try {
      fs.mkdirSync(path);
    } catch (err) {
      throw toSystemError(err, 'mkdir', path);
    }
  },
  rmdir(path: string): void {
    try {
      fs.rmdirSync(path);
    } catch (err) {
      throw toSystemError(err, 'rmdir', path);
    }
  },
  read(path: string): string {
    try {
      return fs.readFileSync(path, 'utf8');
    } catch (err) {
      throw toSystemError(err, 'read', path);
    }
  },
  write(path: string, data: string): void {
    let fd: number | undefined;
    try {
      fd = fs.openSync(path, WRITE_FLAGS);
      // Exactly one write(2): the kernel parses each write as one command.
      fs.writeSync(fd, data);
    } catch (err) {
      throw toSystemError(err, 'write', path, data);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  },
  writeEach(path: string, items: readonly string[]): void {
    let fd: number | undefined;
    let item: string | undefined;
    try {
      fd = fs.openSync(path, WRITE_FLAGS);
      for (item of items) fs.writeSync(fd, item);
    } catch (err) {
      throw toSystemError(err, 'write', path, item);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  },
  exists(path: string): boolean {
    return fs.existsSync(path);
  },
  listDirs(path: string): string[] {
    try {
      return fs
        .readdirSync(path, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw toSystemError(err, 'readdir', path);
    }
  },
  kill(pid: number, signal: NodeJS.Signals): void {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
      throw toSystemError(err, 'kill', `pid ${pid}`);
    }
  },
  attachDeviceFilter(path: string): void {
    attachDefaultDeviceFilter(path);
  },
});

// ---------------------------------------------------------------------------------------------
// Small helpers shared by both drivers.

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Block the thread for `ms` (fractions allowed). Only for bounded waits on the kernel. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Read a file that may be absent (controller not enabled): `undefined` instead of ENOENT. */
export function readOptional(cgfs: CgroupFs, path: string): string | undefined {
  try {
    return cgfs.read(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Parse a `cgroup.procs` file. */
export function parsePids(text: string | undefined): number[] {
  if (!text) return [];
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const n = Number.parseInt(line, 10);
    if (Number.isSafeInteger(n) && n > 0) out.push(n);
  }
  return out;
}

/** Value of `key` in a flat-keyed file (`oom_kill 3`, `usage_usec 12`), or 0. */
export function readKeyed(text: string | undefined, key: string): number {
  if (!text) return 0;
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0 && line.slice(0, sp) === key) return Number(line.slice(sp + 1).trim()) || 0;
  }
  return 0;
}

/**
 * A limit file's value: `max`, `-1` and v1's "unlimited" sentinel (PAGE_COUNTER_MAX pages,
 * about 2^63) read as `Infinity`; a missing file reads as `Infinity`.
 */
export function parseLimit(text: string | undefined): number {
  if (text === undefined) return Infinity;
  const t = text.trim();
  if (t === 'max' || t === '' || t === '-1') return Infinity;
  const n = Number(t);
  return Number.isFinite(n) && n < 2 ** 62 ? n : Infinity;
}

/** A counter file's value (`memory.current`, `pids.current`), 0 when absent. */
export function parseCounter(text: string | undefined): number {
  const n = Number((text ?? '').trim());
  return Number.isFinite(n) ? n : 0;
}

/**
 * Remove cgroup directories, deepest first, retrying EBUSY until `timeoutMs` has passed: after
 * the last task exits the kernel still has to release the css before rmdir succeeds.
 * ENOENT is success. A directory that stays busy because it holds sub-cgroups berth did not
 * create is reported, never removed.
 */
export function removeDirs(cgfs: CgroupFs, paths: readonly string[], timeoutMs = 50): void {
  const ordered = [...paths].sort((a, b) => b.split('/').length - a.split('/').length);
  const deadline = performance.now() + timeoutMs;
  for (const path of ordered) {
    for (let attempt = 0; ; attempt++) {
      try {
        cgfs.rmdir(path);
        break;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || performance.now() >= deadline) {
          if (code === 'EBUSY') {
            const children = cgfs.listDirs(path);
            if (children.length > 0) {
              throw new SystemError('EBUSY', `removing cgroup directory ${path} failed: EBUSY (it contains sub-cgroups berth did not create: ${children.join(', ')}; remove them first)`, { syscall: 'rmdir', path, cause: err });
            }
          }
          throw err;
        }
        sleepSync(Math.min(0.1 * 2 ** attempt, 5));
      }
    }
  }
}

/**
 * Undoes a failed `create()`: removes the directories it made, keeping the create's own error
 * the one reported (a leftover empty directory is reconciled by the next start).
 */
export function removeAfterFailedCreate(cgfs: CgroupFs, paths: readonly string[]): void {
  try {
    removeDirs(cgfs, paths);
  } catch {
    // the caller rethrows the error that made the create fail
  }
}

/**
 * The controllers both versions need for `r`'s memory, cpu and cpuset limits (`required`), and
 * those `accounting` adds when there is no limit (`optional`). Each driver adds its own: v1
 * pids, devices and the cpuacct/freezer/blkio hierarchies; v2 pids and io.
 */
export function limitControllers(r: ResolvedLimits, accounting: boolean): { required: string[]; optional: string[] } {
  const required: string[] = [];
  const optional: string[] = [];
  if (r.memory !== undefined) required.push('memory');
  else if (accounting) optional.push('memory');
  if (r.cpuQuota !== undefined || r.cpuShares !== undefined) required.push('cpu');
  else if (accounting) optional.push('cpu');
  if (r.cpuset !== undefined) required.push('cpuset');
  return { required, optional };
}

/** Wait (bounded) until `done()` is true; false on timeout. */
export function waitUntil(done: () => boolean, timeoutMs: number): boolean {
  const deadline = performance.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (done()) return true;
    if (performance.now() >= deadline) return false;
    sleepSync(Math.min(0.05 * 2 ** attempt, 5));
  }
}

/** Pids in `dir` and in any sub-cgroup the container created below it. */
export function collectPids(cgfs: CgroupFs, dir: string, into: Set<number>): void {
  for (const pid of parsePids(readOptional(cgfs, join(dir, 'cgroup.procs')))) into.add(pid);
  for (const child of cgfs.listDirs(dir)) collectPids(cgfs, join(dir, child), into);
}

/** The error for a cgroup that would not empty after SIGKILL. */
export function stillBusy(dir: string, pids: readonly number[]): SystemError {
  return new SystemError('EBUSY', `processes ${pids.join(', ')} are still in cgroup ${dir} after SIGKILL (stuck in uninterruptible sleep?)`, { syscall: 'kill', path: dir });
}
