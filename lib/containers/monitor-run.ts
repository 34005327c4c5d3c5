/**
 * `run.json`: what the monitor of a detached container records about its runs
 * (src-native/monitor.cc `WriteRun`), written atomically by the monitor alone. state.json stays
 * Node's (written under the container's lock); the monitor never touches it, so the two need
 * no lock protocol. A reader merges the two ({@link mergeRun}); the process that finds the
 * final record (`status: 'exited'`) folds it into state.json under the lock (`reconcile.ts`).
 *
 * A start removes the previous run.json before it spawns the new monitor, so a run.json that
 * exists belongs to the container's current monitor.
 * @module
 */
import { readJson } from '../state/atomic-file.js';
import type { ContainerState } from './container-record.js';
import type { HealthState } from './healthcheck.js';

export interface MonitorRun {
  monitorPid: number;
  /** `running`: PID 1 runs; `restarting`: in the backoff before the next run; `exited`: final. */
  status: 'running' | 'restarting' | 'exited';
  pid: number;
  pidStartTime?: string;
  /** Of the current (or last) run. RFC 3339. */
  startedAt: string;
  finishedAt?: string;
  exitCode?: number;
  signal?: NodeJS.Signals | null;
  oomKilled?: boolean;
  /** Restarts done by this monitor. */
  restartCount: number;
  /** Policy restarts since the user's last start, this monitor's included. */
  retries: number;
  /** The user stopped it (a signal to the monitor): no restart follows. */
  manuallyStopped: boolean;
  error: string;
  health?: HealthState;
  /** autoRemove: the monitor removed the container's files; the rest is Node's to finish. */
  removed?: boolean;
}

export const RUN_FILE = 'run.json';

/** The run record, or undefined when there is none (or it cannot be read: a monitor of an older berth). */
export async function readRun(path: string): Promise<MonitorRun | undefined> {
  return asRun(await readJson<unknown>(path).catch(() => undefined));
}

/** `value` when it has the shape of a run record, else undefined. */
export function asRun(value: unknown): MonitorRun | undefined {
  const run = value as MonitorRun | undefined;
  if (!run || typeof run !== 'object' || typeof run.status !== 'string' || typeof run.monitorPid !== 'number') return undefined;
  return run;
}

/**
 * state.json with the monitor's view of the current run laid over it: what `inspect()`,
 * `status()` and the waits see while a detached container runs. `paused` is Node's own state
 * (the monitor does not know of the freezer) and wins over `running`.
 */
export function mergeRun(state: ContainerState, run: MonitorRun | undefined): ContainerState {
  if (!run || state.monitor?.pid !== run.monitorPid) return state;
  const merged: ContainerState = {
    ...state,
    restartCount: state.restartCount + run.restartCount,
    retries: run.retries,
    manuallyStopped: state.manuallyStopped || run.manuallyStopped,
  };
  if (run.health) merged.health = run.health;
  if (run.restartCount > 0 || run.status !== 'running') {
    // A later run than the one state.json recorded: its start, and the last exit.
    merged.startedAt = run.startedAt;
    if (run.finishedAt !== undefined) {
      merged.finishedAt = run.finishedAt;
      merged.exitCode = run.exitCode ?? 0;
      merged.signal = run.signal ?? null;
      merged.oomKilled = run.oomKilled === true;
    }
  }
  if (run.error) merged.error = run.error;
  if (run.status === 'running') {
    merged.pid = run.pid;
    if (run.pidStartTime !== undefined) merged.pidStartTime = run.pidStartTime;
    if (state.status !== 'paused') merged.status = 'running';
  } else if (run.status === 'restarting') {
    merged.status = 'restarting';
    merged.pid = 0;
    delete merged.pidStartTime;
  }
  return merged;
}
