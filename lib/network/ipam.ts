/**
 * IP address management for bridge networks, as pure functions over the stored state: choose
 * a subnet that collides with nothing, validate a user's subnet/gateway/ipRange, hand out
 * addresses. Persistence and locking live in `network-store.ts`.
 *
 * Addresses are handed out in order after the last one given (wrapping around), as Docker's
 * allocator does, so that an address released a moment ago is not reused at once: the
 * previous holder's interface disappears with its network namespace, asynchronously.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConflictError, ValidationError } from '../errors.js';
import { contains, formatIpv4, formatSubnet, hostRange, lastOf, overlaps, parseAddress, parseSubnet, within, type Subnet } from './cidr.js';

/** A network's address plan. */
export interface Pool {
  subnet: Subnet;
  gateway: number;
  /** Containers get addresses from here (default: the whole subnet). */
  ipRange?: Subnet;
}

/** A route of the host's main table, as /proc/net/route lists it. */
export interface HostRoute {
  iface: string;
  subnet: Subnet;
}

/**
 * Docker's default address pools, in its order: 172.17-31.0.0/16, then 192.168.0.0/16 in
 * /20 slices.
 */
export function defaultCandidates(): Subnet[] {
  const out: Subnet[] = [];
  for (let b = 17; b <= 31; b++) out.push({ base: ((172 << 24) | (b << 16)) >>> 0, prefix: 16 });
  for (let c = 0; c < 256; c += 16) out.push({ base: ((192 << 24) | (168 << 16) | (c << 8)) >>> 0, prefix: 20 });
  return out;
}

/** Parses /proc/net/route (little-endian hex); the default route is left out. */
export function parseRouteTable(text: string): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = Number.parseInt(f[1]!, 16);
    const mask = Number.parseInt(f[7]!, 16);
    if (!Number.isFinite(dest) || !Number.isFinite(mask) || mask === 0) continue;
    const swap = (n: number) => (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
    const maskBE = swap(mask);
    let prefix = 0;
    while (prefix < 32 && maskBE & (0x80000000 >>> prefix)) prefix++;
    out.push({ iface: f[0]!, subnet: { base: (swap(dest) & maskBE) >>> 0, prefix } });
  }
  return out;
}

/**
 * The lock every runtime (every root) holds while it chooses a subnet and brings up the bridge
 * that routes it: host routes are the one view of other roots' subnets, so choosing and
 * routing must not interleave. In /run/lock (host-wide, gone at reboot with the bridges);
 * the system's temporary directory where there is none.
 */
export function hostSubnetLockPath(): string {
  return join(existsSync('/run/lock') ? '/run/lock' : tmpdir(), 'berth-subnets.lock');
}

/** The host's IPv4 routes, default route excluded. */
export function hostRoutes(): HostRoute[] {
  try {
    return parseRouteTable(readFileSync('/proc/net/route', 'utf8'));
  } catch {
    return [];
  }
}

export interface PoolRequest {
  subnet?: string;
  gateway?: string;
  ipRange?: string;
}

export interface PoolContext {
  /** Subnets of the other networks of this runtime, by network name. */
  taken: Array<{ name: string; subnet: Subnet }>;
  /** The host's routes; routes through `ownBridges` are left out (they are in `taken`). */
  routes: HostRoute[];
  ownBridges?: ReadonlySet<string>;
  /** Where to look when no subnet is given. Default {@link defaultCandidates}. */
  candidates?: Subnet[];
}

/**
 * Validates or chooses a network's subnet, gateway and range.
 * @throws ValidationError for malformed input or a gateway/range outside the subnet;
 *   ConflictError when the subnet overlaps another network or a host route, or when no
 *   candidate is free.
 */
