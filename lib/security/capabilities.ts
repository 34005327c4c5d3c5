/**
 * Linux capabilities: the name/bit table, Docker's default set, and Docker's `CapAdd`/`CapDrop`
 * rules turned into the one 64-bit mask the native core applies to every capability set.
 * @module
 */

import { readFileSync } from 'node:fs';
import { ValidationError } from '../errors.js';

/**
 * Every capability name Linux defines, indexed by its bit number (`include/uapi/linux/capability.h`).
 * The running kernel may know fewer; see {@link kernelLastCap}.
 */
export const CAPABILITY_NAMES: readonly string[] = Object.freeze([
  'CAP_CHOWN', // 0
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL', // 5
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE', // 10
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', // 15
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', // 20
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', // 25
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL', // 30
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM', // 35
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE', // 40
]);

/** The highest capability bit berth knows a name for (`CAP_CHECKPOINT_RESTORE`). */
export const LAST_KNOWN_CAP = CAPABILITY_NAMES.length - 1;

const BIT_BY_NAME: ReadonlyMap<string, number> = new Map(CAPABILITY_NAMES.map((name, bit) => [name, bit]));

/** The bit number of a canonical capability name (`CAP_SYS_ADMIN` -> 21), or `undefined`. */
export function capabilityBit(name: string): number | undefined {
  return BIT_BY_NAME.get(name);
}

/**
 * The default capability set: Docker's 14 (`oci/caps/defaults.go`, in Docker's order) minus
 * `CAP_NET_RAW`, as Podman ships. NET_RAW lets a container open `AF_PACKET` and raw IP sockets
 * and forge any frame on its network: ARP replies and IPv6 router advertisements that poison
 * its neighbours and the host. Unprivileged ICMP (`ping`) keeps working through ICMP datagram
 * sockets, which berth allows with `net.ipv4.ping_group_range` in the container's own network
 * namespace; `capAdd: ['NET_RAW']` restores raw sockets. Mask `0x00000000a80405fb` (Docker's
 * is `0xa80425fb`), the `CapEff` a default container shows in `/proc/self/status`.
 */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]);

let cachedLastCap: number | undefined;

/**
 * The highest capability bit the running kernel supports, from `/proc/sys/kernel/cap_last_cap`.
 * Falls back to {@link LAST_KNOWN_CAP} when procfs is unreadable, and never reports more than
 * berth has names for, so a newer kernel's unnamed bits are never granted blindly.
 */
export function kernelLastCap(): number {
  if (cachedLastCap === undefined) {
    let value = LAST_KNOWN_CAP;
    try {
      const parsed = Number.parseInt(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim(), 10);
      if (Number.isInteger(parsed) && parsed >= 0) value = Math.min(parsed, LAST_KNOWN_CAP);
    } catch {
      // No procfs (early boot, odd chroot): assume a current kernel; capset reports the truth later.
    }
    cachedLastCap = value;
  }
  return cachedLastCap;
}

/** Options of {@link resolveCapabilities}, named as in berth's public options (Docker's `CapAdd`/`CapDrop`). */
export interface CapabilityOptions {
  /** Capabilities to add to the defaults: `'NET_ADMIN'`, `'cap_net_admin'` or `'ALL'`. */
  capAdd?: readonly string[];
  /** Capabilities to remove from the defaults, same spelling; `'ALL'` starts from nothing. */
  capDrop?: readonly string[];
  /** Every capability the kernel knows; `capAdd`/`capDrop` are then ignored, as in Docker. */
  privileged?: boolean;
  /** Highest supported bit; defaults to {@link kernelLastCap}. Injectable for tests. */
  lastCap?: number;
}

/** The resolved capability set: canonical names sorted by bit, and the same set as a mask. */
export interface ResolvedCapabilities {
  names: string[];
  mask: bigint;
}

/**
 * Applies Docker's capability rules (`TweakCapabilities` in moby) to the default set.
 *
 * - `privileged`: every capability the kernel supports; `capAdd`/`capDrop` only get validated.
 * - `capAdd` contains `ALL`: every supported capability except those named in `capDrop`.
 * - else `capDrop` contains `ALL`: exactly the `capAdd` list.
 * - else: the defaults minus `capDrop`, then plus `capAdd` — so a name in both lists is kept,
 *   exactly as `docker run --cap-add X --cap-drop X` keeps X.
 *
 * Names are case-insensitive and the `CAP_` prefix is optional.
 * @throws {ValidationError} naming `capAdd[i]`/`capDrop[i]` for an unknown or unsupported name.
 */
export function resolveCapabilities(options: CapabilityOptions = {}): ResolvedCapabilities {
  const lastCap = options.lastCap ?? kernelLastCap();
  const drops = normalizeList(options.capDrop, 'capDrop', lastCap);
  const adds = normalizeList(options.capAdd, 'capAdd', lastCap);
  const all = allBits(lastCap);

  let bits: number[];
  if (options.privileged === true) {
    bits = all;
  } else if (adds.includes('ALL')) {
    const dropped = new Set(drops.filter((n) => n !== 'ALL').map((n) => BIT_BY_NAME.get(n)!));
    bits = all.filter((bit) => !dropped.has(bit));
  } else if (drops.includes('ALL')) {
    bits = adds.map((n) => BIT_BY_NAME.get(n)!);
  } else {
    const dropped = new Set(drops.map((n) => BIT_BY_NAME.get(n)!));
    bits = DEFAULT_CAPABILITIES.map((n) => BIT_BY_NAME.get(n)!).filter((bit) => !dropped.has(bit));
    bits.push(...adds.map((n) => BIT_BY_NAME.get(n)!));
  }

  let mask = 0n;
  for (const bit of bits) mask |= 1n << BigInt(bit);
  return { names: maskToNames(mask), mask };
}

/** The canonical names of the bits set in `mask`, sorted by bit. Unnamed bits are reported as `CAP_<bit>`. */
export function maskToNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0; mask >> BigInt(bit) !== 0n; bit++) {
    if ((mask >> BigInt(bit)) & 1n) names.push(CAPABILITY_NAMES[bit] ?? `CAP_${bit}`);
  }
  return names;
}

function allBits(lastCap: number): number[] {
  return Array.from({ length: lastCap + 1 }, (_, bit) => bit);
}

/** Upper-cases, adds `CAP_`, and checks each entry; `ALL` stays `ALL`. */
function normalizeList(list: readonly string[] | undefined, option: string, lastCap: number): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new ValidationError(option, 'must be an array of capability names');
  return list.map((raw: unknown, i) => {
    const path = `${option}[${i}]`;
    if (typeof raw !== 'string') throw new ValidationError(path, `must be a capability name, got ${typeof raw}`);
    const upper = raw.toUpperCase();
    if (upper === 'ALL') return upper;
    const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
    const bit = BIT_BY_NAME.get(name);
    if (bit === undefined) {
      throw new ValidationError(path, `unknown capability ${JSON.stringify(raw)} (expected e.g. "NET_ADMIN" or "ALL")`);
    }
    if (bit > lastCap) {
      // The kernel would silently drop such a bit from capset() and fail prctl(PR_CAPBSET_DROP)
      // with a bare EINVAL; name the capability and the reason up front, as Docker does.
      throw new ValidationError(path, `capability ${name} is not supported by the running kernel (cap_last_cap is ${lastCap})`);
    }
    return name;
  });
}
