/**
 * The host's cgroup driver, probed once per process, and what a container sees of it.
 * @module
 */
import { basename } from 'node:path';
import { CgroupV1, CgroupV1Driver, probeCgroups, type Cgroup, type CgroupDriver } from '../cgroup/index.js';
import type { CgroupMount } from './rootfs-plan.js';
import { sweepOrphanRunCgroups } from './orphan-sweep.js';
import { delegatedCgroupParent, isRootless } from '../rootless/index.js';

export interface HostCgroups {
  driver: CgroupDriver;
  /** The cgroup filesystems to mount at /sys/fs/cgroup inside a container in `cgroup`. */
  mountsFor(cgroup: Cgroup): CgroupMount[];
}

let cached: HostCgroups | undefined;

/** Probes /proc/self/mountinfo on first use (v1, hybrid or v2) and keeps the answer. */
export function cgroupsForHost(): HostCgroups {
  if (cached) return cached;
  const driver = probeCgroups(isRootless() ? { delegatedParent: delegatedCgroupParent() } : {});
  // Once per process: cgroups of run()s whose owner was killed before cleaning up.
  sweepOrphanRunCgroups(driver);
  cached = {
    driver,
    mountsFor(cgroup: Cgroup): CgroupMount[] {
      if (!(driver instanceof CgroupV1Driver) || !(cgroup instanceof CgroupV1)) {
        return [{ fstype: 'cgroup2', target: '/sys/fs/cgroup' }];
      }
      // Only the hierarchies the container joined: in the others it would see the host's tree.
      const mounts: CgroupMount[] = [];
      for (const h of driver.hierarchies) {
        if (!h.controllers.some((c) => cgroup.dirOf(c) !== undefined)) continue;
        mounts.push({ fstype: 'cgroup', data: h.controllers.join(','), target: `/sys/fs/cgroup/${basename(h.mountPoint)}` });
      }
      return mounts;
    },
  };
  return cached;
}
