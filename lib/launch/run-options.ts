/**
 * The options of `run()` (and later `containers.create()`), with Docker's names, and their
 * validation. Validation happens before anything touches the kernel and names the option.
 * @module
 */
import { checkMaxBuffer } from './bounded-output.js';
import type { Readable } from 'node:stream';
import { ValidationError } from '../errors.js';
import { normalizeNetworkOptions, type NetworkRunOptions, type NormalizedAttachment } from '../network/network-options.js';
import type { NormalizedPort, PortProtocol } from '../network/types.js';
import type { SeccompProfile } from '../security/seccomp/types.js';
import { parseBytes, parseCpus } from '../units.js';
import { LIMITS_MODES, type LimitsMode } from './limits.js';

/** Where a container's root filesystem comes from. */
export type RunSource =
  /** An image reference (`'127.0.0.1:5000/app:1'`), pulled on first use. */
  | string
  /** A directory holding a root filesystem. It is never written to: writes go to a throw-away overlay layer. */
  | { rootfs: string }
  /** The host's own `/usr`, `/bin`, `/lib*`, `/sbin`, read-only, with a minimal generated `/etc` (like bubblewrap). */
  | { host: true };

/** A bind mount of a host path. */
export interface BindMount {
  type: 'bind';
  /** Absolute host path; must exist. */
  source: string;
  /** Absolute path inside the container, resolved inside its root (symlinks cannot lead out). */
  target: string;
  /** Mount read-only. Default `false`. */
  readonly?: boolean;
  /**
   * Mount propagation, Docker's names. Default `'rprivate'`. `'slave'`/`'rslave'`: mounts made
   * later on the host under `source` appear in the container (the source must be a shared mount).
   * `'shared'`/`'rshared'` are not supported yet (UnsupportedError).
   */
  propagation?: BindPropagation;
}

/** Docker's bind propagation modes. */
export type BindPropagation = 'private' | 'rprivate' | 'slave' | 'rslave' | 'shared' | 'rshared';

/**
 * A `Volume` of `rt.volumes` given as a mount source. The launch options sit below the volume
 * service (docs/design/layers.md), so they name the shape they read, not the class.
 */
export interface VolumeSource {
  readonly name: string;
  readonly mountpoint: string;
}

/**
 * A volume: data kept in the runtime's state directory, outliving the container and shareable
 * between containers. Resolved by a `Runtime` (`rt.run()`, containers) before launch.
 */
export interface VolumeMount {
  type: 'volume';
  /**
   * A volume name (created on first use), a `Volume` (see {@link VolumeSource}), or absent for
   * an anonymous volume, which lives as long as its container (for `run()`: the run).
   */
  source?: string | VolumeSource;
  /** Absolute path inside the container, resolved inside its root. */
  target: string;
  /** Mount read-only. Default `false`. */
  readonly?: boolean;
  /** Do not copy the image's files at `target` into an empty volume (Docker's `nocopy`). */
  nocopy?: boolean;
}

/** A fresh tmpfs. */
export interface TmpfsMount {
  type: 'tmpfs';
  /** Absolute path inside the container. */
  target: string;
  /** Size limit in bytes or with a unit (`'64m'`). Default: the kernel's (half of RAM). */
  size?: number | string;
  /** Permission bits of the tmpfs root. Default `0o1777`. */
  mode?: number;
}

export type MountSpec = BindMount | TmpfsMount | VolumeMount;

/** A resource limit as Docker's `--ulimit name=soft:hard`. */
export interface Ulimit {
  /** `nofile`, `nproc`, `core`, `stack`, ... (the `RLIMIT_` suffix, lowercase). */
  name: string;
  soft: number;
  hard: number;
}

/** One line of a uid or gid map: `size` ids from `containerId` map to `hostId`. */
export interface IdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

