/**
 * Starting a container that outlives this process: `berth-helper monitor` becomes its PID 1's
 * parent, writes its logs and records its exit (docs/design/containers.md).
 * @module
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { BerthError } from '../errors.js';
import { encodeLaunchSpec, fromNativeError, helperExecutablePath, type NativeErrorShape, type NativeLaunchSpec } from '../native.js';

export interface DetachedOptions {
  /** `<root>/containers/<id>`: the monitor writes `container.log*` and `exit.json` here. */
  stateDir: string;
  /** The container's cgroup directories; the monitor removes them after the exit. */
  cgroupPaths: readonly string[];
  /** `memory.oom_control` (v1) or `memory.events` (v2) of the container's cgroup. */
  oomFile?: string;
  /** Rotate the log at this size (bytes). Default 10 MiB. */
  logMaxSize?: number;
  /** Keep this many log files, the live one included. Default 3. */
  logMaxFiles?: number;
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

/**
 * Starts the monitor, hands it the spec, and resolves once the container's PID 1 has exec'd
 * (or failed to). The monitor runs in its own session and is not tied to this process.
 */
export async function spawnDetached(spec: NativeLaunchSpec, options: DetachedOptions): Promise<DetachedStart> {
  const args = ['monitor', '--state-dir', options.stateDir, '--log-max-size', String(options.logMaxSize ?? 10 << 20), '--log-max-files', String(options.logMaxFiles ?? 3)];
  for (const dir of options.cgroupPaths) args.push('--cgroup', dir);
  if (options.oomFile) args.push('--oom-file', options.oomFile);
  const inherited = spec.execFd >= 0 ? spec.execFd : 'ignore';
  const netns = spec.netnsFd !== undefined && spec.netnsFd >= 0 ? spec.netnsFd : undefined;
  // Descriptors the spec names reach the monitor at fixed numbers, and the spec is rewritten to
  // them: the monitor's Spawn() uses them exactly as launch() uses this process's.
  const sent: NativeLaunchSpec = {
    ...spec,
    dieWithParent: false,
    ...(spec.execFd >= 0 ? { execFd: MONITOR_EXEC_FD } : {}),
    ...(netns !== undefined ? { netnsFd: MONITOR_NETNS_FD } : {}),
  };
  const child = spawn(helperExecutablePath(), args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe', inherited, ...(netns !== undefined ? [netns] : [])],
  });
  const specPipe = child.stdio[3] as Writable;
  const statusPipe = child.stdio[4] as Readable;
  specPipe.on('error', () => {});
  specPipe.end(encodeLaunchSpec(sent));
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
