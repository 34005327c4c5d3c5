/**
 * The live side of a `lifetime: 'process'` container run that this Node process started: it
 * holds PID 1's pidfd (signals, exit), the pipes (the log writer, attach sessions, stdin), the
 * health monitor, the run's cgroup and its network leases, and takes them down when PID 1
 * exits. {@link Container} owns the state machine around it: what a start, an exit or a health
 * change writes to state.json and publishes, and whether a restart follows.
 * @module
 */
import { PassThrough, type Readable, Writable } from 'node:stream';
import type { Cgroup } from '../cgroup/index.js';
import type { ContainerProcess, ExitStatus } from '../launch/container-process.js';
import type { PreparedNetwork } from '../network/attach.js';
import type { NetworkService } from '../network/network-service.js';
import type { ContainerRecord } from './container-record.js';
import { HealthMonitor, type HealthState, type Probe } from './healthcheck.js';
import { LogWriter } from './log-writer.js';

/** The live streams of a running container (`attach()`). */
export interface AttachSession {
  /** Writes go to the container's stdin (needs `openStdin: true`); ending it closes the container's stdin. */
  stdin: Writable | null;
  stdout: Readable;
  /** `null` with a TTY (one stream carries both). */
  stderr: Readable | null;
  /** Stops receiving output; the container keeps running. */
  detach(): void;
}

/** How the supervised run ended, once everything it held is released. */
export interface SupervisedExit {
  status: ExitStatus;
  oomKilled: boolean;
  /** The health monitor's last state, when the container has a healthcheck. */
  health: HealthState | undefined;
}

export interface SupervisorOptions {
  id: string;
  /** For warnings: the container's current name. */
  name: () => string;
  record: ContainerRecord;
  process: ContainerProcess;
  cgroup: Cgroup;
  /** Bridge networks: the leases of this run, released at its exit. */
  network: PreparedNetwork | undefined;
  networks: NetworkService;
  logPath: string;
  /** Runs a health probe in the container. */
  probe: Probe;
  /** After every probe, while this run is live. */
  onHealth: (health: HealthState, changed: boolean) => Promise<void>;
  /** After PID 1 exited and the run's resources are released. */
  onExit: (exit: SupervisedExit) => Promise<void>;
}

export class Supervisor {
  readonly proc: ContainerProcess;
  readonly startedAtMs = Date.now();
  readonly #opts: SupervisorOptions;
  readonly #log: LogWriter;
  readonly #attachments = new Set<() => void>();
  #health: HealthMonitor | undefined;

  /** Starts logging the run's output; {@link watch} once its state is recorded. */
  constructor(opts: SupervisorOptions) {
    this.#opts = opts;
    this.proc = opts.process;
    this.#log = new LogWriter({ path: opts.logPath, maxSize: opts.record.log.maxSize, maxFiles: opts.record.log.maxFiles });
    this.#log.consume(this.proc.stdout, 'stdout');
    this.#log.consume(this.proc.stderr, 'stderr');
  }

  /** Watches for the exit and starts the health monitor. */
  watch(): void {
    void this.proc.exited
      .then((status) => this.#exited(status))
      .catch((error: unknown) => {
        // Nothing may reject unhandled in the caller's process; the next reconciliation (or a
        // read of this container) repairs a state this could not write.
        process.emitWarning(`berth: recording the exit of container ${this.#opts.name()} failed: ${(error as Error)?.message ?? String(error)}`, { code: 'BERTH_CONTAINER_EXIT' });
      });
    const healthcheck = this.#opts.record.healthcheck;
    if (healthcheck) {
      this.#health = new HealthMonitor(healthcheck, { probe: this.#opts.probe, onResult: (h, changed) => this.#opts.onHealth(h, changed) });
      this.#health.start();
    }
  }

  /** The state could not be recorded: nobody would ever stop this run, so it must not run. */
  async abandon(): Promise<void> {
    this.proc.kill(9);
    await this.#opts.network?.release().catch(() => {});
  }

  /** Signals PID 1 through its pidfd. */
  kill(sig: number): boolean {
    return this.proc.kill(sig);
  }

  resize(rows: number, cols: number): void {
    this.proc.resize(rows, cols);
  }

  /** The run's output as it is written, and its stdin when the container keeps one open. */
  attach(tty: boolean): AttachSession {
    const stdout = new PassThrough();
    const stderr = tty ? null : new PassThrough();
    const untap = this.#log.tap((stream, chunk) => (stream === 'stdout' || tty ? stdout : stderr)?.write(chunk));
    const end = () => {
      untap();
      stdout.end();
      stderr?.end();
      this.#attachments.delete(end);
    };
    this.#attachments.add(end);
    const target = this.proc.stdin;
    const stdin = this.#opts.record.openStdin && target
      ? new Writable({
          write(chunk, _enc, cb) {
            if (target.write(chunk)) cb();
            else target.once('drain', () => cb());
          },
          final(cb) {
            target.end();
            cb();
          },
        })
      : null;
    return { stdin, stdout, stderr, detach: end };
  }

  async #exited(status: ExitStatus): Promise<void> {
    this.#health?.stop();
    // The bound is cleared once the log drains: a pending timer would keep Node alive for 2 s
    // after the last container of a process exited.
    let bound: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.#log.drained, new Promise<void>((resolve) => (bound = setTimeout(resolve, 2000)))]);
    } finally {
      clearTimeout(bound);
      this.#log.close();
    }
    for (const end of this.#attachments) end();
    let oomKilled = false;
    try {
      oomKilled = this.#opts.cgroup.oomKillCount() > 0;
      this.#opts.cgroup.kill({ timeoutMs: 1000 });
      this.#opts.cgroup.remove({ timeoutMs: 1000 });
    } catch {
      // left for reconciliation
    }
    // Before the exit is written: whoever sees the container stopped may reuse its port or
    // remove its network at once.
    await this.#releaseNetwork();
    await this.#opts.onExit({ status, oomKilled, health: this.#health?.state });
  }

  /** The run's leases, and any a `connect()` added while it ran. Never throws: the exit must be recorded. */
  async #releaseNetwork(): Promise<void> {
    const network = this.#opts.network;
    if (!network) return;
    try {
      await network.release();
      await this.#opts.networks.releaseContainer(this.#opts.id);
    } catch (error) {
      process.emitWarning(`berth: releasing the network of container ${this.#opts.name()} failed: ${(error as Error)?.message ?? String(error)}`, { code: 'BERTH_NETWORK_RELEASE' });
    }
  }
}