/** Options of {@link run}. Names follow Docker's. */
export interface RunOptions extends Pick<NetworkRunOptions, 'network' | 'networks' | 'ports' | 'dns' | 'extraHosts' | 'exposedPorts' | 'hostLoopback'> {
  /** Environment variables, merged over the defaults (`PATH`, `HOSTNAME`, `HOME`). `undefined` values remove. */
  env?: Record<string, string | undefined>;
  /** Working directory inside the container; created if missing. Default `/`. */
  workdir?: string;
  /** `'uid'`, `'uid:gid'`, `'name'` or `'name:group'` resolved in the rootfs's `/etc/passwd` and `/etc/group`. */
  user?: string;
  /** Hostname inside the container. Default: a random 12-hex-digit id. */
  hostname?: string;
  /** Memory limit: bytes or a string such as `'64m'`. */
  memory?: number | string;
  /** Memory + swap limit (Docker's `--memory-swap`); `-1` for unlimited swap. */
  memorySwap?: number | string;
  /** CPU quota as a number of CPUs, e.g. `0.5`. */
  cpus?: number | string;
  /** Relative CPU weight (Docker's `--cpu-shares`). */
  cpuShares?: number;
  /** CPUs allowed, e.g. `'0-1'`. */
  cpuset?: string;
  /** Maximum number of processes/threads. Default 4096 (Docker has none; berth limits fork bombs). `-1` for none. */
  pids?: number;
  /** Data for the container's stdin, then EOF. Default: `/dev/null`. */
  stdin?: string | Buffer | Readable;
  /** Run with a pseudo-terminal: stdout carries both streams, as with `docker run -t`. */
  tty?: boolean;
  /** Mount the root filesystem read-only. */
  readonlyRootfs?: boolean;
  /** Capabilities to add to the defaults (Docker's 14 minus NET_RAW): `'NET_RAW'`, `'NET_ADMIN'`, `'ALL'`. */
  capAdd?: string[];
  /** Capabilities to drop (`'ALL'` to start from none). */
  capDrop?: string[];
  /** `'default'` (Docker's default profile semantics), `'unconfined'`, or a profile in Docker's JSON shape. */
  seccomp?: 'default' | 'unconfined' | SeccompProfile;
  /** All capabilities, no seccomp, no masked paths, as Docker's `--privileged`. */
  privileged?: boolean;
  /** Extra mounts, applied after the standard ones. */
  mounts?: MountSpec[];
  /** Run a tiny init as PID 1 that reaps zombies and forwards signals (Docker's `--init`). */
  init?: boolean;
  /** Kill the container after this many milliseconds and report `timedOut: true`. */
  timeout?: number;
  /** Abort: kills the container; `run()` rejects with an `AbortError`. */
  signal?: AbortSignal;
  /** Resource limits: Docker's list form, or `{ nofile: 1024 }` / `{ nofile: { soft, hard } }`. */
  ulimits?: Ulimit[] | Record<string, number | { soft: number; hard: number }>;
  /** Run in a user namespace: explicit maps, or `'auto'` (root in the container maps to an unprivileged host range). */
  userns?: { uidMap: IdMapping[]; gidMap: IdMapping[] } | 'auto';
  /** `'utf8'` (default): stdout/stderr are strings; `'buffer'`: Buffers. */
  encoding?: 'utf8' | 'buffer';
  /**
   * Bytes of stdout and of stderr kept in the result (each; default 16 MiB). Past it the rest
   * is read and discarded, so the container never blocks on a full pipe and Node's memory
   * stays flat whatever the container writes; the result then has `truncated: true`.
   */
  maxBuffer?: number;
  /**
   * What to do where berth may not create the container's cgroup (rootless on cgroup v1, no
   * delegated v2 subtree, a read-only cgroupfs). `'strict'` (default): `memory`, `memorySwap`,
   * `cpus`, `cpuShares`, `cpuset` and `pids` throw an `UnsupportedError` naming the reason and
   * the fix. `'best-effort'`: the container runs without them and the result (`limitsSkipped`),
   * `inspect()` and `rt.info()` (`Limits`) say so. Either way a launch that asked for no limit
   * runs, without berth's default pids limit (reported the same way).
   */
  limits?: LimitsMode;
}

const KNOWN_OPTIONS = new Set<string>([
  'env', 'workdir', 'user', 'hostname', 'memory', 'memorySwap', 'cpus', 'cpuShares', 'cpuset', 'pids', 'stdin',
  'tty', 'readonlyRootfs', 'capAdd', 'capDrop', 'seccomp', 'privileged', 'mounts', 'network', 'init', 'timeout',
  'signal', 'ulimits', 'userns', 'encoding', 'maxBuffer', 'networks', 'ports', 'dns', 'extraHosts', 'exposedPorts',
  'limits', 'hostLoopback',
]);

/** Options after validation, with units parsed. */
export interface NormalizedRunOptions extends Omit<RunOptions, 'memory' | 'memorySwap' | 'cpus' | 'network' | 'networks' | 'ports' | 'extraHosts' | 'exposedPorts'> {
  memory?: number;
  memorySwap?: number;
  cpus?: number;
  /** `'none'`, `'host'`, `'container:<ref>'` or a network's name (a `Network` becomes its name). */
  network?: string;
  networks?: NormalizedAttachment[];
  ports?: NormalizedPort[];
  extraHosts?: Array<{ host: string; ip: string }>;
  exposedPorts?: Array<{ port: number; protocol: PortProtocol }>;
}

