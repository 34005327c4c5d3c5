/**
 * Launching a `lifetime: 'detached'` container: the cgroup, network and plan as `launch()`
 * makes them, then `spawnDetached` (`lib/container/detached.ts`), whose `berth-helper monitor`
 * becomes PID 1's parent, outlives this process, writes the logs and records the exit in
 * `exit.json`.
 *
 * The network is prepared here, in the creating process (leases, ports, rules: TypeScript
 * state), and only its interfaces travel in the spec; the monitor's `Spawn()` creates them.
 * The leases follow PID 1 once it runs, so whichever process later sees the exit (a `stop()`,
 * a read, the next `Runtime.open()`) releases them by container id.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CgroupV1, type Cgroup } from '../cgroup/index.js';
import { cgroupsForHost } from '../container/cgroup-setup.js';
import { spawnDetached } from '../container/detached.js';
import { planLaunch } from '../container/launch-plan.js';
import { DEFAULT_PIDS_LIMIT, STAGING_DIR, type LaunchRequest } from '../container/launcher.js';
import { helperExecutableFd } from '../native.js';
import { prepareNetwork, type PreparedNetwork } from '../network/attach.js';

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
  const opts = req.options;
  mkdirSync(STAGING_DIR, { recursive: true, mode: 0o700 });
  const cgroups = cgroupsForHost();
  const cgroup = cgroups.driver.create(
    req.id,
    { memory: opts.memory, memorySwap: opts.memorySwap, cpus: opts.cpus, cpuShares: opts.cpuShares, cpuset: opts.cpuset, pids: opts.pids ?? DEFAULT_PIDS_LIMIT },
    { accounting: true },
  );
  let network: PreparedNetwork | undefined;
  try {
    network = await prepareNetwork({
      launchId: req.id,
      options: opts,
      ...(req.networks ? { networks: req.networks } : {}),
      ...(req.container ? { container: req.container } : {}),
    });
    const image = req.image?.config;
    const plan = planLaunch({
      root: req.root,
      argv: req.argv,
      options: opts,
      stagingDir: STAGING_DIR,
      cgroupProcs: cgroup.procsFiles,
      cgroupMounts: cgroups.mountsFor(cgroup),
      ...(opts.init ? { initFd: helperExecutableFd() } : {}),
      ...(image?.Env ? { imageEnv: image.Env } : {}),
      ...(image?.WorkingDir ? { imageWorkdir: image.WorkingDir } : {}),
      ...(image?.User ? { imageUser: image.User } : {}),
      ...(req.upper ? { upper: req.upper } : {}),
      // The monitor holds the container's stdio; nothing can write to a stdin pipe later.
      stdinPiped: false,
      ...(network ? { network } : {}),
    });
    const oomFile = oomFileOf(cgroup);
    let r;
    try {
      r = await spawnDetached(plan.spec, { ...where, cgroupPaths: cgroup.paths, ...(oomFile ? { oomFile } : {}) });
    } finally {
      network?.closeFds();
    }
    if (r.execFailed) {
      const f = r.execFailed;
      const message = f.notFound ? `berth: exec: "${req.argv[0]}": executable file not found in $PATH\n` : `berth: exec: "${f.path ?? req.argv[0]}": ${f.code === 'EACCES' ? 'permission denied' : f.message}\n`;
      await network?.release();
      cgroup.remove({ timeoutMs: 1000 });
      return { monitorPid: r.monitorPid, pid: r.pid, cgroup, execFailure: { exitCode: f.notFound ? 127 : 126, message } };
    }
    await network?.started(r.pid);
    return { monitorPid: r.monitorPid, pid: r.pid, cgroup };
  } catch (error) {
    await network?.release().catch(() => {});
    try {
      cgroup.remove({ timeoutMs: 1000 });
    } catch {
      // the launch error is the one to report
    }
    throw error;
  }
}
