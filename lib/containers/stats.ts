/**
 * `stats()`: a container's resource use from its cgroup, in Docker's terms. CPU percent needs
 * two samples: (Δ cgroup CPU time) / (Δ wall time) × 100, which equals Docker's
 * cpuDelta / systemDelta × onlineCPUs × 100 (a container keeping two CPUs busy shows 200 %).
 * An unlimited memory limit reads as the host's total memory, as in Docker.
 * @module
 */
import { availableParallelism, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CgroupStats } from '../cgroup/index.js';
import { AbortError } from '../errors.js';

export interface ContainerStats {
  /** When the second sample was taken (RFC 3339). */
  read: string;
  cpu: {
    /** Percent of one CPU over the sampling interval (up to `onlineCpus` × 100). */
    percent: number;
    /** Total CPU time the container used since it started, in nanoseconds. */
    usageNanos: number;
    onlineCpus: number;
  };
  memory: { usage: number; limit: number; percent: number };
  /** `limit` is Infinity without a pids limit. */
  pids: { current: number; limit: number };
  blockIo: { readBytes: number; writeBytes: number };
}

export interface StatsSample {
  stats: CgroupStats;
  /** process.hrtime.bigint() when taken. */
  at: bigint;
}

export function takeSample(read: () => CgroupStats): StatsSample {
  return { stats: read(), at: process.hrtime.bigint() };
}

/** Turns two samples into Docker-like numbers. Pure. */
export function computeStats(prev: StatsSample, cur: StatsSample, hostMemory = totalmem(), onlineCpus = availableParallelism()): ContainerStats {
  const wallNs = Number(cur.at - prev.at);
  const cpuNs = Math.max(0, cur.stats.cpu.usageNanos - prev.stats.cpu.usageNanos);
  const limit = Number.isFinite(cur.stats.memory.limit) ? Math.min(cur.stats.memory.limit, hostMemory) : hostMemory;
  return {
    read: new Date().toISOString(),
    cpu: { percent: wallNs > 0 ? (cpuNs / wallNs) * 100 : 0, usageNanos: cur.stats.cpu.usageNanos, onlineCpus },
    memory: { usage: cur.stats.memory.usage, limit, percent: limit > 0 ? (cur.stats.memory.usage / limit) * 100 : 0 },
    pids: { current: cur.stats.pids.current, limit: cur.stats.pids.limit },
    blockIo: { readBytes: cur.stats.blkio?.readBytes ?? 0, writeBytes: cur.stats.blkio?.writeBytes ?? 0 },
  };
}

/** One reading over `intervalMs`. */
export async function oneShot(read: () => CgroupStats, intervalMs: number, signal?: AbortSignal): Promise<ContainerStats> {
  const a = takeSample(read);
  await sleep(intervalMs, undefined, signal ? { signal } : {}).catch((e) => {
    throw new AbortError('stats() was aborted', { cause: e });
  });
  return computeStats(a, takeSample(read));
}

/** A reading every `intervalMs` until `read` throws (the container stopped) or the signal aborts. */
export async function* streamStats(read: () => CgroupStats, isRunning: () => Promise<boolean>, intervalMs: number, signal?: AbortSignal): AsyncGenerator<ContainerStats> {
  let prev = takeSample(read);
  for (;;) {
    try {
      await sleep(intervalMs, undefined, signal ? { signal } : {});
    } catch {
      return;
    }
    if (!(await isRunning())) return;
    let cur: StatsSample;
    try {
      cur = takeSample(read);
    } catch {
      return; // the cgroup is gone: the container exited
    }
    yield computeStats(prev, cur);
    prev = cur;
  }
}
