/**
 * Starting a container that outlives this process: `berth-helper monitor` becomes its PID 1's
 * parent, writes its logs, applies its restart policy and healthcheck, and records its runs
 * and events (docs/design/containers.md, "Detached supervision").
 * @module
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { BerthError } from '../errors.js';
import { encodeLaunchSpec, execHelperExecutableFd, fromNativeError, helperExecutablePath, type NativeErrorShape, type NativeLaunchSpec } from '../native.js';

/** What the monitor restarts by (Docker's policy, already validated). */
export interface MonitorRestart {
  name: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  /** `on-failure` only; 0 = no limit. */
  maximumRetryCount: number;
  /** Policy restarts already done since the user's last start (`on-failure:max` counts them). */
  retries: number;
}

/** The healthcheck the monitor runs, in milliseconds (already validated). */
export interface MonitorHealth {
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
  /** The probe as an exec into the container (`join.pidfd` and `join.helperFd` are replaced by the monitor's). */
  probe: NativeLaunchSpec;
}

/** Where the monitor appends the container's events (lib/containers/event-journal.ts). */
export interface MonitorJournal {
  path: string;
  id: string;
  name: string;
  /** Attributes every event carries (name, image, labels). */
  attributes: Record<string, string>;
}

export interface DetachedOptions {
  /** `<root>/containers/<id>`: the monitor writes `container.log*` and `run.json` here. */
  stateDir: string;
  /** The container's cgroup directories; the monitor removes them after the final exit. */
  cgroupPaths: readonly string[];
  /** `memory.oom_control` (v1) or `memory.events` (v2) of the container's cgroup. */
  oomFile?: string;
  /** Rotate the log at this size (bytes). Default 10 MiB. */
  logMaxSize?: number;
  /** Keep this many log files, the live one included. Default 3. */
  logMaxFiles?: number;
  /** Default: no restarts. */
  restart?: MonitorRestart;
  health?: MonitorHealth;
  /** Remove the container's files (writable layer, logs) after the final exit. */
  autoRemove?: boolean;
  journal?: MonitorJournal;
  /** Rootless: the user-mode network stack the monitor starts for each run (lib/network/usermode-attach.ts `monitorStackPlan`). */
  userModeStack?: { kind: string; scratch: string; argv: string[]; hostfwd: string[] };
}

export interface DetachedStart {
  monitorPid: number;
  pid: number;
  /** Set when the command could not be executed (the container already ended). */
  execFailed?: NativeErrorShape & { notFound: boolean };
}

/** The fd number the sealed init helper gets in the monitor, when the spec uses it. */
const MONITOR_EXEC_FD = 5;
/** The fd number of the joined network namespace (`container:<id>`) in the monitor. */
const MONITOR_NETNS_FD = 6;
/** The encoded probe spec (read to EOF), with a healthcheck. */
const MONITOR_PROBE_SPEC_FD = 7;
/** berth-exec's sealed memfd, with a healthcheck. */
const MONITOR_EXEC_HELPER_FD = 8;
/** Rootless: the held user namespace the container is created in (and recreated in on restart). */
const MONITOR_USERNS_FD = 9;

/** The monitor's arguments (src-native/monitor.cc ParseArgs). */
export function monitorArgs(options: DetachedOptions): string[] {
  const args = ['monitor', '--state-dir', options.stateDir, '--log-max-size', String(options.logMaxSize ?? 10 << 20), '--log-max-files', String(options.logMaxFiles ?? 3)];
  for (const dir of options.cgroupPaths) args.push('--cgroup', dir);
  if (options.oomFile) args.push('--oom-file', options.oomFile);
  const r = options.restart;
  if (r && r.name !== 'no') args.push('--restart', r.name, '--max-retries', String(r.maximumRetryCount), '--retries', String(r.retries));
  const h = options.health;
  if (h) {
    args.push('--health-interval', String(Math.max(1, Math.round(h.intervalMs))), '--health-timeout', String(Math.max(1, Math.round(h.timeoutMs))));
    args.push('--health-start-period', String(Math.round(h.startPeriodMs)), '--health-start-interval', String(Math.max(1, Math.round(h.startIntervalMs))), '--health-retries', String(h.retries));
  }
  if (options.autoRemove) args.push('--auto-remove');
  const j = options.journal;
  if (j) args.push('--journal', j.path, '--id', j.id, '--name', j.name, '--event-attributes', JSON.stringify(j.attributes));
  const net = options.userModeStack;
  if (net) {
    args.push('--net-stack', net.kind, '--net-scratch', net.scratch);
    for (const a of net.argv) args.push('--net-arg', a);
    for (const h of net.hostfwd) args.push('--net-hostfwd', h);
  }
  return args;
}

