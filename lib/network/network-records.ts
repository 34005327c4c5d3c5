/**
 * Lookups over a runtime's network records that both the network service and the endpoint
 * leases make.
 * @module
 */
import { isAlive } from '../state/process-identity.js';
import { parseIpv4, parseSubnet } from './cidr.js';
import type { Pool } from './ipam.js';
import type { EndpointRecord, NetworkRecord } from './network-store.js';
import type { NetworkRef } from './types.js';

export function refName(ref: NetworkRef): string {
  return typeof ref === 'string' ? ref : ref.id;
}

export function findNetwork(networks: readonly NetworkRecord[], ref: NetworkRef): NetworkRecord | undefined {
  const key = refName(ref);
  if (key === '') return undefined;
  const exact = networks.find((n) => n.id === key) ?? networks.find((n) => n.name === key);
  if (exact) return exact;
  if (/^[0-9a-f]+$/.test(key)) {
    const byPrefix = networks.filter((n) => n.id.startsWith(key));
    if (byPrefix.length === 1) return byPrefix[0];
  }
  return undefined;
}

export function poolOf(n: NetworkRecord): Pool {
  return { subnet: parseSubnet(n.subnet, 'subnet'), gateway: parseIpv4(n.gateway)!, ...(n.ipRange ? { ipRange: parseSubnet(n.ipRange, 'ipRange') } : {}) };
}

/**
 * A lease is live while the container's PID 1 runs, or before that, while the process making
 * it does; a detached container's, while its monitor runs (it may be between two PID 1s).
 */
export function isLive(e: EndpointRecord): boolean {
  if (e.monitor && isAlive(e.monitor)) return true;
  return e.pid ? isAlive(e.pid) : isAlive(e.owner);
}

