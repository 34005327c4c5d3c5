/**
 * A new network's record: its subnet, gateway and range chosen by IPAM against the networks it
 * must not overlap and the host's routes, its id, bridge name and MAC. Shared by the rootful
 * create (which then takes the host-wide subnet lock and the firewall) and the rootless one.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { bridgeNameFor, randomMac } from './bridge-driver.js';
import { formatIpv4, parseSubnet } from './cidr.js';
import { hostRoutes, planPool } from './ipam.js';
import type { NetworkRecord, NetworkState } from './network-store.js';
import type { NetworkCreateOptions } from './types.js';

/** The record of a network `o` would create beside `state.networks`; nothing is written. */
export function planNetworkRecord(state: NetworkState, o: NetworkCreateOptions, isDefault: boolean): NetworkRecord {
  const pool = planPool(
    { ...(o.subnet !== undefined ? { subnet: o.subnet } : {}), ...(o.gateway !== undefined ? { gateway: o.gateway } : {}), ...(o.ipRange !== undefined ? { ipRange: o.ipRange } : {}) },
    {
      taken: state.networks.map((n) => ({ name: n.name, subnet: parseSubnet(n.subnet, 'subnet') })),
      routes: hostRoutes(),
      ownBridges: new Set(state.networks.map((n) => n.bridge)),
    },
  );
  const id = randomBytes(32).toString('hex');
  return {
    version: 1,
    id,
    name: o.name,
    driver: 'bridge',
    created: new Date().toISOString(),
    subnet: `${formatIpv4(pool.subnet.base)}/${pool.subnet.prefix}`,
    gateway: formatIpv4(pool.gateway),
    ...(pool.ipRange ? { ipRange: `${formatIpv4(pool.ipRange.base)}/${pool.ipRange.prefix}` } : {}),
    internal: o.internal === true,
    ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
    labels: { ...(o.labels ?? {}) },
    bridge: bridgeNameFor(id),
    bridgeMac: randomMac(),
    isDefault,
    members: {},
  };
}
