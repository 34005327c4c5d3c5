/**
 * The kernel side of a bridge network, from TypeScript: the bridge itself and the sysctls it
 * needs. Links are made through the native core's netlink functions (no `ip` binary); the
 * sysctls are procfs writes and stay here.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fromNativeError, native } from '../native.js';
import { BRIDGE_PREFIX } from './firewall-rules.js';
import type { NetworkRecord } from './network-store.js';

/** Names a runtime (its state directory) in kernel objects shared by all runtimes: 12 hex digits. */
export function rootTag(root: string): string {
  return createHash('sha256').update(root).digest('hex').slice(0, 12);
}

/** `berth-` + 9 hex digits of the network id: 15 bytes, the most an interface name can have. */
export function bridgeNameFor(networkId: string): string {
  return `${BRIDGE_PREFIX}${networkId.slice(0, 9)}`;
}

/** Host ends of veth pairs: `bv-` + 12 random hex digits (a container restarted at once must not meet its old, still dying veth). */
export const VETH_PREFIX = 'bv-';
export function newVethName(): string {
  return `${VETH_PREFIX}${randomBytes(6).toString('hex')}`;
}

/** A random, locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** IFLA_IFALIAS tags: reconciliation tells this runtime's links from other runtimes'. */
export function bridgeAlias(tag: string, networkId: string): string {
  return `berth:${tag}:${networkId}`;
}
export function vethAlias(tag: string, networkId: string, endpointId: string): string {
  return `berth:${tag}:${networkId}:${endpointId}`;
}

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

function writeSysctl(path: string, value: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === value) return;
  } catch {
    // absent (a kernel without the knob): the write below says so
  }
  writeFileSync(path, value);
}

/**
 * Creates the bridge if missing (idempotent) with its gateway address, MTU and MAC, and the
 * sysctls: `route_localnet` on the bridge (DNAT of `127.0.0.1:<port>` to a container routes a
 * loopback-sourced packet out of it), and for networks with a way out, `ip_forward` — a
 * host-wide switch that Docker turns on as well and that berth never turns off again.
 */
export async function ensureBridge(rec: NetworkRecord, tag: string): Promise<void> {
  const prefix = rec.subnet.split('/')[1];
  try {
    await native().netEnsureBridge({
      name: rec.bridge,
      addresses: [`${rec.gateway}/${prefix}`],
      mac: rec.bridgeMac,
      alias: bridgeAlias(tag, rec.id),
      ...(rec.mtu ? { mtu: rec.mtu } : {}),
    });
  } catch (error) {
    throw fromNativeError(error);
  }
  writeSysctl(`/proc/sys/net/ipv4/conf/${rec.bridge}/route_localnet`, '1');
  if (!rec.internal) writeSysctl('/proc/sys/net/ipv4/ip_forward', '1');
}

/** Deletes a link; false when it was already gone. */
export async function deleteLink(name: string): Promise<boolean> {
  try {
    return await native().netDeleteLink(name);
  } catch (error) {
    throw fromNativeError(error);
  }
}
