/**
 * `run()` cgroups are named `run-<owner pid>-<owner start time>-<random>`, so that a later
 * process can tell when the Node process that made one is gone (SIGKILLed before its
 * `finally` ran) and remove it. A pid alone could be reused; the start time from
 * /proc/<pid>/stat makes the owner's identity exact.
 * @module
 */
import type { CgroupDriver } from '../cgroup/index.js';
import { processStartTime, selfIdentity } from '../state/process-identity.js';

const RUN_ID = /^run-(\d+)-(\d+)-[0-9a-f]+$/;

/** A cgroup id for one `run()` of this process. */
export function runCgroupId(random: string): string {
  const self = selfIdentity();
  return `run-${self.pid}-${self.startTime}-${random}`;
}

/** Whether `id` is a run() cgroup whose owning process no longer exists. */
export function isOrphanRunCgroup(id: string, startTimeOf: (pid: number) => string | undefined = processStartTime): boolean {
  const m = RUN_ID.exec(id);
  if (!m) return false;
  const pid = Number(m[1]);
  if (pid === process.pid) return false;
  return startTimeOf(pid) !== m[2];
}

/**
 * Removes run() cgroups whose owner died: kills anything left in them (the parent-death
 * signal should have done it already) and removes the directories. Containers' cgroups
 * (other names) are left to their own reconciliation. Returns the ids removed.
 */
export function sweepOrphanRunCgroups(driver: CgroupDriver): string[] {
  const removed: string[] = [];
  for (const id of driver.list()) {
    if (!isOrphanRunCgroup(id)) continue;
    const cgroup = driver.open(id);
    if (!cgroup) continue;
    try {
      cgroup.kill({ timeoutMs: 1000 });
      cgroup.remove({ timeoutMs: 200 });
      removed.push(id);
    } catch {
      // Busy or already gone: the next sweep tries again.
    }
  }
  return removed;
}