/**
 * Starts the monitor, hands it the spec, and resolves once the container's PID 1 has exec'd
 * (or failed to). The monitor runs in its own session and is not tied to this process.
 */
export async function spawnDetached(spec: NativeLaunchSpec, options: DetachedOptions): Promise<DetachedStart> {
  const args = monitorArgs(options);
  const inherited = spec.execFd >= 0 ? spec.execFd : 'ignore';
  const netns = spec.netnsFd !== undefined && spec.netnsFd >= 0 ? spec.netnsFd : undefined;
  // Descriptors the spec names reach the monitor at fixed numbers, and the spec is rewritten to
  // them: the monitor's Spawn() uses them exactly as launch() uses this process's.
  const sent: NativeLaunchSpec = {
    ...spec,
    dieWithParent: false,
    ...(spec.execFd >= 0 ? { execFd: MONITOR_EXEC_FD } : {}),
    ...(netns !== undefined ? { netnsFd: MONITOR_NETNS_FD } : {}),
    ...(spec.joinUserns ? { joinUserns: { ...spec.joinUserns, fd: MONITOR_USERNS_FD } } : {}),
  };
  const health = options.health;
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'ignore', 'ignore', 'pipe', 'pipe', inherited, netns ?? 'ignore'];
  if (health) stdio.push('pipe', execHelperExecutableFd());
  else if (spec.joinUserns) stdio.push('ignore', 'ignore');
  if (spec.joinUserns) stdio.push(spec.joinUserns.fd);
  const child = spawn(helperExecutablePath(), args, { detached: true, stdio });
  const specPipe = child.stdio[3] as Writable;
  const statusPipe = child.stdio[4] as Readable;
  specPipe.on('error', () => {});
  specPipe.end(encodeLaunchSpec(sent));
  if (health) {
    const probePipe = (child.stdio as unknown as Array<Writable | null>)[MONITOR_PROBE_SPEC_FD]!;
    probePipe.on('error', () => {});
    probePipe.end(encodeLaunchSpec({ ...health.probe, join: { ...health.probe.join!, pidfd: 5, helperFd: MONITOR_EXEC_HELPER_FD } }));
  }
  const chunks: Buffer[] = [];
  statusPipe.on('data', (c: Buffer) => chunks.push(c));
  const spawnError = once(child, 'error').then(([e]) => {
    throw new BerthError('ERR_HELPER', `could not start berth-helper monitor: ${(e as Error).message}`, { cause: e });
  });
  await Promise.race([once(statusPipe, 'close'), spawnError]);
  child.unref();
  const text = Buffer.concat(chunks).toString('utf8').trim();
  let status: { pid?: number; monitorPid?: number; error?: NativeErrorShape; execFailed?: NativeErrorShape; notFound?: boolean };
  try {
    status = JSON.parse(text) as typeof status;
  } catch {
    throw new BerthError('ERR_HELPER', `berth-helper monitor exited without a status (${text === '' ? 'no output' : text})`);
  }
  if (status.error) throw fromNativeError(status.error);
  if (status.execFailed) {
    return { monitorPid: child.pid ?? -1, pid: -1, execFailed: { ...status.execFailed, notFound: status.notFound === true } };
  }
  return { monitorPid: status.monitorPid!, pid: status.pid! };
}
