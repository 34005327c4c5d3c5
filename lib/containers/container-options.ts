/**
 * `containers.create()` options: the `run()` options plus the container's own (name, labels,
 * image, cmd, entrypoint, restart, healthcheck, lifetime...), validated before anything is
 * written, every error naming the option.
 * @module
 */
import { statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { signalNumber } from '../launch/container-process.js';
import { normalizeRunOptions, type MountSpec, type NormalizedRunOptions, type RunOptions } from '../launch/run-options.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { parseBytes } from '../units.js';
import { parseVolumesFrom } from '../volumes/volume-mounts.js';
import { parseDuration } from './duration.js';
import type { HealthcheckOptions } from './healthcheck.js';
import { normalizeName } from './names.js';
import { parseRestartPolicy, type RestartPolicy, type RestartPolicyInput } from './restart-policy.js';
import type { Lifetime } from './container-record.js';

/**
 * Where a container's root filesystem comes from: an image reference or an image object
 * (anything with an `id`, such as what `rt.images.pull()` gives), a directory, or the host's
 * own `/usr` (as `run({ host: true })`).
 */
export type ContainerImage = string | { id: string } | { rootfs: string } | { host: true };

/** Options of `rt.containers.create()`. Run options keep their `run()` meaning. */
export interface ContainerCreateOptions extends Omit<RunOptions, 'stdin' | 'timeout' | 'signal' | 'encoding'> {
  image: ContainerImage;
  /** Replaces the image's Cmd (Docker's rule). Required without an image. */
  cmd?: string[];
  /** Replaces the image's Entrypoint and drops its Cmd. */
  entrypoint?: string[];
  /** Unique among this runtime's containers. Default: a generated `adjective_noun_NNNN`. */
  name?: string;
  labels?: Record<string, string>;
  /** Remove the container when it exits (and no restart follows). Docker's `--rm`. */
  autoRemove?: boolean;
  /** `'no'` (default), `'always'`, `'unless-stopped'`, `'on-failure'`, `'on-failure:3'`. */
  restart?: RestartPolicyInput;
  /** A healthcheck, or `'none'` to disable the image's. */
  healthcheck?: HealthcheckOptions | 'none';
  /**
   * `'process'` (default): the container dies with this Node process, even on SIGKILL.
   * `'detached'`: it outlives the process; a small monitor holds it.
   */
  lifetime?: Lifetime;
  /** Signal `stop()` sends first. Default: the image's StopSignal, else SIGTERM. */
  stopSignal?: NodeJS.Signals;
  /** How long `stop()` waits before SIGKILL, in ms. Default 10000 (Docker's 10 s). */
  stopTimeout?: number;
  /** Keep stdin open as a pipe for `attach()` (Docker's `-i`). Default false: /dev/null. */
  openStdin?: boolean;
  /** Log rotation: size of one file (bytes or `'20m'`) and files kept. Default 20 MiB x 5 (Docker's `local` driver). */
  log?: { maxSize?: number | string; maxFiles?: number };
  /**
   * Docker's `--volumes-from`: every volume and bind mount of these containers (names or ids),
   * `'db:ro'` / `'db:rw'` to override their mode. Explicit `mounts` win a target.
   */
  volumesFrom?: string[];
}

/**
 * The run options as stored in config.json (JSON-safe: no streams, signals or timers; mounts
 * are stored resolved, as `ContainerRecord.mounts`).
 */
export type StoredRunOptions = Omit<NormalizedRunOptions, 'stdin' | 'timeout' | 'signal' | 'encoding'>;

/** The container-only options after validation. */
export interface NormalizedCreateOptions {
  image: ContainerImage;
  cmd: string[] | null;
  entrypoint: string[] | null;
  name: string | undefined;
  labels: Record<string, string>;
  autoRemove: boolean;
  restart: RestartPolicy;
  healthcheck: HealthcheckOptions | 'none' | undefined;
  lifetime: Lifetime;
  stopSignal: NodeJS.Signals | undefined;
  stopTimeoutMs: number;
  openStdin: boolean;
  log: { maxSize: number; maxFiles: number };
  /** The mounts as given (a `Volume` source still an object); resolved by the service at create. */
  mounts: MountSpec[];
  volumesFrom: Array<{ container: string; mode?: 'ro' | 'rw' }>;
  /** Without `mounts`. */
  run: StoredRunOptions;
}

const CONTAINER_KEYS = new Set([
  'image', 'cmd', 'entrypoint', 'name', 'labels', 'autoRemove', 'restart', 'healthcheck', 'lifetime', 'stopSignal', 'stopTimeout', 'openStdin', 'log',
  'volumesFrom',
]);
const RUN_ONLY = new Map<string, string>([
  ['stdin', 'containers take input through attach(): set openStdin: true'],
  ['timeout', 'use stop({ timeout }) or wait({ signal })'],
  ['signal', 'pass an AbortSignal to start(), wait(), exec() or logs()'],
  ['encoding', 'logs() and exec() choose their own encoding'],
]);

export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
export const DEFAULT_LOG = Object.freeze({ maxSize: 20 * 1024 * 1024, maxFiles: 5 });

function checkArgv(value: unknown, option: string): string[] {
  if (!Array.isArray(value)) throw new ValidationError(option, 'must be an array of strings');
  value.forEach((a, i) => {
    if (typeof a !== 'string') throw new ValidationError(`${option}[${i}]`, 'must be a string');
    if (a.includes('\0')) throw new ValidationError(`${option}[${i}]`, 'must not contain NUL bytes');
  });
  return value as string[];
}

/** `'SIGTERM'`, `'TERM'`, `'15'`, 15 -> `'SIGTERM'`. */
export function signalName(value: unknown, option: string): NodeJS.Signals {
  const num = typeof value === 'number' ? signalNumber(value) : typeof value === 'string' ? (/^\d+$/.test(value) ? signalNumber(Number(value)) : signalNumber(value)) : undefined;
  const name = num === undefined ? undefined : Object.entries(osConstants.signals).find(([, n]) => n === num)?.[0];
  if (name === undefined) throw new ValidationError(option, `unknown signal ${JSON.stringify(value)}`);
  return name as NodeJS.Signals;
}

function checkImage(image: unknown): ContainerImage {
  if (typeof image === 'string') {
    if (image === '') throw new ValidationError('image', 'must not be empty');
    return image;
  }
  if (typeof image === 'object' && image !== null) {
    if ('host' in image) {
      if ((image as { host: unknown }).host !== true) throw new ValidationError('image.host', 'must be true');
      return { host: true };
    }
    if ('rootfs' in image) {
      const dir = (image as { rootfs: unknown }).rootfs;
      if (typeof dir !== 'string' || !dir.startsWith('/')) throw new ValidationError('image.rootfs', `must be an absolute path, got ${JSON.stringify(dir)}`);
      return { rootfs: dir };
    }
    if (typeof (image as { id?: unknown }).id === 'string') return { id: (image as { id: string }).id };
  }
  throw new ValidationError('image', 'must be an image reference, an image object, { rootfs: "/abs/dir" } or { host: true }');
}

/** Validates every option; nothing is touched on disk. */
export function normalizeCreateOptions(options: ContainerCreateOptions): NormalizedCreateOptions {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object with at least { image }');
  const runPart: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (RUN_ONLY.has(key)) throw new ValidationError(key, `is a run() option, not a container option: ${RUN_ONLY.get(key)}`);
    if (!CONTAINER_KEYS.has(key)) runPart[key] = value;
  }
  // Unknown keys are reported by the run-option validator, with its "did you mean".
  const run = normalizeRunOptions(runPart as RunOptions) as StoredRunOptions;
  const mounts = [...(run.mounts ?? [])];
  delete run.mounts;
  let volumesFrom: NormalizedCreateOptions['volumesFrom'] = [];
  if (options.volumesFrom !== undefined) {
    if (!Array.isArray(options.volumesFrom)) throw new ValidationError('volumesFrom', 'must be an array of container names or ids (optionally with ":ro" or ":rw")');
    volumesFrom = options.volumesFrom.map((v, i) => parseVolumesFrom(v, `volumesFrom[${i}]`));
  }
  if (options.image === undefined) throw new ValidationError('image', 'is required: an image reference, { rootfs: "/abs/dir" } or { host: true }');
  const image = checkImage(options.image);
  const labels: Record<string, string> = {};
  if (options.labels !== undefined) {
    if (typeof options.labels !== 'object' || options.labels === null || Array.isArray(options.labels)) throw new ValidationError('labels', 'must be an object of strings');
    for (const [k, v] of Object.entries(options.labels)) {
      if (typeof v !== 'string') throw new ValidationError(`labels.${k}`, 'must be a string');
      labels[k] = v;
    }
  }
  const lifetime = options.lifetime ?? 'process';
  if (lifetime !== 'process' && lifetime !== 'detached') throw new ValidationError('lifetime', `must be "process" or "detached", got ${JSON.stringify(lifetime)}`);
  const stopTimeoutMs = options.stopTimeout === undefined ? DEFAULT_STOP_TIMEOUT_MS : parseDuration(options.stopTimeout, 'stopTimeout');
  const log: { maxSize: number; maxFiles: number } = { ...DEFAULT_LOG };
  if (options.log !== undefined) {
    if (typeof options.log !== 'object' || options.log === null) throw new ValidationError('log', 'must be { maxSize, maxFiles }');
    if (options.log.maxSize !== undefined) log.maxSize = parseBytes(options.log.maxSize, 'log.maxSize');
    if (options.log.maxFiles !== undefined) {
      if (!Number.isInteger(options.log.maxFiles) || options.log.maxFiles < 1 || options.log.maxFiles > 100) throw new ValidationError('log.maxFiles', 'must be an integer from 1 to 100');
      log.maxFiles = options.log.maxFiles;
    }
    if (log.maxSize < 4096) throw new ValidationError('log.maxSize', 'must be at least 4 KiB');
  }
  for (const key of ['autoRemove', 'openStdin'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw new ValidationError(key, 'must be a boolean');
  }
  const restart = parseRestartPolicy(options.restart);
  if (options.autoRemove === true && restart.name !== 'no') {
    throw new ValidationError('autoRemove', `conflicts with restart "${restart.name}" (Docker refuses --rm with --restart too)`);
  }
  return {
    image,
    cmd: options.cmd === undefined ? null : checkArgv(options.cmd, 'cmd'),
    entrypoint: options.entrypoint === undefined ? null : checkArgv(options.entrypoint, 'entrypoint'),
    name: options.name === undefined ? undefined : normalizeName(options.name),
    labels,
    autoRemove: options.autoRemove === true,
    restart,
    healthcheck: options.healthcheck,
    lifetime,
    stopSignal: options.stopSignal === undefined ? undefined : signalName(options.stopSignal, 'stopSignal'),
    stopTimeoutMs,
    openStdin: options.openStdin === true,
    log,
    mounts,
    volumesFrom,
    run,
  };
}

/**
 * Docker's `--mount type=bind` rule, at create rather than at the first start: every bind
 * source must exist now. (It is checked again at each start, since it may go away meanwhile.)
 * @throws NotFoundError naming the mount (`mounts[i].source`, its target) and the path.
 */
export function checkBindSources(mounts: readonly MountSpec[]): void {
  mounts.forEach((m, i) => {
    if (m.type !== 'bind') return;
    try {
      statSync(m.source);
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
      throw new NotFoundError(`mounts[${i}].source: bind source "${m.source}" (for ${m.target}) ${why}`, { option: `mounts[${i}].source`, path: m.source });
    }
  });
}
