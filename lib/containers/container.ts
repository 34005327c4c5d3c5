/**
 * `Container`: one container of a runtime, Docker's lifecycle over the state directory.
 *
 * Every transition happens under the container's flock, reading state.json first and writing
 * it atomically after, so that several objects — in this process or in others — can hold the
 * same container. The object that started a `lifetime: 'process'` container supervises it
 * through a {@link Supervisor} (the pipes, the pidfd, the health monitor; `supervisor.ts`) and
 * keeps the restart timer. Any other holder works from the state files and signals through the
 * pid checked against its start time; it learns of exits by watching state.json.
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import { appendFileSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AbsentCgroup } from '../cgroup/absent.js';
import type { Cgroup } from '../cgroup/index.js';
import { hostIdOfRoot, releaseAutoRange } from '../launch/userns.js';
import { cgroupsForHost } from '../launch/cgroup-setup.js';
import { signalNumber } from '../launch/container-process.js';
import type { LaunchRoot } from '../launch/launch-plan.js';
import { launch } from '../launch/launcher.js';
import { AbortError, ConflictError, NotFoundError, SystemError, UnsupportedError, ValidationError, isBerthError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import { native } from '../native.js';
import type { NetworkService } from '../network/network-service.js';
import type { VolumeService } from '../volumes/volume-service.js';
import { commitContainer, type CommitOptions } from './commit.js';
import { bindingsOf, forgetContainerNetwork, networkSettingsOf, portKey, reachableHost, releaseContainerNetwork, usesBridge, type PortBinding } from './container-network.js';
import { signalName } from './container-options.js';
import { isActive, type ContainerRecord, type ContainerState } from './container-record.js';
import { launchMounts, releaseContainerVolumes, storedMounts } from './container-volumes.js';
import { keepContainerChanges, KERNEL_MOUNTPOINTS, type Change } from './diff.js';
import type { ContainerAction, ContainerEvents, EventHub, ExitInfo } from './events.js';
import { checkMaxBuffer } from '../launch/bounded-output.js';
import { checkExecArgv, execResult, execSession, openContainerPidfd, planContainerExec, spawnExec, type ExecOptions, type ExecResult, type ExecSession } from './exec.js';
import type { HealthState } from './healthcheck.js';
import { buildInspect, imageAttribute, type ContainerInspect } from './inspect.js';
import { launchDetached } from './detached-launch.js';
import { journalPath } from './event-journal.js';
import { RUN_FILE, mergeRun, readRun, type MonitorRun } from './monitor-run.js';
import { ContainerLogs, resolveLogOptions, type LogsOptions } from './log-reader.js';
import { encodeRecord, logTimestamp } from './log-writer.js';
import { normalizeName } from './names.js';
import { identityOf, processStartTime, selfIdentity } from '../state/process-identity.js';
import { reconcileOne, runMayHaveEnded, type ReconcileHooks } from './reconcile.js';
import { nextBackoff, shouldRestart } from './restart-policy.js';
import { containerMergedArchive } from '../storage/rootfs-archive.js';
import { copyFrom, copyTo, getArchive, putArchive, statPath, type ArchiveOptions, type ArchiveStream, type CopyOptions, type PathStat } from './archive-copy.js';
import type { ContainerRootAccess } from './container-root.js';
import { assertAllowed } from './state-machine.js';
import { oneShot, streamStats, type ContainerStats } from './stats.js';
import { Supervisor, type AttachSession, type SupervisedExit } from './supervisor.js';
import type { StateStore } from './state-store.js';
import { topOf, type TopResult } from './top.js';
import { waitForHealthy, waitForHttp, waitForLog, waitForPort, type WaitForHttpOptions, type WaitOptions, type WaitTarget } from './wait-strategies.js';
import type { ContainerLayerPaths, StorageDriver } from '../storage/driver.js';
import { storageDriverNamed } from '../storage/select.js';

/** What a container needs from its service. @internal */
export interface ContainerContext {
  readonly store: StateStore;
  readonly hub: EventHub;
  readonly images: ImageService;
  readonly volumes: VolumeService;
  readonly networks: NetworkService;
  /** The runtime's storage driver: new containers' layers are made for it (each keeps its own, `record.storageDriver`). */
  readonly storage: StorageDriver;
  /** What reconciliation tells the volume and network services. */
  readonly hooks: ReconcileHooks;
  readonly root: string;
  forget(id: string): void;
}

export interface StopOptions {
  /** Milliseconds to wait after the stop signal before SIGKILL. Default: the container's stopTimeout (10 s). */
  timeout?: number;
  /** Signal to send first. Default: the container's stop signal (image StopSignal or SIGTERM). */
  signal?: NodeJS.Signals;
}

export interface WaitForExitOptions {
  /**
   * `'not-running'` (default): resolves at once if the container is not running, else at its
   * next stop (not between policy restarts). `'next-exit'`: at the next exit of a process.
   * `'removed'`: once the container is removed.
   */
  condition?: 'not-running' | 'next-exit' | 'removed';
  signal?: AbortSignal;
}

export interface ContainerRemoveOptions {
  /** Kill a running container first. */
  force?: boolean;
  /**
   * Also remove the container's anonymous volumes (mounts without a source, the image's
   * `Volumes`) that no other container uses, as `docker rm -v`. `autoRemove` always does.
   */
  volumes?: boolean;
}

export type { AttachSession } from './supervisor.js';

const POLL_MS = 100;
/** How long an exit may take to be recorded after SIGKILL before kill()/stop() give up. */
const KILL_EXIT_MS = 10_000;

/** Whether the state shows the run of `before` ended: not active any more, or a later exit recorded. */
function exitRecordedSince(before: ContainerState): (s: ContainerState | undefined) => boolean {
  return (s) => !s || !isActive(s.status) || (s.finishedAt !== before.finishedAt && s.pid !== before.pid);
}

/** What tells a detached container's monitor that the user stopped it (src-native/monitor.cc). */
const MONITOR_STOP_SIGNAL = 10; // SIGUSR1

function launchRoot(record: ContainerRecord, driver: StorageDriver): LaunchRoot {
  const s = record.source;
  return s.kind === 'image' ? { kind: 'layers', lowerDirs: s.lowerDirs, driver } : s.kind === 'rootfs' ? { kind: 'rootfs', dir: s.dir, driver } : { kind: 'host' };
}

/** A container. Get one from `rt.containers.create()` or `get()`. */
export class Container extends EventEmitter<ContainerEvents> implements AsyncDisposable {
  /** 64 hex digits. */
  readonly id: string;
  readonly #ctx: ContainerContext;
  #name: string;
  #live: Supervisor | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #backoffMs = 0;
  /** The published ports as last seen, for the synchronous {@link getMappedPort}. */
  #mapped: { running: boolean; status: ContainerState['status']; ports: Parameters<typeof bindingsOf>[0]['Ports'] } | undefined;
  /** Set by `rt.close()`: no policy restart is scheduled from this process any more. */
  #runtimeClosed = false;
  /** Wakes waiters when this process changes the state. */
  #changed = new EventEmitter<{ changed: [] }>();

