/**
 * The programs and kernel pieces berth's networks need on this host, for `rt.info()`: the
 * packet filter (`nft` or `iptables`) bridge networks program, the kernel's bridge, and the
 * user-mode network stacks (`pasta` from Debian `passt`, `slirp4netns`) that rootless networks
 * will start. Found, not run, except the packet filter, which {@link detectFirewall} tries once.
 * @module
 */
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { findTool } from './find-tool.js';
import { detectFirewall, type FirewallBackend } from './firewall.js';
import { describeUserModeStack, type UserModeStackInfo } from './usermode-stack.js';

/** Network facts of the host. */
export interface NetworkToolsInfo {
  /** Whether `rt.networks.create()` can make bridge networks here, and why not. */
  readonly bridge: { readonly available: boolean; readonly detail: string };
  /** The packet filter berth programs: the first of nftables, iptables that works; `null` when none. */
  readonly firewall: FirewallBackend | null;
  /** Path of `nft`, or `null`. */
  readonly nft: string | null;
  /** Path of `iptables`, or `null`. */
  readonly iptables: string | null;
  /** Path of `pasta` (Debian `passt`), or `null`. */
  readonly pasta: string | null;
  /** Path of `slirp4netns`, or `null`. */
  readonly slirp4netns: string | null;
  /** The user-mode stack a rootless container's network uses (pasta, else slirp4netns), and why. */
  readonly userMode: UserModeStackInfo;
}

/** The kernel has the bridge driver loaded, built in, or as a module it can load on demand. */
function kernelHasBridge(): boolean {
  return existsSync('/sys/module/bridge') || ['bridge.ko', 'bridge.ko.xz', 'bridge.ko.zst', 'bridge.ko.gz'].some((f) => existsSync(`/lib/modules/${release()}/kernel/net/bridge/${f}`));
}

/** Probe the network tools. Never throws; `uid` is the runtime's (bridges need root today). */
export async function describeNetworkTools(uid: number): Promise<NetworkToolsInfo> {
  const firewall = (await detectFirewall().catch(() => undefined))?.backend ?? null;
  const reasons: string[] = [];
  if (uid !== 0) reasons.push('bridge networks need root');
  if (!kernelHasBridge()) reasons.push('the kernel has no bridge driver (CONFIG_BRIDGE)');
  if (firewall === null) reasons.push('neither nft nor iptables works here');
  const bridge = reasons.length === 0 ? { available: true, detail: `kernel bridge with ${firewall}` } : { available: false, detail: reasons.join('; ') };
  const pasta = findTool('pasta') ?? null;
  const slirp4netns = findTool('slirp4netns') ?? null;
  return {
    bridge,
    firewall,
    nft: findTool('nft') ?? null,
    iptables: findTool('iptables') ?? null,
    pasta,
    slirp4netns,
    userMode: describeUserModeStack({ pasta, slirp4netns }),
  };
}
