/**
 * Reconciliation: what `Runtime.open()` does with the state a crash left behind.
 *
 * - A `lifetime: 'process'` container recorded as running whose owning Node process is gone
 *   died with it (the kernel sent its PID 1 the parent-death signal, SIGKILL, and tore down its
 *   pid namespace): it is marked `exited` with exit code 137 and signal SIGKILL, which is
 *   exactly what happened, and `State.Error` names the owner.
 * - A detached container whose monitor recorded its final exit in `run.json` (`monitor-run.ts`)
 *   gets that status, its restart count and health folded into state.json; with autoRemove
 *   the monitor removed its files already and the removal is finished here (name, volumes,
 *   leases). One whose monitor and PID 1 are both gone without a record (a reboot, a SIGKILL)
 *   is marked `exited` with Docker's 255 ("exit status unknown") and reported as `lost`, so
 *   that `Runtime.open({ restartPolicies: true })` can restart it. Berth never uses `dead`
 *   for these: `dead` means a removal that failed.
 * - Containers still owned by a live process (pid *and* start time match) are left alone, so
 *   several processes can open one state dir at any time.
 * - The cgroup of every container that is not running is removed — only `berth/<id>` for ids
 *   of this state dir; berth never touches cgroups of other state dirs or of `run()`.
 * - A removal interrupted half-way (`removing`) is finished; staging (`.new-*`), trash
 *   (`.trash-*`) and temp files of dead writers are deleted; the name table is made to match
 *   the container directories.
 * - What other services hold for a container is released through {@link ReconcileHooks}: the
 *   network leases of a run found ended, the volumes and connections of a finished removal.
 * @module
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupDriver } from '../cgroup/index.js';
import { removeTree } from '../host/remove-tree.js';
import { TEMP_NAME, readJson } from '../state/atomic-file.js';
import { isActive, type ContainerRecord, type ContainerState } from './container-record.js';
import type { ExitInfo } from './events.js';
import { RUN_FILE, readRun, type MonitorRun } from './monitor-run.js';
import { isAlive, type ProcessIdentity } from '../state/process-identity.js';
import type { StateStore } from './state-store.js';

/** Exit code recorded when a detached container's end was never observed (Docker's "unknown"). */
export const UNKNOWN_EXIT_CODE = 255;

/** What a monitor writes to exit.json. */
export interface ExitRecord {
  exitCode: number;
  signal: NodeJS.Signals | null;
  oomKilled: boolean;
  finishedAt: string;
}

/**
 * What the other services must hear from a reconciliation; called under the container's lock.
 * A hook's failure does not stop the reconciliation: it is a process warning, and the stale
 * record it leaves is ignored everywhere (leases and volume users are checked against live
 * processes and existing containers).
 */
export interface ReconcileHooks {
  /** A run found ended (dead owner, detached exit): before its exit is written. */
  exited?(record: ContainerRecord): Promise<void>;
  /** A removal being finished: before the container's directory goes. */
  removing?(record: ContainerRecord, state: ContainerState): Promise<void>;
}

async function callHook(what: string, record: ContainerRecord, fn: (() => Promise<void> | undefined) | undefined): Promise<void> {
  try {
    await fn?.();
  } catch (error) {
    process.emitWarning(`berth: reconciling container ${record.name}: ${what} failed: ${(error as Error)?.message ?? String(error)}`, { code: 'BERTH_RECONCILE' });
  }
}

export interface ReconcileFinding {
  id: string;
  name: string;
  exit?: ExitInfo;
  removed?: boolean;
  /** The exit was recorded by the container's monitor, which journaled its events already. */
  recorded?: boolean;
  /** A detached run ended without any record (every process of it gone: a reboot, a kill). */
  lost?: boolean;
}

