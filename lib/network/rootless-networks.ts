/**
 * `rt.networks.create()` and `remove()` without root: the record as rootful (IPAM over the
 * user's state dir), the kernel side in this process's rootless network namespace
 * (rootless-netns.ts). A bridge is made there on a network's first use by a container, not at
 * create: the namespace belongs to one process, the record to every process of the user.
 * @module
 */
import { planNetworkRecord } from './network-record-plan.js';
import type { NetworkRecord, NetworkState, NetworkStore } from './network-store.js';
import { rulesOf } from './rootless-net-rules.js';
import { currentRootlessNetns } from './rootless-netns.js';
import type { NetworkCreateOptions } from './types.js';

/**
 * A new network's record, stored (networks lock held). No host-wide subnet lock: the subnet is
 * routed only inside the rootless namespace; the host's routes are still avoided, since the
 * stack gives that namespace the host's own address and routes.
 */
export async function createRootlessRecord(store: NetworkStore, state: NetworkState, o: NetworkCreateOptions, isDefault: boolean): Promise<NetworkRecord> {
  const rec = planNetworkRecord(state, o, isDefault);
  await store.writeNetwork(rec);
  state.networks.push(rec);
  return rec;
}

/** A removed network's bridge and rules go from this process's namespace, if it has one. */
export async function removeRootlessBridge(state: NetworkState, rec: NetworkRecord): Promise<void> {
  const ns = await currentRootlessNetns();
  if (!ns) return;
  await ns.applyRules(rulesOf(state));
  await ns.deleteLink(rec.bridge);
}

/** Deletes veths of this process's namespace (a running container disconnected); none: nothing. */
export async function removeRootlessLinks(names: readonly string[]): Promise<void> {
  const ns = await currentRootlessNetns();
  for (const name of names) await ns?.deleteLink(name).catch(() => false);
}