function closest(name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const known of KNOWN_OPTIONS) if (known.toLowerCase() === lower) return known;
  return undefined;
}

function checkAbsolute(value: unknown, option: string): string {
  if (typeof value !== 'string' || value === '') throw new ValidationError(option, 'must be a non-empty string');
  if (!value.startsWith('/')) throw new ValidationError(option, `must be an absolute path, got "${value}"`);
  if (value.includes('\0')) throw new ValidationError(option, 'must not contain NUL bytes');
  return value;
}

function checkStringArray(value: unknown, option: string): void {
  if (!Array.isArray(value)) throw new ValidationError(option, 'must be an array of strings');
  value.forEach((v, i) => {
    if (typeof v !== 'string') throw new ValidationError(`${option}[${i}]`, 'must be a string');
  });
}

const PROPAGATIONS: readonly string[] = ['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared'];
/** Docker's volume name rule (see lib/volumes/volume-name.ts). */
const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

function checkBoolean(value: unknown, option: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw new ValidationError(option, 'must be a boolean');
}

/** `/a//b/` -> `/a/b`: how Docker compares mount targets for duplicates. */
function cleanTarget(target: string): string {
  return target.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
}

function checkMounts(mounts: unknown): void {
  if (!Array.isArray(mounts)) throw new ValidationError('mounts', 'must be an array');
  const targets = new Map<string, number>();
  mounts.forEach((m: Partial<MountSpec> | undefined, i) => {
    const at = `mounts[${i}]`;
    if (!m || typeof m !== 'object') throw new ValidationError(at, 'must be an object');
    const target = checkAbsolute(m.target, `${at}.target`);
    if (target === '/' || /^\/(proc|sys|dev)(\/|$)/.test(target.replace(/\/+$/, ''))) {
      if (target === '/' || ['/proc', '/sys', '/dev'].includes(target.replace(/\/+$/, ''))) {
        throw new ValidationError(`${at}.target`, `cannot mount over "${target}": berth manages it`);
      }
    }
    const clean = cleanTarget(target);
    const dup = targets.get(clean);
    if (dup !== undefined) throw new ValidationError(`${at}.target`, `duplicate mount point "${clean}" (also mounts[${dup}])`);
    targets.set(clean, i);
    if (m.type === 'bind') {
      checkAbsolute(m.source, `${at}.source`);
      checkBoolean(m.readonly, `${at}.readonly`);
      if (m.propagation !== undefined && !PROPAGATIONS.includes(m.propagation)) {
        throw new ValidationError(`${at}.propagation`, `must be one of ${PROPAGATIONS.join(', ')}, got ${JSON.stringify(m.propagation)}`);
      }
    } else if (m.type === 'volume') {
      const source: unknown = m.source;
      if (typeof source === 'string') {
        if (!VOLUME_NAME_RE.test(source) || source.length > 255) {
          const hint = source.startsWith('/') ? ': to mount a host directory use { type: "bind", source }' : ': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters';
          throw new ValidationError(`${at}.source`, `invalid volume name ${JSON.stringify(source)}${hint}`);
        }
      } else if (source !== undefined && (typeof source !== 'object' || source === null || typeof (source as { name?: unknown }).name !== 'string')) {
        throw new ValidationError(`${at}.source`, 'must be a volume name, a Volume, or absent for an anonymous volume');
      }
      checkBoolean(m.readonly, `${at}.readonly`);
      checkBoolean(m.nocopy, `${at}.nocopy`);
    } else if (m.type === 'tmpfs') {
      if (m.size !== undefined) parseBytes(m.size, `${at}.size`);
      if (m.mode !== undefined && (!Number.isInteger(m.mode) || m.mode < 0 || m.mode > 0o7777)) {
        throw new ValidationError(`${at}.mode`, 'must be a permission mode between 0 and 0o7777');
      }
    } else {
      throw new ValidationError(`${at}.type`, `must be "bind", "volume" or "tmpfs", got ${JSON.stringify((m as { type?: unknown }).type)}`);
    }
  });
}

