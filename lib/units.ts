/**
 * Parsers for the unit-bearing options users write by hand: byte sizes (`memory: '64m'`), CPU
 * counts (`cpus: 1.5`), CPU lists (`cpusetCpus: '0-2,4'`), Go durations (`'1m30s'`) and points in
 * time (`since: '10m'`). Each follows the Docker CLI's rule
 * for the same option, so a value that works with `docker run` works here, and each failure is a
 * {@link ValidationError} naming the option and quoting the value.
 * @module
 */

import { ValidationError } from './errors.js';

const BINARY_MULTIPLIERS: Readonly<Record<string, number>> = {
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

// Docker's RAMInBytes (go-units parseSize): a decimal number, at most one space, then an optional
// unit letter with an optional `b` or `ib`, or a lone `b`. Every unit is 1024-based there, even `mb`.
const SIZE_PATTERN = /^(\d+(?:\.\d*)?|\.\d+)(?: ?([kmgtp](?:i?b)?|b))?$/i;

/**
 * Parses a byte size the way `docker run --memory` does: `'64m'`, `'1g'`, `'512k'`, `'100b'`,
 * `'1.5g'`, `'64mb'`, `'2GiB'`, `'10 m'`; units are case-insensitive and 1024-based; a fraction is
 * truncated to whole bytes. A number passes through when it is a non-negative safe integer.
 * @param option the option path to name in the error, e.g. `memory` or `mounts[2].tmpfsSize`.
 * @throws {ValidationError} for anything else, or a size beyond `Number.MAX_SAFE_INTEGER`.
 */
export function parseBytes(value: number | string, option: string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new ValidationError(option, `invalid size ${String(value)}: a number must be a non-negative whole count of bytes`);
  }
  if (typeof value !== 'string') {
    throw new ValidationError(option, `invalid size: expected a number of bytes or a string such as "64m", got ${typeof value}`);
  }
  const match = SIZE_PATTERN.exec(value);
  if (match === null) {
    throw new ValidationError(option, `invalid size ${JSON.stringify(value)}: expected bytes or a number with a unit k, m, g, t or p, e.g. "64m", "1.5g", "512k"`);
  }
  const unit = match[2]?.[0]?.toLowerCase();
  const multiplier = unit === undefined || unit === 'b' ? 1 : BINARY_MULTIPLIERS[unit]!;
  const bytes = Math.trunc(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes)) {
    throw new ValidationError(option, `invalid size ${JSON.stringify(value)}: larger than ${Number.MAX_SAFE_INTEGER} bytes`);
  }
  return bytes;
}

const NANO_PER_CPU = 1_000_000_000n;

// The Linux daemon's floor: below 0.01 CPU the CFS quota at the default 100 ms period would be
// under the kernel's 1 ms minimum (cpu.max / cfs_quota_us reject it with EINVAL).
const MIN_NANO_CPUS = 10_000_000n;

/**
 * Parses the `cpus` option (Docker's `--cpus`) into nano-CPUs, Docker's `HostConfig.NanoCpus`:
 * `1.5` -> `1_500_000_000`. Accepts a number or a decimal string (`'0.5'`, `'.25'`, `'2'`, `'5e-1'`).
 * Like the Docker CLI it rejects values more precise than a nano-CPU, and like the Docker daemon
 * it rejects less than 0.01 and, when `hostCpus` is given, more than the host has.
 * @param option the option path to name in the error, e.g. `cpus`.
 * @param hostCpus the number of CPUs available to containers, to reject an impossible limit early.
 * @returns nano-CPUs: 1e9 per CPU. The CFS quota for period P µs is `nanoCpus * P / 1e9`.
 * @throws {ValidationError} naming the option and quoting the value.
 */
export function parseCpus(value: number | string, option: string, hostCpus?: number): number {
  const nano = decimalToNano(value);
  const quoted = typeof value === 'string' ? JSON.stringify(value) : String(value);
  if (nano === 'invalid') {
    throw new ValidationError(option, `invalid CPU count ${quoted}: expected a positive decimal number such as 1.5 or "0.25"`);
  }
  if (nano === 'too-precise') {
    throw new ValidationError(option, `invalid CPU count ${quoted}: more precise than a billionth of a CPU`);
  }
  if (nano < MIN_NANO_CPUS) {
    throw new ValidationError(option, `invalid CPU count ${quoted}: the minimum is 0.01`);
  }
  if (hostCpus !== undefined && nano > BigInt(hostCpus) * NANO_PER_CPU) {
    throw new ValidationError(option, `invalid CPU count ${quoted}: range of CPUs is from 0.01 to ${hostCpus}.00, as there are only ${hostCpus} CPUs available`);
  }
  if (nano > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ValidationError(option, `invalid CPU count ${quoted}: too large`);
  }
  return Number(nano);
}

/**
 * Exact decimal -> nano conversion, so `0.3` is 300_000_000 and not a float rounding away from it.
 * Numbers go through `String()`, which gives the shortest decimal that round-trips.
 */
