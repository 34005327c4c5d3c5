/**
 * Launching a `lifetime: 'detached'` container: the cgroup, network and plan as `launch()`
 * makes them, then `spawnDetached` (`lib/launch/detached.ts`), whose `berth-helper monitor`
 * becomes PID 1's parent, outlives this process, writes the logs and records the exit in
 * `exit.json`.
 *
 * The network is prepared here, in the creating process (leases, ports, rules: TypeScript
 * state), and only its interfaces travel in the spec; the monitor's `Spawn()` creates them.
 * The leases follow PID 1 once it runs, so whichever process later sees the exit (a `stop()`,
 * a read, the next `Runtime.open()`) releases them by container id.
 * @module
 */
import { join } from 'node:path';
import { CgroupV1, type Cgroup } from '../cgroup/index.js';
import { spawnDetached } from '../launch/detached.js';
import { execFailureOf, prepareLaunch, type LaunchRequest } from '../launch/launcher.js';

export interface DetachedLaunched {
  monitorPid: number;
  pid: number;
  cgroup: Cgroup;
  execFailure?: { exitCode: 127 | 126; message: string };
}

/** The file the monitor reads the OOM kill count from. */
function oomFileOf(cgroup: Cgroup): string | undefined {
  if (cgroup instanceof CgroupV1) {
    const dir = cgroup.dirOf('memory');
    return dir === undefined ? undefined : join(dir, 'memory.oom_control');
  }
  return cgroup.paths[0] === undefined ? undefined : join(cgroup.paths[0], 'memory.events');
}

export async function launchDetached(req: LaunchRequest, where: { stateDir: string; logMaxSize: number; logMaxFiles: number }): Promise<DetachedLaunched> {
  // The monitor holds the container's stdio; nothing can write to a stdin pipe later.
  const { cgroup, network, plan, abandon } = await prepareLaunch(req, { accounting: true, stdinPiped: false });
  try {
    const oomFile = oomFileOf(cgroup);
    let r;
    try {
      r = await spawnDetached(plan.spec, { ...where, cgroupPaths: cgroup.paths, ...(oomFile ? { oomFile } : {}) });
    } finally {
      network?.closeFds();
    }
    if (r.execFailed) {
      // The monitor has already removed the cgroup; release the network too.
      await abandon();
      return { monitorPid: r.monitorPid, pid: r.pid, cgroup, execFailure: execFailureOf(r.execFailed, req.argv[0]!) };
    }
    await network?.started(r.pid);
    return { monitorPid: r.monitorPid, pid: r.pid, cgroup };
  } catch (error) {
    await abandon();
    throw error;
  }
}
