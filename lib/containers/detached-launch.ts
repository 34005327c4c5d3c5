/**
 * Launching a `lifetime: 'detached'` container: the cgroup, network and plan as `launch()`
 * makes them, then `spawnDetached` (`lib/launch/detached.ts`), whose `berth-helper monitor`
 * becomes PID 1's parent, outlives this process, writes the logs, restarts PID 1 by the
 * restart policy, runs the healthcheck and records each run in `run.json`
 * (`monitor-run.ts`) and each event in the runtime's journal (`event-journal.ts`).
 *
 * The network is prepared here, in the creating process (leases, ports, rules: TypeScript
 * state), and only its interfaces travel in the spec; the monitor's `Spawn()` creates them,
 * again at each restart with the same addresses. The leases follow the monitor (not one PID 1)
 * so that no other launch reclaims them between two runs; whichever process later sees the
 * final exit (a `stop()`, a read, the next `Runtime.open()`) releases them by container id,
 * and once the monitor is gone any network operation may reclaim them.
 * @module
 */
import type { LimitsSkipped } from '../launch/limits.js';
import { join } from 'node:path';
import { CgroupV1, type Cgroup } from '../cgroup/index.js';
import { spawnDetached, type MonitorJournal } from '../launch/detached.js';
import { execFailureOf, prepareLaunch, type LaunchRequest } from '../launch/launcher.js';
import type { ContainerRecord } from './container-record.js';
import { planExecAs } from './exec.js';
import { probeArgv } from './healthcheck.js';
import { identityOf } from '../state/process-identity.js';
import { monitorStackPlan } from '../network/usermode-attach.js';
import type { PublishedPort } from '../network/types.js';
import { UnsupportedError } from '../errors.js';

export interface DetachedLaunched {
  /** Rootless: the run's user-mode stack and published ports (its monitor runs the stack). */
  userModeNetwork?: { stack: string; ports: PublishedPort[] };
  monitorPid: number;
  pid: number;
  cgroup: Cgroup;
  execFailure?: { exitCode: 127 | 126; message: string };
  limitsSkipped?: LimitsSkipped;
}

/** The file the monitor reads the OOM kill count from. */
function oomFileOf(cgroup: Cgroup): string | undefined {
  if (cgroup instanceof CgroupV1) {
    const dir = cgroup.dirOf('memory');
    return dir === undefined ? undefined : join(dir, 'memory.oom_control');
  }
  return cgroup.paths[0] === undefined ? undefined : join(cgroup.paths[0], 'memory.events');
}

export interface DetachedWhere {
  stateDir: string;
  logMaxSize: number;
  logMaxFiles: number;
  /** Policy restarts since the user's last start. */
  retries: number;
  journal: MonitorJournal;
}

function detachedRootRefused(): UnsupportedError {
  return new UnsupportedError("lifetime: 'detached' containers cannot use storage driver \"fuse-overlayfs\" without root yet (the root is a mount handed to one launch); use lifetime 'process', or storageDriver \"overlay\" or \"vfs\"", { option: 'lifetime' });
}

export async function launchDetached(req: LaunchRequest, record: ContainerRecord, where: DetachedWhere): Promise<DetachedLaunched> {
  // The monitor holds the container's stdio; nothing can write to a stdin pipe later.
  // Refused before anything starts (the check after prepareLaunch stays for any other driver
  // whose root comes detached).
  if (req.root.kind !== 'host' && req.root.driver?.name === 'fuse-overlayfs' && (process.geteuid?.() ?? 0) !== 0) throw detachedRootRefused();
  const { cgroup, network, plan, abandon, limitsSkipped, hostRoot, spawned } = await prepareLaunch(req, { accounting: true, stdinPiped: false });
  const skipped = limitsSkipped ? { limitsSkipped } : {};
  try {
    // A rootless user network is wired by this process's namespace helper before "go"
    // (lib/network/rootless-attach.ts); a monitor has no such helper to restart PID 1 with.
    if (network?.beforeGo && !network.usermode) {
      throw new UnsupportedError("lifetime: 'detached' containers cannot use a user network without root yet (its namespace lives with this process); use lifetime 'process', or network: \"bridge\" (the container's own user-mode network)", { option: 'lifetime' });
    }
    // A detached root (fuse-overlayfs without root) is attached once, by this launch: a monitor
    // could not start PID 1 again on it, and this process's descriptor is not the monitor's.
    if (hostRoot?.detached) throw detachedRootRefused();
    const oomFile = oomFileOf(cgroup);
    const hc = record.healthcheck;
    // The probe runs as the container's user, resolved for PID 1 by this very plan (Docker's
    // healthcheck is an exec with the container's defaults).
    const home = plan.spec.env.find((kv) => kv.startsWith('HOME='))?.slice(5) ?? '/';
    const health = hc
      ? {
          intervalMs: hc.intervalMs,
          timeoutMs: hc.timeoutMs,
          startPeriodMs: hc.startPeriodMs,
          startIntervalMs: hc.startIntervalMs,
          retries: hc.retries,
          probe: planExecAs({ record, pidfd: -1, cgroupProcs: cgroup.procsFiles }, { uid: plan.spec.uid, gid: plan.spec.gid, additionalGids: plan.spec.groups, home }, probeArgv(hc), {}),
        }
      : undefined;
    let r;
    try {
      r = await spawnDetached(plan.spec, {
        stateDir: where.stateDir,
        logMaxSize: where.logMaxSize,
        logMaxFiles: where.logMaxFiles,
        cgroupPaths: cgroup.paths,
        ...(oomFile ? { oomFile } : {}),
        restart: { ...record.restart, retries: where.retries },
        ...(health ? { health } : {}),
        autoRemove: record.autoRemove,
        journal: where.journal,
        ...(network?.usermode ? { userModeStack: monitorStackPlan(network.usermode, record.id) } : {}),
      });
    } finally {
      network?.closeFds();
      spawned?.();
    }
    if (r.execFailed) {
      // The monitor has already removed the cgroup; release the network too.
      await abandon();
      return { monitorPid: r.monitorPid, pid: r.pid, cgroup, execFailure: execFailureOf(r.execFailed, req.argv[0]!), ...skipped };
    }
    await network?.started(r.pid, r.monitorPid);
    // The monitor may start PID 1 again from the same spec: it holds the host side of the root.
    const monitor = identityOf(r.monitorPid);
    await hostRoot?.driver.afterSpawn?.(hostRoot.layer, monitor ? { kind: 'detached', monitor } : { kind: 'attached' });
    const userMode = network?.usermode ? { userModeNetwork: { stack: network.usermode.stack, ports: network.ports } } : {};
    return { monitorPid: r.monitorPid, pid: r.pid, cgroup, ...skipped, ...userMode };
  } catch (error) {
    await abandon();
    throw error;
  }
}
