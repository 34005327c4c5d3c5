/**
 * Reconciliation of one runtime's networks with the kernel, once per process (the network
 * service's `ready()`): leases of containers that died with a crashed owner go, the
 * packet-filter rules come back (a reboot drops them), and this runtime's bridges and veths
 * that no state accounts for are deleted.
 * @module
 */
import { isAlive, identityOf } from '../state/process-identity.js';
import type { NativeBinding, NativeLinkInfo } from '../native.js';
import { deleteLink, VETH_PREFIX } from './bridge-driver.js';
import { BRIDGE_PREFIX } from './firewall-rules.js';
import { detectFirewall } from './firewall.js';
import type { EndpointLeases } from './endpoint-leases.js';
import { pruneNameFiles } from './dns-names.js';
import { isLive } from './network-records.js';
import type { NetworkStore } from './network-store.js';

/** What reconciliation found and fixed. */
export interface NetworkReconcileReport {
  /** Leases of containers whose processes are gone. */
  staleEndpoints: number;
  /** Bridges and veths of this runtime that no state accounts for, deleted. */
  removedLinks: string[];
}

/** Drops stale leases, re-applies the rules, deletes this runtime's links nothing accounts for. */
export async function reconcileNetworks(store: NetworkStore, tag: string, binding: NativeBinding, leases: EndpointLeases): Promise<NetworkReconcileReport> {
  await store.removeStaleTemps((pid) => isAlive(identityOf(pid)));
  return store.locked(async (state) => {
    const before = state.endpoints.endpoints.length;
    state.endpoints.endpoints = state.endpoints.endpoints.filter(isLive);
    const stale = before - state.endpoints.endpoints.length;
    if (stale > 0) await store.writeEndpoints(state.endpoints);
    // Names of the dead go too: their network's resolver forgets them, and exits if none is left.
    pruneNameFiles(store, state.networks, state.endpoints.endpoints);
    if (state.networks.length > 0) await (await detectFirewall())?.apply(leases.firewallModel(state));
    const removedLinks: string[] = [];
    let links: NativeLinkInfo[] = [];
    try {
      links = await binding.netListLinks();
    } catch {
      // No netlink (not root): nothing of ours can exist either.
    }
    const mark = `berth:${tag}:`;
    const bridges = new Set(state.networks.map((n) => n.bridge));
    const veths = new Set(state.endpoints.endpoints.map((e) => e.hostIfname));
    for (const l of links) {
      if (!l.alias.startsWith(mark)) continue;
      const orphanBridge = l.kind === 'bridge' && l.name.startsWith(BRIDGE_PREFIX) && !bridges.has(l.name);
      const orphanVeth = l.kind === 'veth' && l.name.startsWith(VETH_PREFIX) && !veths.has(l.name);
      if ((orphanBridge || orphanVeth) && (await deleteLink(l.name).catch(() => false))) removedLinks.push(l.name);
    }
    return { staleEndpoints: stale, removedLinks };
  });
}