function checkIdMaps(userns: unknown): void {
  if (userns === 'auto') return;
  if (!userns || typeof userns !== 'object') throw new ValidationError('userns', 'must be "auto" or { uidMap, gidMap }');
  for (const key of ['uidMap', 'gidMap'] as const) {
    const maps = (userns as Record<string, unknown>)[key];
    if (!Array.isArray(maps) || maps.length === 0) throw new ValidationError(`userns.${key}`, 'must be a non-empty array');
    maps.forEach((m: Partial<IdMapping>, i) => {
      for (const field of ['containerId', 'hostId', 'size'] as const) {
        const v = m?.[field];
        if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 2 ** 32 - 1) {
          throw new ValidationError(`userns.${key}[${i}].${field}`, 'must be an integer between 0 and 2^32-1');
        }
      }
    });
  }
}

/**
 * Validates options and parses units. Every error is a {@link ValidationError} naming the option.
 */
export function normalizeRunOptions(options: RunOptions = {}): NormalizedRunOptions {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      const hint = closest(key);
      throw new ValidationError(key, `unknown option${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
  }
  const out: NormalizedRunOptions = { ...options } as NormalizedRunOptions;
  if (options.memory !== undefined) out.memory = parseBytes(options.memory, 'memory');
  if (options.memorySwap !== undefined) {
    out.memorySwap = options.memorySwap === -1 || options.memorySwap === '-1' ? -1 : parseBytes(options.memorySwap, 'memorySwap');
  }
  // parseCpus answers in nano-CPUs (Docker's NanoCpus); the cgroup layer takes CPUs.
  if (options.cpus !== undefined) out.cpus = parseCpus(options.cpus, 'cpus') / 1e9;
  if (options.env !== undefined) {
    if (typeof options.env !== 'object' || options.env === null || Array.isArray(options.env)) {
      throw new ValidationError('env', 'must be an object of strings');
    }
    for (const [k, v] of Object.entries(options.env)) {
      if (k === '' || k.includes('=') || k.includes('\0')) throw new ValidationError(`env.${k}`, 'is not a valid variable name');
      if (v !== undefined && typeof v !== 'string') throw new ValidationError(`env.${k}`, 'must be a string');
      if (typeof v === 'string' && v.includes('\0')) throw new ValidationError(`env.${k}`, 'must not contain NUL bytes');
    }
  }
  if (options.workdir !== undefined) checkAbsolute(options.workdir, 'workdir');
  if (options.user !== undefined && typeof options.user !== 'string') throw new ValidationError('user', 'must be a string');
  if (options.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(options.hostname)) {
    throw new ValidationError('hostname', `"${options.hostname}" is not a valid hostname (RFC 1123, at most 64 characters)`);
  }
  if (options.pids !== undefined && (!Number.isInteger(options.pids) || options.pids < -1)) {
    throw new ValidationError('pids', 'must be an integer (-1 for no limit)');
  }
  if (options.cpuShares !== undefined && (!Number.isInteger(options.cpuShares) || options.cpuShares < 2 || options.cpuShares > 262144)) {
    throw new ValidationError('cpuShares', 'must be an integer between 2 and 262144');
  }
  if (options.capAdd !== undefined) checkStringArray(options.capAdd, 'capAdd');
  if (options.capDrop !== undefined) checkStringArray(options.capDrop, 'capDrop');
  if (options.mounts !== undefined) checkMounts(options.mounts);
  Object.assign(out, normalizeNetworkOptions(options));
  if (options.timeout !== undefined && (typeof options.timeout !== 'number' || !(options.timeout > 0) || !Number.isFinite(options.timeout))) {
    throw new ValidationError('timeout', 'must be a positive number of milliseconds');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new ValidationError('signal', 'must be an AbortSignal');
  }
  if (options.encoding !== undefined && options.encoding !== 'utf8' && options.encoding !== 'buffer') {
    throw new ValidationError('encoding', 'must be "utf8" or "buffer"');
  }
  if (options.maxBuffer !== undefined) checkMaxBuffer(options.maxBuffer);
  if (
    options.seccomp !== undefined &&
    options.seccomp !== 'default' &&
    options.seccomp !== 'unconfined' &&
    (typeof options.seccomp !== 'object' || options.seccomp === null)
  ) {
    throw new ValidationError('seccomp', 'must be "default", "unconfined" or a profile object');
  }
  if (
    options.stdin !== undefined &&
    typeof options.stdin !== 'string' &&
    !Buffer.isBuffer(options.stdin) &&
    typeof (options.stdin as Readable).pipe !== 'function'
  ) {
    throw new ValidationError('stdin', 'must be a string, a Buffer or a Readable stream');
  }
  if (options.userns !== undefined) checkIdMaps(options.userns);
  if (options.limits !== undefined && !LIMITS_MODES.includes(options.limits)) {
    throw new ValidationError('limits', `must be "strict" or "best-effort", got ${JSON.stringify(options.limits)}`);
  }
  return out;
}
