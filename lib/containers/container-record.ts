/**
 * What berth stores about a container: the resolved create() options (`config.json`, written
 * once, rewritten only by rename) and its run state (`state.json`, rewritten on every
 * transition). Both are plain JSON so that any process, and a human, can read them.
 * @module
 */
import type { PublishedPort } from '../network/types.js';
import type { ContainerConfig } from '../image/manifest.js';
import type { ProcessIdentity } from '../state/process-identity.js';
import type { LimitsSkipped } from '../launch/limits.js';
import type { RestartPolicy } from './restart-policy.js';
import type { HealthcheckConfig, HealthState } from './healthcheck.js';
import type { StoredRunOptions } from './container-options.js';
import type { MountRecord } from '../volumes/volume-mounts.js';
import type { StorageDriverName } from '../storage/driver.js';

/** Docker's container states, plus `removing` while a removal is under way. */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** Where the container's root filesystem comes from, resolved at create time. */
export type ContainerSource =
  | { kind: 'image'; ref: string; imageId: string; lowerDirs: string[]; chainIds: string[] }
  | { kind: 'rootfs'; dir: string }
  | { kind: 'host' };

export type Lifetime = 'process' | 'detached';

/** `config.json`. */
export interface ContainerRecord {
  version: 1;
  id: string;
  name: string;
  /** RFC 3339. */
  created: string;
  source: ContainerSource;
  /** The image's config when created from an image (Docker keeps it too: the image may change later). */
  imageConfig?: ContainerConfig;
  /** As the caller gave them (`null`: not given). */
  cmd: string[] | null;
  entrypoint: string[] | null;
  /** What runs: Entrypoint + Cmd after Docker's merge. */
  argv: string[];
  /** The environment shown by inspect (image Env, defaults, then the options). */
  env: string[];
  /** `options` without `mounts`: those are in {@link ContainerRecord.mounts}. */
  options: StoredRunOptions;
  /**
   * Every mount, resolved at create: volumes by name (named, anonymous, inherited with
   * `volumesFrom`, the image's `Volumes`), binds and tmpfs as given; parents before children.
   * Absent in records written before volumes were supported: their mounts are in `options`.
   */
  mounts?: MountRecord[];
  hostname: string;
  labels: Record<string, string>;
  restart: RestartPolicy;
  autoRemove: boolean;
  healthcheck: HealthcheckConfig | null;
  lifetime: Lifetime;
  stopSignal: string;
  stopTimeoutMs: number;
  openStdin: boolean;
  log: { maxSize: number; maxFiles: number };
  /**
   * The storage driver its layer was made for (the runtime's at create): a container keeps it
   * whatever a later runtime of the directory chooses. Absent in records written before
   * drivers were chosen: `overlay`.
   */
  storageDriver?: StorageDriverName;
}

/** Docker's zero time, used for StartedAt/FinishedAt before the first start/exit. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** `state.json`. */
export interface ContainerState {
  status: ContainerStatus;
  /** Host pid of the container's PID 1; 0 when not running. */
  pid: number;
  pidStartTime?: string;
  /** The Node process supervising a `lifetime: 'process'` container (its logs, exit, restarts). */
  owner?: ProcessIdentity;
  /** The monitor of a detached container. */
  monitor?: ProcessIdentity;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  signal: NodeJS.Signals | null;
  oomKilled: boolean;
  /** Why the last start failed, or what reconciliation found. */
  error: string;
  /** Restarts done by the restart policy, in total (Docker's RestartCount). */
  restartCount: number;
  /** Policy restarts since the last user start (what `on-failure:max` counts). */
  retries: number;
  /** stop(), kill() or remove() ended the last run: no policy restart. */
  manuallyStopped: boolean;
  health?: HealthState;
  /** The current (or last) run has no cgroup (the `limits` option): what it lacks, why, the fix. */
  limitsSkipped?: LimitsSkipped;
  /**
   * Without root: the run's own user-mode network (its stack and the ports it publishes, host
   * ports chosen), which no network lease records.
   */
  userModeNetwork?: { stack: string; ports: PublishedPort[] };
  /** Set with `removing`: the removal also takes the anonymous volumes (so a reconciliation finishing it does too). */
  removeVolumes?: boolean;
}

export function initialState(): ContainerState {
  return {
    status: 'created',
    pid: 0,
    startedAt: ZERO_TIME,
    finishedAt: ZERO_TIME,
    exitCode: 0,
    signal: null,
    oomKilled: false,
    error: '',
    restartCount: 0,
    retries: 0,
    manuallyStopped: false,
  };
}

/** Running in Docker's sense: a process exists (also while paused or waiting to restart). */
export function isActive(status: ContainerStatus): boolean {
  return status === 'running' || status === 'paused' || status === 'restarting';
}