/** How an unsupervised run ended, as reconciliation decides it. */
export interface OrphanedExit extends ExitInfo {
  error: string;
  finishedAt: string;
  /** The monitor's final record, when it wrote one. */
  run?: MonitorRun;
  lost?: boolean;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeCgroup(driver: CgroupDriver | undefined, id: string): void {
  if (!driver) return;
  const cg = driver.open(id);
  if (!cg) return;
  try {
    cg.kill({ timeoutMs: 1000 });
    cg.remove({ timeoutMs: 1000 });
  } catch {
    // a process stuck in D state: the next reconciliation retries
  }
}

/**
 * Decides the exit of an active container nobody supervises any more, or undefined when it is
 * still supervised (owner or monitor alive) or still running.
 */
export async function orphanedExit(store: StateStore, id: string, lifetime: 'process' | 'detached', state: ContainerState): Promise<OrphanedExit | undefined> {
  if (lifetime === 'detached') {
    // Judged before the record is read: a monitor writes its final record before it exits, so
    // a monitor found dead here left its last word in the file read next.
    const monitorAlive = isAlive(state.monitor);
    const run = await readRun(join(store.dir(id), RUN_FILE));
    if (run && run.monitorPid === state.monitor?.pid && run.status === 'exited') {
      return { exitCode: run.exitCode ?? UNKNOWN_EXIT_CODE, signal: run.signal ?? null, oomKilled: run.oomKilled === true, finishedAt: run.finishedAt ?? new Date().toISOString(), error: run.error, run };
    }
    // A monitor of a berth before run.json recorded the exit only.
    const rec = await readJson<ExitRecord>(store.exitPath(id)).catch(() => undefined);
    if (rec && rec.finishedAt >= state.startedAt) return { exitCode: rec.exitCode, signal: rec.signal, oomKilled: rec.oomKilled, finishedAt: rec.finishedAt, error: '' };
    if (monitorAlive) return undefined;
    // The monitor may have restarted PID 1 before it died: the newest pid it recorded counts.
    const pid = run?.status === 'running' && run.monitorPid === state.monitor?.pid ? { pid: run.pid, startTime: run.pidStartTime ?? '' } : { pid: state.pid, startTime: state.pidStartTime ?? '' };
    if (pid.pid > 0 && isAlive(pid)) return undefined;
    return { exitCode: UNKNOWN_EXIT_CODE, signal: null, oomKilled: false, finishedAt: new Date().toISOString(), error: 'exit status unknown: the monitor process is gone and recorded no exit', lost: true };
  }
  if (isAlive(state.owner)) return undefined;
  return {
    exitCode: 137,
    signal: 'SIGKILL',
    oomKilled: false,
    finishedAt: new Date().toISOString(),
    error: `the owning process (pid ${state.owner?.pid ?? '?'}) exited; the container was killed with it (parent-death signal)`,
  };
}

/**
 * Whether an active run may have ended unseen, so that the locked {@link reconcileOne} is worth
 * its cost. A detached run whose monitor (the one state.json names) is alive and whose run.json
 * says it has not exited needs nothing: `run` must have been read before this looks at the
 * monitor's liveness, and a monitor writes its final record before it exits. `alive` is
 * {@link isAlive} except in `list()` (`process-liveness.ts`).
 */
export function runMayHaveEnded(record: ContainerRecord, state: ContainerState, run: MonitorRun | undefined, alive: (id: ProcessIdentity | undefined) => boolean = isAlive): boolean {
  if (record.lifetime === 'detached') {
    const current = run !== undefined && run.monitorPid === state.monitor?.pid && run.status !== 'exited';
    return !(current && alive(state.monitor));
  }
  if (state.status === 'restarting' && state.owner?.pid === process.pid) return false;
  return !alive(state.owner);
}

/** Reconciles one container under its lock. */
export async function reconcileOne(store: StateStore, id: string, driver: CgroupDriver | undefined, hooks: ReconcileHooks = {}): Promise<ReconcileFinding | undefined> {
  let finding: ReconcileFinding | undefined;
  await store.withContainer(id, async () => {
    const record = await store.readRecord(id);
    const state = await store.readState(id);
    if (!record || !state) return;
    if (state.status === 'removing') {
      removeCgroup(driver, id);
      await callHook('releasing its volumes and networks', record, () => hooks.removing?.(record, state));
      finding = { id, name: record.name, removed: true };
      return;
    }
    if (isActive(state.status)) {
      const exit = await orphanedExit(store, id, record.lifetime, state);
      if (!exit) return;
      // Whatever survived (it should not) goes with the cgroup.
      removeCgroup(driver, id);
      await callHook('releasing its network leases', record, () => hooks.exited?.(record));
      const next = foldExit(state, exit);
      await store.writeState(id, next);
      finding = { id, name: record.name, exit: { exitCode: exit.exitCode, signal: exit.signal, oomKilled: exit.oomKilled }, ...(exit.run ? { recorded: true } : {}), ...(exit.lost ? { lost: true } : {}) };
      if (exit.run?.removed) {
        // autoRemove: the monitor removed the files; the name, volumes and leases are ours.
        await callHook('releasing its volumes and networks', record, () => hooks.removing?.(record, next));
        finding.removed = true;
      }
      return;
    }
    removeCgroup(driver, id);
  }, { timeoutMs: 30_000 });
  if (finding?.removed) await store.destroy(id, finding.name);
  return finding;
}

/** state.json after the run ended as `exit` says (with autoRemove done by the monitor: `removing`). */
export function foldExit(state: ContainerState, exit: OrphanedExit): ContainerState {
  const run = exit.run;
  const next: ContainerState = {
    ...state,
    status: run?.removed ? 'removing' : 'exited',
    pid: 0,
    exitCode: exit.exitCode,
    signal: exit.signal,
    oomKilled: exit.oomKilled,
    finishedAt: exit.finishedAt,
    error: exit.error,
  };
  if (run) {
    next.restartCount = state.restartCount + run.restartCount;
    next.retries = run.retries;
    next.manuallyStopped = state.manuallyStopped || run.manuallyStopped;
    next.startedAt = run.startedAt || state.startedAt;
    if (run.health) next.health = run.health;
    if (run.removed) next.removeVolumes = true;
  }
  delete next.pidStartTime;
  delete next.owner;
  delete next.monitor;
  return next;
}

async function cleanLeftovers(store: StateStore): Promise<void> {
  let names: string[];
  try {
    names = await readdir(store.containersDir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^\.(?:new|trash)-[0-9a-f]{64}-(\d+)$/.exec(n) ?? TEMP_NAME.exec(n);
    if (m && !pidAlive(Number(m[1]))) await removeTree(join(store.containersDir, n));
  }
  for (const n of await readdir(store.namesDir).catch(() => [] as string[])) {
    const m = TEMP_NAME.exec(n);
    if (m && !pidAlive(Number(m[1]))) await rm(join(store.namesDir, n), { force: true });
  }
}

/** Everything at `Runtime.open()`; returns what changed, for events. */
export async function reconcileAll(store: StateStore, driver: CgroupDriver | undefined, hooks: ReconcileHooks = {}): Promise<ReconcileFinding[]> {
  await cleanLeftovers(store);
  const findings: ReconcileFinding[] = [];
  const ids = await store.listIds();
  for (const id of ids) {
    // Cheap unlocked look first: most containers need nothing.
    const state = await store.readState(id).catch(() => undefined);
    const needs = !state || isActive(state.status) || state.status === 'removing' || driver?.open(id) !== undefined;
    if (!needs) continue;
    const f = await reconcileOne(store, id, driver, hooks);
    if (f) findings.push(f);
    for (const t of await readdir(store.dir(id)).catch(() => [] as string[])) {
      const m = TEMP_NAME.exec(t);
      if (m && !pidAlive(Number(m[1]))) await rm(join(store.dir(id), t), { force: true });
    }
  }
  // The names follow the directories: drop names of vanished containers, restore missing ones.
  await store.migrateLegacyNames();
  await store.withNames(async () => {
    const table = await store.readNames();
    const live = new Set(await store.listIds());
    for (const [name, id] of Object.entries(table)) {
      if (!live.has(id)) await store.dropName(name, id);
    }
    const named = new Set(Object.values(table));
    for (const id of live) {
      if (named.has(id)) continue;
      const record = await store.readRecord(id).catch(() => undefined);
      if (record && table[record.name] === undefined) {
        await store.setName(record.name, id);
        table[record.name] = id;
      }
    }
  });
  return findings;
}