export function planPool(req: PoolRequest, ctx: PoolContext): Pool {
  const routes = ctx.routes.filter((r) => !ctx.ownBridges?.has(r.iface));
  let subnet: Subnet;
  if (req.subnet !== undefined) {
    subnet = parseSubnet(req.subnet, 'subnet');
    if (subnet.prefix > 30) throw new ValidationError('subnet', `"${req.subnet}" is too small: a bridge network needs at least a /30 (gateway + one container)`);
    const clash = ctx.taken.find((t) => overlaps(t.subnet, subnet));
    if (clash) throw new ConflictError(`subnet ${req.subnet} overlaps network "${clash.name}" (${formatSubnet(clash.subnet)})`);
    const route = routes.find((r) => overlaps(r.subnet, subnet));
    if (route) throw new ConflictError(`subnet ${req.subnet} overlaps the host's route ${formatSubnet(route.subnet)} on ${route.iface}`);
  } else {
    if (req.gateway !== undefined || req.ipRange !== undefined) {
      throw new ValidationError(req.gateway !== undefined ? 'gateway' : 'ipRange', 'needs "subnet" as well');
    }
    const free = (ctx.candidates ?? defaultCandidates()).find(
      (c) => !ctx.taken.some((t) => overlaps(t.subnet, c)) && !routes.some((r) => overlaps(r.subnet, c)),
    );
    if (!free) throw new ConflictError('no free subnet left in the default address pools (172.17-31.0.0/16, 192.168.0.0/16): pass "subnet"');
    subnet = free;
  }
  const range = hostRange(subnet);
  let gateway = range.first;
  if (req.gateway !== undefined) {
    gateway = parseAddress(req.gateway, 'gateway');
    if (!contains(subnet, gateway)) throw new ValidationError('gateway', `${req.gateway} is outside the subnet ${formatSubnet(subnet)}`);
    if (gateway < range.first || gateway > range.last) {
      throw new ValidationError('gateway', `${req.gateway} is the network or broadcast address of ${formatSubnet(subnet)}`);
    }
  }
  const pool: Pool = { subnet, gateway };
  if (req.ipRange !== undefined) {
    const ipRange = parseSubnet(req.ipRange, 'ipRange');
    if (!within(ipRange, subnet)) throw new ValidationError('ipRange', `${req.ipRange} is not inside the subnet ${formatSubnet(subnet)}`);
    pool.ipRange = ipRange;
  }
  return pool;
}

/**
 * An address for a container.
 * @param used addresses held by other endpoints of the network.
 * @param cursor the last address handed out (allocation continues after it).
 * @param requested a static address the caller asked for (`ip`), checked instead.
 * @throws ValidationError for a requested address outside the subnet or reserved;
 *   ConflictError when it is taken or the pool is exhausted.
 */
export function allocateAddress(pool: Pool, used: ReadonlySet<number>, cursor?: number, requested?: string, option = 'ip'): number {
  const { first, last } = hostRange(pool.subnet);
  if (requested !== undefined) {
    const ip = parseAddress(requested, option);
    if (!contains(pool.subnet, ip)) throw new ValidationError(option, `${requested} is outside the network's subnet ${formatSubnet(pool.subnet)}`);
    if (ip < first || ip > last) throw new ValidationError(option, `${requested} is the network or broadcast address`);
    if (ip === pool.gateway) throw new ValidationError(option, `${requested} is the network's gateway`);
    if (used.has(ip)) throw new ConflictError(`address ${requested} is already in use on this network`);
    return ip;
  }
  const lo = pool.ipRange ? Math.max(first, pool.ipRange.base) : first;
  const hi = pool.ipRange ? Math.min(last, lastOf(pool.ipRange)) : last;
  const count = hi - lo + 1;
  const start = cursor !== undefined && cursor >= lo && cursor < hi ? cursor + 1 : lo;
  for (let i = 0; i < count; i++) {
    const ip = lo + ((start - lo + i) % count);
    if (ip !== pool.gateway && !used.has(ip)) return ip;
  }
  throw new ConflictError(`no free address left in ${formatSubnet(pool.ipRange ?? pool.subnet)}`);
}

/** Docker's MAC for an address: 02:42 followed by the four octets. */
export function macFor(ip: number): string {
  return ['02', '42', ...formatIpv4(ip).split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}