  /** @internal */
  constructor(ctx: ContainerContext, record: ContainerRecord) {
    super();
    this.#ctx = ctx;
    this.id = record.id;
    this.#name = record.name;
  }

  /** The name as last seen by this object (`rename()` changes it). */
  get name(): string {
    return this.#name;
  }

  // ---------------------------------------------------------------------------------------
  // State access

  /** config + state, with exits of unsupervised runs discovered on the way. @internal */
  async read(): Promise<{ record: ContainerRecord; state: ContainerState }> {
    return this.readFrom(await this.#ctx.store.read(this.id));
  }

  /**
   * {@link read} from config + state the caller has just read (`list()` reads each container's
   * files once). A healthy detached run costs its `run.json` and one look at the monitor in
   * /proc: the locked reconciliation runs only when the run looks ended. @internal
   */
  async readFrom(pair: { record: ContainerRecord; state: ContainerState; run?: MonitorRun | undefined }): Promise<{ record: ContainerRecord; state: ContainerState }> {
    let r: { record: ContainerRecord; state: ContainerState } = pair;
    this.#name = r.record.name;
    const runPath = join(this.#ctx.store.dir(this.id), RUN_FILE);
    const detachedActive = r.record.lifetime === 'detached' && isActive(r.state.status);
    // `run` given (even as undefined): read by the caller with the other two, before this look at liveness.
    let run = detachedActive ? ('run' in pair ? pair.run : await readRun(runPath)) : undefined;
    if (isActive(r.state.status) && !this.#live && runMayHaveEnded(r.record, r.state, run)) {
      const f = await reconcileOne(this.#ctx.store, this.id, cgroupsForHost().driver, this.#ctx.hooks).catch(() => undefined);
      if (f?.exit) {
        // A detached container's monitor journaled its exit already: only this object's listeners hear it here.
        if (f.recorded) this.#emitLocal('exit', [f.exit]);
        else this.#publish('exit', [f.exit], { exitCode: String(f.exit.exitCode), ...(f.exit.signal ? { signal: f.exit.signal } : {}) }, r.record);
        this.#changed.emit('changed');
      }
      if (f?.removed) this.#ctx.forget(this.id);
      r = await this.#ctx.store.read(this.id);
      run = r.record.lifetime === 'detached' && isActive(r.state.status) ? await readRun(runPath) : undefined;
    }
    // While its monitor runs, a detached container's current run is in the monitor's run.json.
    if (r.record.lifetime === 'detached' && isActive(r.state.status)) r = { record: r.record, state: mergeRun(r.state, run) };
    return r;
  }

  async #state(): Promise<ContainerState> {
    return (await this.read()).state;
  }

  async #withLock<T>(fn: (record: ContainerRecord, state: ContainerState) => Promise<T>): Promise<T> {
    return this.#ctx.store.withContainer(this.id, async () => {
      const { record, state } = await this.#ctx.store.read(this.id);
      this.#name = record.name;
      return fn(record, state);
    });
  }

  #attributes(record: ContainerRecord | undefined, extra: Record<string, string> = {}): Record<string, string> {
    const attributes: Record<string, string> = { name: this.#name, ...extra };
    if (record) {
      attributes.image = imageAttribute(record);
      for (const [k, v] of Object.entries(record.labels)) attributes[`label.${k}`] = v;
    }
    return attributes;
  }

  #publish<K extends ContainerAction>(action: K, args: ContainerEvents[K], extra: Record<string, string> = {}, record?: ContainerRecord): void {
    this.#ctx.hub.publish({ type: 'container', action, id: this.id, name: this.#name, time: new Date().toISOString(), attributes: this.#attributes(record, extra) });
    this.#emitLocal(action, args);
  }

  /** This object's listeners only: the event is in the journal already. */
  #emitLocal<K extends ContainerAction>(action: K, args: ContainerEvents[K]): void {
    try {
      (this.emit as (event: K, ...a: ContainerEvents[K]) => boolean)(action, ...args);
    } catch {
      // a listener's exception must not break the state machine
    }
  }

  // ---------------------------------------------------------------------------------------
  // Lifecycle

  /**
   * Starts the container (from `created` or `exited`).
   * @throws ConflictError when it is running, paused or restarting; NotFoundError (exit code
   *   127) or SystemError EACCES (126) when its command cannot be executed — the state then
   *   records the exit code and the error, as Docker does.
   */
  async start(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ValidationError('signal', 'must be an AbortSignal');
    if (signal?.aborted) throw new AbortError('start() was aborted', { cause: signal.reason });
    let record!: ContainerRecord;
    await this.#withLock(async (rec, state) => {
      record = rec;
      assertAllowed('start', state.status, rec.name);
      this.#cancelRestart();
      await this.#launch(rec, state, true, signal);
    });
    // A detached container's monitor journals its start itself, ahead of any exit of it.
    if (record.lifetime === 'detached') this.#emitLocal('start', []);
    else this.#publish('start', [], {}, record);
    await this.refreshMappedPorts().catch(() => {});
    if (signal?.aborted) {
      await this.kill('SIGKILL').catch(() => {});
      throw new AbortError('start() was aborted; the container was killed', { cause: signal.reason });
    }
  }

  /** Launches under the lock; writes the new state. */
  async #launch(record: ContainerRecord, state: ContainerState, userStart: boolean, signal?: AbortSignal): Promise<void> {
    const store = this.#ctx.store;
    const driver = cgroupsForHost().driver;
    // A cgroup left by a run nobody cleaned up (crash) would make create() fail with EEXIST.
    const stale = driver.open(this.id);
    if (stale) {
      stale.kill({ timeoutMs: 1000 });
      stale.remove({ timeoutMs: 1000 });
    }
    const o = record.options;
    // Volumes were attached at create; each start binds their data dirs again.
    const mounts = await launchMounts(this.#ctx.volumes, record);
    const options = {
      ...o,
      ...(mounts.length > 0 ? { mounts } : {}),
      ...(o.hostname === undefined && (o.network ?? 'none') !== 'host' ? { hostname: record.hostname } : {}),
      ...(signal ? { signal } : {}),
    };
    if (record.source.kind !== 'host' && o.userns !== undefined && o.userns !== 'auto') {
      await store.giveUpperTo(this.id, { uid: hostIdOfRoot(o.userns.uidMap), gid: hostIdOfRoot(o.userns.gidMap) });
    }
    const req = {
      id: this.id,
      root: launchRoot(record, storageDriverNamed(record.storageDriver)),
      argv: record.argv,
      options,
      ...(record.imageConfig ? { image: { config: record.imageConfig } } : {}),
      accounting: true,
      ...(record.source.kind !== 'host' ? { upper: { upperDir: store.upperDir(this.id), workDir: store.workDir(this.id) } } : {}),
      stdinPipe: record.openStdin,
      networks: this.#ctx.networks,
      container: { id: this.id, name: record.name },
    };
    const now = new Date().toISOString();
    const next: ContainerState = {
      ...state,
      startedAt: now,
      exitCode: 0,
      signal: null,
      oomKilled: false,
      error: '',
      manuallyStopped: false,
      retries: userStart ? 0 : state.retries,
    };
    delete next.health;
    delete next.limitsSkipped;
    delete next.userModeNetwork;
    if (userStart) this.#backoffMs = 0;

    if (record.lifetime === 'detached') {
      // A run record belongs to one monitor: the previous one's must not be read as the new one's.
      rmSync(join(store.dir(this.id), RUN_FILE), { force: true });
      rmSync(store.exitPath(this.id), { force: true });
      const d = await launchDetached(req, record, {
        stateDir: store.dir(this.id),
        logMaxSize: record.log.maxSize,
        logMaxFiles: record.log.maxFiles,
        retries: next.retries,
        journal: { path: journalPath(this.#ctx.root), id: this.id, name: record.name, attributes: this.#attributes(record) },
      });
      if (d.limitsSkipped) next.limitsSkipped = d.limitsSkipped;
      if (d.userModeNetwork) next.userModeNetwork = d.userModeNetwork;
      if (d.execFailure) return this.#recordExecFailure(record, next, d.execFailure);
      Object.assign(next, { status: 'running', pid: d.pid, pidStartTime: processStartTime(d.pid) });
      // A one-shot container's monitor may have finished (and been reaped) already: its pid is
      // still what ties run.json to this start (a start removes the previous one). A start time
      // that matches no process makes it read as dead, so its final record is taken as the exit,
      // never "exit status unknown".
      next.monitor = identityOf(d.monitorPid) ?? { pid: d.monitorPid, startTime: 'exited-before-recorded' };
      delete next.owner;
      try {
        await store.writeState(this.id, next);
      } catch (error) {
        // Not recorded, so nobody would ever stop it: it must not run.
        if (d.pid > 0) this.#signal(9, next);
        await releaseContainerNetwork(this.#ctx.networks, record).catch(() => {});
        throw error;
      }
      return;
    }

    const launched = await launch(req);
    if (launched.limitsSkipped) next.limitsSkipped = launched.limitsSkipped;
    if (launched.network?.kind === 'usermode' && launched.network.usermode) next.userModeNetwork = { stack: launched.network.usermode.stack, ports: launched.network.ports };
    if (!launched.process) {
      launched.cgroup.remove({ timeoutMs: 1000 });
      return this.#recordExecFailure(record, next, launched.execFailure!);
    }
    const proc = launched.process;
    const live: Supervisor = new Supervisor({
      id: this.id,
      name: () => this.#name,
      record,
      process: proc,
      cgroup: launched.cgroup,
      network: launched.network,
      networks: this.#ctx.networks,
      logPath: store.logPath(this.id),
      probe: (argv, sig) => this.#probe(argv, sig),
      onHealth: (h, changed) => this.#onHealth(live, h, changed),
      onExit: (exit) => this.#onExit(live, exit),
    });
    this.#live = live;
    Object.assign(next, { status: 'running', pid: proc.pid, owner: selfIdentity() });
    const st = processStartTime(proc.pid);
    if (st !== undefined) next.pidStartTime = st;
    if (record.healthcheck) next.health = { status: 'starting', failingStreak: 0, log: [] };
    delete next.monitor;
    try {
      await store.writeState(this.id, next);
    } catch (error) {
      this.#live = undefined;
      await live.abandon();
      throw error;
    }
    live.watch();
  }

  async #recordExecFailure(record: ContainerRecord, next: ContainerState, failure: { exitCode: 126 | 127; message: string }): Promise<never> {
    try {
      appendFileSync(this.#ctx.store.logPath(this.id), encodeRecord(failure.message, 'stderr', logTimestamp()), { mode: 0o640 });
    } catch {
      // the log is a convenience; the state below is the record
    }
    Object.assign(next, { status: 'exited', pid: 0, exitCode: failure.exitCode, error: failure.message.trim(), finishedAt: next.startedAt });
    delete next.pidStartTime;
    delete next.owner;
    await this.#ctx.store.writeState(this.id, next);
    this.#changed.emit('changed');
    const message = `container ${record.name}: ${failure.message.replace(/^berth: /, '').trim()}`;
    if (failure.exitCode === 127) throw new NotFoundError(message, { path: record.argv[0]! });
    throw new SystemError('EACCES', message, { path: record.argv[0]! });
  }

  /** Records the exit of the run `live` supervised (its resources are already released). */
  async #onExit(live: Supervisor, { status, oomKilled, health }: SupervisedExit): Promise<void> {
    this.#mapped = undefined;
    if (this.#live === live) this.#live = undefined;
    const exit: ExitInfo = { exitCode: status.exitCode, signal: status.signal, oomKilled };
    let record: ContainerRecord | undefined;
    let restart = false;
    let removed = false;
    try {
      await this.#withLock(async (rec, state) => {
        record = rec;
        restart = !this.#runtimeClosed && shouldRestart(rec.restart, { exitCode: exit.exitCode, manuallyStopped: state.manuallyStopped, retries: state.retries });
        const next: ContainerState = {
          ...state,
          status: state.status === 'removing' ? 'removing' : restart ? 'restarting' : 'exited',
          pid: 0,
          exitCode: exit.exitCode,
          signal: exit.signal,
          oomKilled,
          finishedAt: new Date().toISOString(),
        };
        if (health) next.health = health;
        delete next.pidStartTime;
        if (!restart) delete next.owner;
        await this.#ctx.store.writeState(this.id, next);
      });
    } catch (error) {
      if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
      removed = true; // removed meanwhile (forced remove from another process)
    }
    if (oomKilled) this.#publish('oom', [], {}, record);
    this.#publish('exit', [exit], { exitCode: String(exit.exitCode), ...(exit.signal ? { signal: exit.signal } : {}), oomKilled: String(oomKilled) }, record);
    this.#changed.emit('changed');
    if (removed || !record) return;
    if (restart) {
      this.#backoffMs = nextBackoff(this.#backoffMs, Date.now() - live.startedAtMs);
      this.#restartTimer = setTimeout(() => void this.#policyRestart(), this.#backoffMs);
    } else if (record.autoRemove) {
      await this.remove({ force: true, volumes: true }).catch(() => {});
    }
  }

  async #policyRestart(): Promise<void> {
    this.#restartTimer = undefined;
    let record: ContainerRecord | undefined;
    try {
      await this.#withLock(async (rec, state) => {
        if (state.status !== 'restarting') return;
        record = rec;
        state.restartCount++;
        state.retries++;
        await this.#launch(rec, state, false);
      });
    } catch (error) {
      // The restart failed (command gone, cgroup trouble): the state says why, or says exited.
      if (!(isBerthError(error) && (error instanceof NotFoundError || error.code === 'EACCES'))) {
        await this.#withLock(async (_rec, state) => {
          if (state.status !== 'restarting') return;
          await this.#ctx.store.writeState(this.id, { ...state, status: 'exited', error: `restart failed: ${(error as Error).message}` });
        }).catch(() => {});
      }
      this.#changed.emit('changed');
      return;
    }
    if (record) {
      await this.refreshMappedPorts().catch(() => {});
      this.#publish('restart', [], {}, record);
      this.#publish('start', [], {}, record);
    }
  }

  #cancelRestart(): void {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
  }

  /** Sends `sig` to PID 1: by pidfd when this object supervises it, else by pid checked against its start time. */
  #signal(sig: number, state: ContainerState): boolean {
    if (this.#live) return this.#live.kill(sig);
    if (state.pid <= 0 || processStartTime(state.pid) !== state.pidStartTime) return false;
    let fd: number;
    try {
      fd = openContainerPidfd(state.pid, state.pidStartTime);
    } catch {
      return false;
    }
    try {
      return native().sendSignal(fd, sig);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Docker's manual-stop rule for a detached container: its monitor hears of the stop (SIGUSR1,
   * sent through a pidfd of the verified monitor) before PID 1 gets the signal, so no policy
   * restart follows, and a backoff sleep ends at once.
   */
  #tellMonitorStopped(state: ContainerState): void {
    const m = state.monitor;
    if (!m) return;
    let fd: number;
    try {
      fd = openContainerPidfd(m.pid, m.startTime);
    } catch {
      return; // the monitor is gone: nothing will restart the container
    }
    try {
      native().sendSignal(fd, MONITOR_STOP_SIGNAL);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * `Runtime.open({ restartPolicies: true })`: starts again a detached container whose run was
   * lost with all its processes (a reboot), when its policy is `always` or `unless-stopped` and
   * the user did not stop it. Resolves true when it was started. @internal
   */
  async restartLost(): Promise<boolean> {
    let record: ContainerRecord | undefined;
    await this.#withLock(async (rec, state) => {
      if (rec.lifetime !== 'detached' || state.status !== 'exited' || state.manuallyStopped) return;
      if (rec.restart.name !== 'always' && rec.restart.name !== 'unless-stopped') return;
      record = rec;
      state.restartCount++;
      // As the monitor's own restarts: `restart`, then the monitor's `start`.
      this.#publish('restart', [], {}, rec);
      await this.#launch(rec, state, false);
    });
    if (!record) return false;
    this.#emitLocal('start', []);
    return true;
  }

  /** Resolves when `done(state)` holds; false on timeout. Bounded polling plus local wake-ups. */
  async #waitFor(done: (s: ContainerState | undefined) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let s: ContainerState | undefined;
      try {
        s = await this.#state();
      } catch (error) {
        if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
        s = undefined;
      }
      if (done(s)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      if (signal?.aborted) throw new AbortError('wait was aborted', { cause: signal.reason });
      await new Promise<void>((resolve) => {
        const t = setTimeout(finish, Math.min(POLL_MS, left));
        const onAbort = () => finish();
        function finish() {
          clearTimeout(t);
          signal?.removeEventListener('abort', onAbort);
          wake.removeListener('changed', finish);
          resolve();
        }
        const wake = this.#changed;
        wake.once('changed', finish);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  async #thawIfPaused(record: ContainerRecord): Promise<void> {
    let thawed = false;
    await this.#withLock(async (_r, state) => {
      if (state.status !== 'paused') return;
      cgroupsForHost().driver.open(this.id)?.thaw();
      await this.#ctx.store.writeState(this.id, { ...state, status: 'running' });
      thawed = true;
    });
    if (thawed) this.#publish('unpause', [], {}, record);
  }

  /**
   * Stops the container: its stop signal, then SIGKILL after `timeout` ms (default 10 s), and
   * resolves once the exit is recorded (so `start()` may follow at once). A container that is
   * not running is left as it is (Docker's no-op). No restart policy applies.
   * @throws ValidationError for a bad `timeout` or `signal`; SystemError EBUSY when it has not
   *   exited 10 s after SIGKILL.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const { record, state } = await this.read();
    const timeout = options.timeout ?? record.stopTimeoutMs;
    if (!(timeout >= 0) || !Number.isFinite(timeout)) throw new ValidationError('timeout', 'must be a non-negative number of milliseconds');
    const sig = signalNumber(options.signal !== undefined ? signalName(options.signal, 'signal') : record.stopSignal)!;
    if (!isActive(state.status)) return;
    this.#mapped = undefined;
    if (await this.#stopRestarting()) return;
    await this.#withLock(async (_r, s) => {
      if (isActive(s.status)) await this.#ctx.store.writeState(this.id, { ...s, manuallyStopped: true });
    });
    if (record.lifetime === 'detached') this.#tellMonitorStopped(state);
    const now = await this.#state();
    this.#signal(sig, now);
    await this.#thawIfPaused(record);
    if (await this.#waitFor(exitRecordedSince(now), timeout)) return;
    this.#signal(9, await this.#state());
    await this.#thawIfPaused(record);
    await this.#untilExitRecorded(now);
  }

  /**
   * After a SIGKILL: resolves once the exit is in the state (recorded by the supervising
   * object, the detached monitor or reconciliation), so that `start()` may follow at once.
   * Bounded: a process stuck in the kernel (D state) never dies, and the caller must learn it.
   */
  async #untilExitRecorded(before: ContainerState): Promise<void> {
    if (!(await this.#waitFor(exitRecordedSince(before), KILL_EXIT_MS))) {
      throw new SystemError('EBUSY', `container ${this.#name} did not exit ${KILL_EXIT_MS / 1000} s after SIGKILL (a process stuck in the kernel?)`);
    }
  }

  /** A container waiting for its policy restart: cancel the restart, mark it exited. */
  async #stopRestarting(): Promise<boolean> {
    let stopped = false;
    await this.#withLock(async (_r, s) => {
      if (s.status !== 'restarting') return;
      this.#cancelRestart();
      const next: ContainerState = { ...s, status: 'exited', manuallyStopped: true };
      delete next.owner;
      await this.#ctx.store.writeState(this.id, next);
      stopped = true;
    });
    if (stopped) this.#changed.emit('changed');
    return stopped;
  }

  /**
   * Sends a signal to the container's PID 1 (default SIGKILL) and resolves once it is
   * delivered; for SIGKILL, once the exit is recorded (Docker's behaviour), so `start()` may
   * follow at once. SIGKILL and the stop signal count as a manual stop: no restart policy
   * applies afterwards.
   * @throws ConflictError when the container is not running; SystemError EBUSY when it has
   *   not exited 10 s after SIGKILL (a process stuck in the kernel).
   */
  async kill(signal: NodeJS.Signals | number = 'SIGKILL'): Promise<void> {
    const name = signalName(signal, 'signal');
    const sig = signalNumber(name)!;
    const { record, state } = await this.read();
    assertAllowed('kill', state.status, record.name);
    const manual = sig === 9 || name === record.stopSignal;
    if (manual) this.#mapped = undefined;
    if (await this.#stopRestarting()) return;
    if (manual) {
      await this.#withLock(async (_r, s) => {
        if (isActive(s.status)) await this.#ctx.store.writeState(this.id, { ...s, manuallyStopped: true });
      });
      if (record.lifetime === 'detached') {
        this.#tellMonitorStopped(state);
        // Between two runs there is no process to signal: the monitor ends the container.
        if (state.status === 'restarting') {
          if (sig === 9) await this.#untilExitRecorded(state);
          return;
        }
      }
    }
    const before = await this.#state();
    if (!this.#signal(sig, before)) {
      const s = await this.#state();
      if (isActive(s.status)) throw new ConflictError(`container ${record.name} is not running (its process is gone)`);
    }
    if (sig === 9) {
      await this.#thawIfPaused(record);
      await this.#untilExitRecorded(before);
    }
  }

  /** `stop()` then `start()`; emits `restart`. */
  async restart(options: StopOptions = {}): Promise<void> {
    await this.stop(options);
    await this.start();
    const { record } = await this.read();
    this.#publish('restart', [], {}, record);
  }

  /** How the container ended; see {@link WaitForExitOptions.condition}. */
  async wait(options: WaitForExitOptions = {}): Promise<ExitInfo> {
    const condition = options.condition ?? 'not-running';
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw new ValidationError('condition', 'must be "not-running", "next-exit" or "removed"');
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ValidationError('signal', 'must be an AbortSignal');
    let last: ContainerState | undefined;
    const first = await this.#state().catch((e) => {
      if (condition === 'removed' && isBerthError(e) && e instanceof NotFoundError) return undefined;
      throw e;
    });
    last = first;
    const startFinished = first?.finishedAt;
    const done = (s: ContainerState | undefined): boolean => {
      if (s) last = s;
      if (condition === 'removed') return s === undefined;
      if (!s) return true;
      if (condition === 'next-exit') return s.finishedAt !== startFinished && s.pid === 0;
      return !isActive(s.status);
    };
    const ok = await this.#waitFor(done, Number.MAX_SAFE_INTEGER, signal);
    if (!ok) throw new AbortError('wait was aborted');
    if (!last) throw new NotFoundError(`no such container: ${this.id}`);
    return { exitCode: last.exitCode, signal: last.signal, oomKilled: last.oomKilled };
  }

  /**
   * Removes the container: its state, logs, writable layer and cgroup.
   * @throws ConflictError when it is running and `force` is not set.
   */
  async remove(options: ContainerRemoveOptions = {}): Promise<void> {
    const { record, state } = await this.read();
    assertAllowed('remove', state.status, record.name, { force: options.force === true });
    if (isActive(state.status)) {
      if (!(await this.#stopRestarting())) {
        await this.kill('SIGKILL').catch((e) => {
          if (!(isBerthError(e) && e instanceof ConflictError)) throw e;
        });
      }
      if (!(await this.#waitFor((s) => !s || !isActive(s.status), 10_000))) {
        throw new SystemError('EBUSY', `container ${record.name} did not exit after SIGKILL`);
      }
    }
    let gone = false;
    const removeVolumes = options.volumes === true;
    await this.#withLock(async (rec, s) => {
      assertAllowed('remove', s.status, rec.name, { force: false });
      // The intent is recorded: a reconciliation that finishes this removal takes the same volumes.
      await this.#ctx.store.writeState(this.id, { ...s, status: 'removing', ...(removeVolumes ? { removeVolumes } : {}) });
      const cg = cgroupsForHost().driver.open(this.id);
      try {
        cg?.kill({ timeoutMs: 1000 });
        cg?.remove({ timeoutMs: 1000 });
      } catch (error) {
        await this.#ctx.store.writeState(this.id, { ...s, status: 'dead', error: `removal failed: ${(error as Error).message}` });
        throw error;
      }
    }).catch((e) => {
      if (isBerthError(e) && e instanceof NotFoundError) {
        gone = true;
        return;
      }
      throw e;
    });
    if (gone) return;
    this.#cancelRestart();
    // `removing` refuses every start from here on, so what the container holds can go.
    let released: unknown;
    try {
      await releaseContainerVolumes(this.#ctx.volumes, record, removeVolumes);
    } catch (error) {
      released = error;
    }
    try {
      await forgetContainerNetwork(this.#ctx.networks, record);
    } catch (error) {
      released ??= error;
    }
    await this.#ctx.store.destroy(this.id, record.name);
    // A userns 'auto' range goes back to the pool only now that the files it owns are gone.
    if (record.options.userns !== undefined) await releaseAutoRange(`container:${this.id}`).catch(() => {});
    this.#publish('destroy', [], {}, record);
    this.#changed.emit('changed');
    this.#ctx.forget(this.id);
    if (released !== undefined) {
      // The container is gone either way; what it held is stale for every process once its
      // directory is gone and its creator exits, and `rt.volumes.prune()` finds such volumes.
      process.emitWarning(`berth: container ${record.name} was removed, but releasing its volumes or networks failed: ${(released as Error)?.message ?? String(released)}`, { code: 'BERTH_CONTAINER_RELEASE' });
    }
  }

  /** Freezes every process of the container (cgroup freezer). */
  async pause(): Promise<void> {
    // A detached container between two runs is `restarting` only in its monitor's record.
    const seen = await this.read();
    assertAllowed('pause', seen.state.status, seen.record.name);
    const record = await this.#withLock(async (rec, state) => {
      assertAllowed('pause', state.status, rec.name);
      this.#cgroupOf(rec.name, state).freeze();
      await this.#ctx.store.writeState(this.id, { ...state, status: 'paused' });
      return rec;
    });
    this.#publish('pause', [], {}, record);
  }

  async unpause(): Promise<void> {
    const record = await this.#withLock(async (rec, state) => {
      assertAllowed('unpause', state.status, rec.name);
      cgroupsForHost().driver.open(this.id)?.thaw();
      await this.#ctx.store.writeState(this.id, { ...state, status: 'running' });
      return rec;
    });
    this.#publish('unpause', [], {}, record);
  }

  /** Changes the name (unique in the runtime). */
  async rename(name: string): Promise<void> {
    const newName = normalizeName(name);
    let oldName = '';
    const record = await this.#withLock(async (rec, state) => {
      assertAllowed('rename', state.status, rec.name);
      oldName = rec.name;
      if (newName === oldName) return rec;
      await this.#ctx.store.rename(this.id, oldName, newName, () => this.#ctx.store.writeRecord(this.id, { ...rec, name: newName }));
      return { ...rec, name: newName };
    });
    if (newName === oldName) return;
    this.#name = newName;
    this.#publish('rename', [{ oldName, name: newName }], { oldName }, record);
  }

  /** Sets the TTY size of a container started with `tty: true`. */
  async resize(size: { rows: number; cols: number }): Promise<void> {
    if (!size || !Number.isInteger(size.rows) || !Number.isInteger(size.cols) || size.rows < 1 || size.cols < 1 || size.rows > 65535 || size.cols > 65535) {
      throw new ValidationError('size', 'must be { rows, cols } with integers from 1 to 65535');
    }
    const { record, state } = await this.read();
    assertAllowed('resize', state.status, record.name);
    if (record.options.tty !== true) throw new ConflictError(`container ${record.name} has no TTY (create it with tty: true)`);
    if (!this.#live) throw new ConflictError(`container ${record.name} is supervised by another process (pid ${state.owner?.pid ?? state.monitor?.pid}); resize it there`);
    this.#live.resize(size.rows, size.cols);
  }

  // ---------------------------------------------------------------------------------------
  // I/O

  /** The container's output: iterate for lines, or `.stream()` for text. */
  logs(options: LogsOptions = {}): ContainerLogs {
    const opts = resolveLogOptions(options);
    return new ContainerLogs(
      {
        path: this.#ctx.store.logPath(this.id),
        isDone: async () => {
          try {
            const s = await this.#state();
            return !isActive(s.status);
          } catch {
            return true;
          }
        },
      },
      opts,
    );
  }

  /** The live stdin/stdout/stderr of a running container this object supervises. */
  async attach(): Promise<AttachSession> {
    const { record, state } = await this.read();
    assertAllowed('attach', state.status, record.name);
    const live = this.#live;
    const tty = record.options.tty === true;
    if (!live) {
      if (record.lifetime !== 'detached') {
        throw new ConflictError(`container ${record.name} is supervised by process ${state.owner?.pid}: only that process holds its pipes (attach there, or read logs({ follow: true }))`);
      }
      // A detached container's monitor holds the pipes: output comes from the log as it grows.
      const ac = new AbortController();
      const out = this.logs({ follow: true, since: new Date(), signal: ac.signal, ...(tty ? {} : { stderr: false }) }).stream();
      const err = tty ? null : this.logs({ follow: true, since: new Date(), signal: ac.signal, stdout: false }).stream();
      return { stdin: null, stdout: out, stderr: err, detach: () => ac.abort() };
    }
    return live.attach(tty);
  }

  async #execPlan(cmd: string[], opts: ExecOptions) {
    const argv = checkExecArgv(cmd);
    if (opts.signal?.aborted) throw new AbortError('exec() was aborted', { cause: opts.signal.reason });
    const { record, state } = await this.read();
    assertAllowed('exec', state.status, record.name);
    const cg = this.#cgroupOf(record.name, state);
    const pidfd = openContainerPidfd(state.pid, state.pidStartTime);
    try {
      const spec = planContainerExec({ record, pid: state.pid, pidfd, cgroupProcs: cg.procsFiles }, argv, opts);
      return await spawnExec(spec, argv[0]!, opts.signal);
    } finally {
      closeSync(pidfd);
    }
  }

  /**
   * Runs `cmd` in the running container and resolves with its result. The exit code is a
   * result, not an error (127: not found, 126: not executable).
   */
  async exec<O extends ExecOptions = ExecOptions>(cmd: string[], options?: O): Promise<ExecResult<O extends { encoding: 'buffer' } ? Buffer : string>> {
    const opts: ExecOptions = options ?? {};
    checkMaxBuffer(opts.maxBuffer);
    const started = await this.#execPlan(cmd, { ...opts, ...(opts.stdin === true ? { stdin: undefined } : {}) });
    return execResult(started, opts) as Promise<ExecResult<O extends { encoding: 'buffer' } ? Buffer : string>>;
  }

  /** The streaming form of {@link exec}: the process's streams and its exit. `stdin: true` keeps stdin open. */
  async execStream(cmd: string[], options: ExecOptions = {}): Promise<ExecSession> {
    return execSession(await this.#execPlan(cmd, options), options);
  }

  async #probe(argv: string[], signal: AbortSignal) {
    const s = await this.#state().catch(() => undefined);
    if (!s || s.status !== 'running') return null;
    // Docker keeps 4 KiB of a probe's output; a probe cannot make Node hold more.
    const r = await this.exec(argv, { signal, maxBuffer: 4096 }).catch((error: unknown) => {
      if (signal.aborted) throw error;
      return { exitCode: -1, stdout: '', stderr: (error as Error).message, signal: null };
    });
    return { exitCode: r.exitCode, output: r.stdout + r.stderr };
  }

  async #onHealth(live: Supervisor, health: HealthState, changed: boolean): Promise<void> {
    if (this.#live !== live) return;
    let record: ContainerRecord | undefined;
    await this.#withLock(async (rec, state) => {
      record = rec;
      if (!isActive(state.status)) return;
      await this.#ctx.store.writeState(this.id, { ...state, health });
    }).catch(() => {});
    if (changed) this.#publish('health_status', [health.status], { healthStatus: health.status }, record);
    this.#changed.emit('changed');
  }

  // ---------------------------------------------------------------------------------------
  // Inspection

  /** Docker-like `inspect`. */
  async inspect(): Promise<ContainerInspect> {
    const { record, state } = await this.read();
    const store = this.#ctx.store;
    const volumes = this.#ctx.volumes.store;
    const network = await networkSettingsOf(this.#ctx.networks, record, isActive(state.status), undefined, state.userModeNetwork);
    this.#mapped = { running: isActive(state.status), status: state.status, ports: network?.Ports ?? {} };
    return buildInspect(record, state, { log: store.logPath(this.id), upper: store.upperDir(this.id), work: store.workDir(this.id), volumeData: (name) => volumes.dataDir(name), storage: storageDriverNamed(record.storageDriver) }, network);
  }

  /**
   * The host addresses a container port is published on, as `docker port`: `port(8080)`,
   * `port('53/udp')`. Empty when the port is not published or the container is not running.
   */
  async port(containerPort: number | string, protocol?: 'tcp' | 'udp'): Promise<PortBinding[]> {
    const key = portKey(containerPort, protocol);
    const { record, state } = await this.read();
    await this.#seePorts(record, state);
    return bindingsOf({ Ports: this.#mapped!.ports }, key);
  }

  /**
   * The host port a container port is published on (testcontainers' name): `getMappedPort(8080)`,
   * `getMappedPort('53/udp')`. With several bindings, the first. Pair it with {@link getHost}.
   *
   * Synchronous, as in testcontainers: it answers from the ports this object last saw, which
   * `start()`, a policy restart, `rt.containers.get()`, `inspect()` and `port()` refresh and an
   * exit, `stop()` or `kill()` clears. Host ports are chosen at each start; after another process
   * restarted the container, call `inspect()` or `get()` again first.
   * @throws ValidationError for a malformed port; ConflictError when the container was not
   *   running when last seen; NotFoundError when the port is not published (the message names
   *   it and the published ones).
   */
  getMappedPort(containerPort: number | string, protocol?: 'tcp' | 'udp'): number {
    return this.#binding(containerPort, protocol).hostPort;
  }

  /**
   * The host address to reach a published port from this host: the binding's `hostIp`, which
   * is `'127.0.0.1'` for the default binding (berth publishes on loopback unless told
   * otherwise), and `'127.0.0.1'` for a binding on every address (`'0.0.0.0'`). Without a
   * port: that of the first published port, or `'127.0.0.1'` when none is published.
   * Synchronous, from the same view as {@link getMappedPort}.
   * @throws as {@link getMappedPort} when `containerPort` is given.
   */
  getHost(containerPort?: number | string, protocol?: 'tcp' | 'udp'): string {
    if (containerPort !== undefined) return reachableHost(this.#binding(containerPort, protocol).hostIp);
    const first = Object.values(this.#mapped?.ports ?? {}).flat()[0];
    return reachableHost(first?.HostIp ?? '127.0.0.1');
  }

  #binding(containerPort: number | string, protocol?: 'tcp' | 'udp'): PortBinding {
    const key = portKey(containerPort, protocol);
    const seen = this.#mapped;
    if (!seen?.running) throw new ConflictError(`container ${this.#name} is not running${seen ? ` (${seen.status})` : ''}: its port ${key} is mapped only while it runs (start() it, or get() it again if another process did)`);
    const binding = bindingsOf({ Ports: seen.ports }, key)[0];
    if (!binding) {
      const published = Object.keys(seen.ports);
      throw new NotFoundError(`container ${this.#name} does not publish port ${key} (${published.length > 0 ? `published: ${published.join(', ')}` : 'it publishes no port: use the ports option'})`);
    }
    return binding;
  }

  /** Re-reads the published ports {@link getMappedPort} answers from. @internal */
  async refreshMappedPorts(): Promise<void> {
    const { record, state } = await this.read();
    await this.#seePorts(record, state);
  }

  async #seePorts(record: ContainerRecord, state: ContainerState): Promise<void> {
    const running = isActive(state.status);
    const ports = !running || !usesBridge(record) ? {} : state.userModeNetwork ? (await networkSettingsOf(this.#ctx.networks, record, true, undefined, state.userModeNetwork)).Ports : (await this.#ctx.networks.settingsFor(this.id)).Ports;
    this.#mapped = { running, status: state.status, ports };
  }

  /** The current status (`running`, `exited`, ...). */
  async status(): Promise<ContainerState['status']> {
    return (await this.#state()).status;
  }

  /** The running container's cgroup; one that runs without (the `limits` option) has an absent one. */
  #cgroupOf(name: string, state: ContainerState): Cgroup {
    if (state.limitsSkipped) return new AbsentCgroup(this.id, 2, state.limitsSkipped.reason);
    const cg = cgroupsForHost().driver.open(this.id);
    if (!cg) throw new ConflictError(`container ${name} is not running`);
    return cg;
  }

  /**
   * Resource use: one reading (CPU over `interval` ms, default 200), or with `stream: true` an
   * async iterable of readings every `interval` ms (default 1000) until the container stops.
   */
  stats(options?: { stream?: false; interval?: number; signal?: AbortSignal }): Promise<ContainerStats>;
  stats(options: { stream: true; interval?: number; signal?: AbortSignal }): AsyncIterable<ContainerStats>;
  stats(options: { stream?: boolean; interval?: number; signal?: AbortSignal } = {}): Promise<ContainerStats> | AsyncIterable<ContainerStats> {
    const interval = options.interval ?? (options.stream ? 1000 : 200);
    if (!(interval > 0)) throw new ValidationError('interval', 'must be a positive number of milliseconds');
    const prepare = async () => {
      const { record, state } = await this.read();
      assertAllowed('stats', state.status, record.name);
      const cg = this.#cgroupOf(record.name, state);
      return () => cg.stats();
    };
    if (options.stream) {
      const self = this;
      return (async function* () {
        const read = await prepare();
        yield* streamStats(read, async () => isActive((await self.#state().catch(() => undefined))?.status ?? 'exited'), interval, options.signal);
      })();
    }
    return prepare().then((read) => oneShot(read, interval, options.signal));
  }

  /** The processes in the container (`docker top`). */
  async top(): Promise<TopResult> {
    const { record, state } = await this.read();
    assertAllowed('top', state.status, record.name);
    return topOf(this.#cgroupOf(record.name, state).pids());
  }

  #layers(record: ContainerRecord): { layer: ContainerLayerPaths; lowers: string[] } {
    const s = record.source;
    if (s.kind === 'host') throw new UnsupportedError(`container ${record.name} runs on the host's root ({ host: true }): it has no layers to diff, commit or export`);
    return { layer: { upperDir: this.#ctx.store.upperDir(this.id), workDir: this.#ctx.store.workDir(this.id) }, lowers: s.kind === 'image' ? s.lowerDirs : [s.dir] };
  }

  /**
   * Files added (`A`), changed (`C`) and deleted (`D`) relative to the image (`docker diff`):
   * only what the container changed, not the files and mount points berth makes for it
   * (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/dev`, `/proc`, `/sys`, the targets of
   * its mounts and the directories made to hold them).
   */
  async diff(): Promise<Change[]> {
    const { record } = await this.read();
    const { layer, lowers } = this.#layers(record);
    return keepContainerChanges(storageDriverNamed(record.storageDriver).changes(layer, lowers), [...KERNEL_MOUNTPOINTS, ...storedMounts(record).map((m) => m.target)]);
  }

  /** The merged root filesystem as a tar stream (`docker export`). */
  export(options: { signal?: AbortSignal } = {}): Readable {
    const self = this;
    return Readable.from(
      (async function* () {
        const { record } = await self.read();
        const { layer, lowers } = self.#layers(record);
        yield* containerMergedArchive(storageDriverNamed(record.storageDriver), layer, lowers, options.signal);
      })(),
      { objectMode: false },
    );
  }

  #rootAccess(): ContainerRootAccess {
    const store = this.#ctx.store;
    return { read: () => this.read(), lock: () => store.lockContainer(this.id), upperDir: store.upperDir(this.id), workDir: store.workDir(this.id) };
  }

  /**
   * Extracts a tar archive into the existing directory `options.path` of the container
   * (dockerode's `putArchive`), in any state but removing/dead. The path's symlinks are
   * resolved inside the container's root; the archive's entries can never leave `path` nor pass
   * through a symlink. Owners are the archive's ids as the container's (mapped through its user
   * namespace); regular files appear only once complete. A stopped container's volumes and
   * binds are not reachable (a path in one is refused). Holds a stopped container's lock (so
   * `start()` waits) until done.
   * @throws ValidationError (`path`, `tar`: not a tar, truncated); NotFoundError (no such
   *   directory); ArchiveConflictError (not a directory, a directory over a file or the
   *   reverse); UnsafeArchiveEntryError (`..`, absolute or symlinked entry paths, hard links
   *   out, device nodes for an unprivileged container, unmapped owners); SystemError (`EROFS`
   *   for a read-only root, volume or bind, `ENOSPC`…) naming the path; ConflictError while
   *   removing; UnsupportedError for a stopped `{ host: true }` container.
   */
  async putArchive(tar: Readable | Buffer, options: ArchiveOptions): Promise<void> {
    return putArchive(this.#rootAccess(), tar, options);
  }

  /**
   * A tar stream of `options.path` in the container (dockerode's `getArchive`): a directory
   * with everything below it (named after its last component, or `.` for a path ending in
   * `/.`), or one file, symlink or special file. Owners are the container's ids. Resolves once
   * the path is found, with its stat as `stream.stat`. Read the stream to its end or destroy it:
   * until then it holds an fd (and a stopped container's lock).
   * @throws NotFoundError; ArchiveConflictError (`…/` naming a non-directory); ValidationError
   *   (`path`); UnsupportedError (a file on `/proc`, `/sys` or another pseudo file system).
   */
  async getArchive(options: ArchiveOptions): Promise<ArchiveStream> {
    return getArchive(this.#rootAccess(), options);
  }

  /** What `path` names in the container, without following a final symlink (Docker's `HEAD …/archive`). Throws as {@link getArchive}. */
  async statPath(path: string): Promise<PathStat> {
    return statPath(this.#rootAccess(), path);
  }

  /**
   * Copies a host file or directory into the container with `docker cp`'s rules: into an
   * existing directory under its own name (a source ending in `/.`: its contents); over an
   * existing file; as a new name whose parent exists. Files belong to the container's root
   * (`archive: true`: keep the host's ids). Modes, mtimes, symlinks and hard links are kept.
   * @throws NotFoundError (a missing source, destination parent, or `…/` destination);
   *   ArchiveConflictError (a directory onto a file); the errors of {@link putArchive}.
   */
  async copyTo(hostPath: string, containerPath: string, options: CopyOptions = {}): Promise<void> {
    return copyTo(this.#rootAccess(), hostPath, containerPath, options);
  }

  /**
   * Copies a container's file or directory to the host with `docker cp`'s rules (see
   * {@link copyTo}). Files belong to the invoking user (`archive: true`: the container's ids);
   * set-id bits, device nodes and extended attributes other than `user.*` are not copied to the
   * host. Each file is written under a temporary name and renamed into place once complete (a
   * directory copied to a new name too, as a whole).
   * @throws as {@link getArchive}, and ArchiveConflictError / UnsafeArchiveEntryError /
   *   SystemError for the host destination.
   */
  async copyFrom(containerPath: string, hostPath: string, options: CopyOptions = {}): Promise<void> {
    return copyFrom(this.#rootAccess(), containerPath, hostPath, options);
  }

  /** A new image from the container's changes; resolves with its id. Pauses the container while it reads its files (unless `pause: false`). */
  async commit(options: CommitOptions = {}): Promise<string> {
    const { record, state } = await this.read();
    this.#layers(record);
    const pause = options.pause !== false && state.status === 'running';
    if (pause) await this.pause();
    try {
      return await commitContainer(this.#ctx.images, record, { driver: storageDriverNamed(record.storageDriver), layer: this.#layers(record).layer }, join(this.#ctx.root, 'tmp'), options);
    } finally {
      if (pause) await this.unpause().catch(() => {});
    }
  }

  // ---------------------------------------------------------------------------------------
  // Waits for harnesses

  #waitTarget(record: ContainerRecord): WaitTarget {
    return {
      name: record.name,
      logs: (o) => this.logs(o),
      readState: () => this.#state(),
      network: () => record.options.network ?? 'none',
      pids: () => cgroupsForHost().driver.open(this.id)?.pids() ?? [],
      httpEndpoint: (port) => this.#hostEndpoint(record, port),
    };
  }

  /** Where the host reaches TCP `port` of the running container (see `WaitTarget.httpEndpoint`). */
  async #hostEndpoint(record: ContainerRecord, port: number): Promise<{ host: string; port: number } | undefined> {
    const mode = record.options.network ?? 'none';
    if (mode === 'host') return { host: '127.0.0.1', port };
    if (!usesBridge(record)) return undefined;
    const userMode = (await this.#state()).userModeNetwork;
    const settings = userMode ? await networkSettingsOf(this.#ctx.networks, record, true, undefined, userMode) : await this.#ctx.networks.settingsFor(this.id);
    const published = bindingsOf(settings, `${port}/tcp`)[0];
    if (published) return { host: reachableHost(published.hostIp), port: published.hostPort };
    const ip = Object.values(settings.Networks).find((n) => n.IPAddress !== '')?.IPAddress;
    return ip ? { host: ip, port } : undefined;
  }

  /** Resolves with the first line matching `pattern` (`times` lines with `times`). */
  async waitForLog(pattern: RegExp | string, options: WaitOptions & { times?: number; stream?: 'stdout' | 'stderr' } = {}) {
    const { record } = await this.read();
    return waitForLog(this.#waitTarget(record), pattern, options);
  }

  /** Resolves once a process of the container listens on TCP `port` (any network mode, no exec needed). */
  async waitForPort(port: number, options: WaitOptions & { interval?: number } = {}): Promise<void> {
    const { record } = await this.read();
    return waitForPort(this.#waitTarget(record), port, options);
  }

  /**
   * Resolves with `{ status, body }` once an HTTP request to `path` on the container's
   * `options.port` answers with `status` (default: any 2xx) and, if given, a `body` containing
   * the string or matching the RegExp (testcontainers' `Wait.forHttp`). The request goes from
   * the host to the port's published binding (see {@link getHost}), else to the container's
   * address on its network. Default timeout 60 s; attempts every 100 ms.
   * @throws ValidationError for bad options; ConflictError when the container stops or the
   *   host cannot reach it (network `none` without `ports`); WaitTimeoutError naming the URL
   *   and the last status, body or connection error; AbortError.
   */
  async waitForHttp(path: string, options: WaitForHttpOptions): Promise<{ status: number; body: string }> {
    const { record } = await this.read();
    return waitForHttp(this.#waitTarget(record), path, options);
  }

  /** Resolves once the healthcheck says `healthy`. */
  async waitForHealthy(options: WaitOptions = {}): Promise<void> {
    const { record } = await this.read();
    return waitForHealthy(this.#waitTarget(record), record.healthcheck !== null, options);
  }

  /**
   * `await using c = await rt.containers.create(...)`: removed (forcibly) at the end of the
   * scope. `await using` needs Node 24 or a transpiler (a syntax error on plain Node 20); there,
   * `try { … } finally { await c.remove({ force: true }) }` does the same.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.remove({ force: true });
    } catch (error) {
      if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
    }
  }

  /**
   * @internal The runtime is closing: policy restarts this object was about to make, or would
   * make after the exit of the run it supervises, will not happen (their timers would keep Node
   * alive); the state says the container exited. A run it supervises goes on until it exits.
   */
  async abandonPendingRestart(): Promise<void> {
    this.#runtimeClosed = true;
    if (!this.#restartTimer) return;
    this.#cancelRestart();
    await this.#withLock(async (_r, s) => {
      if (s.status !== 'restarting' || s.owner?.pid !== process.pid) return;
      const next: ContainerState = { ...s, status: 'exited', error: 'the runtime was closed before the policy restart' };
      delete next.owner;
      await this.#ctx.store.writeState(this.id, next);
    }).catch(() => {});
    this.#changed.emit('changed');
  }

  /** @internal Whether this object supervises a run. */
  get supervising(): boolean {
    return this.#live !== undefined || this.#restartTimer !== undefined;
  }
}