function decimalToNano(value: unknown): bigint | 'invalid' | 'too-precise' {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'invalid';
    text = String(value);
  } else if (typeof value === 'string') {
    text = value;
  } else {
    return 'invalid';
  }
  const match = /^(\d*)(?:\.(\d*))?(?:e([+-]?\d{1,3}))?$/i.exec(text);
  if (match === null) return 'invalid';
  const [, whole = '', fraction = '', exponentText] = match;
  if (whole === '' && fraction === '') return 'invalid';
  const digits = BigInt(whole + fraction || '0');
  const shift = 9 + Number(exponentText ?? 0) - fraction.length;
  if (shift >= 0) return digits * 10n ** BigInt(shift);
  const divisor = 10n ** BigInt(-shift);
  return digits % divisor === 0n ? digits / divisor : 'too-precise';
}

/** A validated CPU (or memory node) list. */
export interface Cpuset {
  /** Canonical kernel list syntax: sorted, de-duplicated, runs collapsed (`'0-2,4'`). */
  normalized: string;
  /** The ids it selects, ascending. */
  cpus: number[];
}

// CONFIG_NR_CPUS tops out at 8192 (x86 MAXSMP); the bound also keeps '0-4000000000' from
// expanding into a four-billion-entry array.
const MAX_CPU_ID = 8191;

/**
 * Validates a cpuset list (`cpusetCpus`, `cpusetMems`) with the Docker CLI's syntax: comma-separated
 * ids and inclusive `a-b` ranges, e.g. `'0-2,4'`. Returns the canonical form the kernel prints back
 * from `cpuset.cpus`, so a later comparison with the file's content is a string compare.
 * @param option the option path to name in the error, e.g. `cpusetCpus`.
 * @throws {ValidationError} for an empty list, a malformed entry, a reversed range or an id above 8191.
 */
export function parseCpuset(value: string, option: string): Cpuset {
  if (typeof value !== 'string') {
    throw new ValidationError(option, `invalid CPU list: expected a string such as "0-2,4", got ${typeof value}`);
  }
  const quoted = JSON.stringify(value);
  if (value === '') throw new ValidationError(option, 'invalid CPU list "": expected ids or ranges such as "0-2,4"');
  const selected = new Set<number>();
  for (const entry of value.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(entry);
    if (match === null) {
      throw new ValidationError(option, `invalid CPU list ${quoted}: ${JSON.stringify(entry)} is not an id or a range such as "0-3"`);
    }
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last > MAX_CPU_ID) {
      throw new ValidationError(option, `invalid CPU list ${quoted}: ${last} is above the largest CPU id Linux supports (${MAX_CPU_ID})`);
    }
    if (last < first) {
      throw new ValidationError(option, `invalid CPU list ${quoted}: range ${JSON.stringify(entry)} ends before it starts`);
    }
    for (let cpu = first; cpu <= last; cpu++) selected.add(cpu);
  }
  const cpus = [...selected].sort((a, b) => a - b);
  return { normalized: formatCpuList(cpus), cpus };
}

function formatCpuList(sorted: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

const NS_PER_UNIT: Readonly<Record<string, number>> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;

/**
 * Go's `time.ParseDuration` for the non-negative durations Docker's options and filters take
 * (`'1h2m3.5s'`, `'500ms'`, `'0'`): the one parser behind healthcheck flags, `stopTimeout`,
 * `since`/`until` and image filters, so they agree on what a duration is.
 * @returns nanoseconds, or undefined when `text` is not a duration.
 */
export function parseGoDurationNs(text: string): number | undefined {
  if (text === '0') return 0;
  if (!GO_DURATION.test(text)) return undefined;
  let ns = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ns += Number(m[1]) * NS_PER_UNIT[m[2]!]!;
  return ns;
}

/** {@link parseGoDurationNs} in milliseconds (Node's unit for timeouts). */
export function parseGoDuration(text: string): number | undefined {
  const ns = parseGoDurationNs(text);
  return ns === undefined ? undefined : ns / 1e6;
}

// RFC 3339 and its date-only and space-separated forms, as Docker's GetTimestamp accepts them.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * A point in time the way Docker's `--since`/`--until` and `until` filters take it: a Date,
 * Unix seconds (`1700000000`, `'1700000000.5'`), an RFC 3339 time or a date (`2024-01-31`, UTC
 * midnight), or a Go duration back from `now` (`'10m'`, `'1h30m'`). Container logs and the image
 * filters both parse through here, so they accept the same values.
 * @returns milliseconds since the epoch
 */
export function parseTimePoint(value: unknown, option: string, now = Date.now()): number {
  if (value instanceof Date) {
    if (Number.isFinite(value.getTime())) return value.getTime();
  } else if (typeof value === 'number') {
    if (Number.isFinite(value)) return value * 1000;
  } else if (typeof value === 'string') {
    const v = value.trim();
    if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
    const ago = parseGoDuration(v);
    if (ago !== undefined) return now - ago;
    if (TIMESTAMP.test(v)) {
      const t = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v.replace(' ', 'T'));
      if (!Number.isNaN(t)) return t;
    }
  }
  throw new ValidationError(option, `must be a Date, Unix seconds, an RFC 3339 time or date, or a duration before now such as "10m", got ${JSON.stringify(value)}`);
}
