/**
 * The packet-filter rules of a rootless runtime's network namespace (berth-helper
 * rootless-net), rendered from its networks: pure, unit-tested. nftables, because the legacy
 * iptables tools need `/run/xtables.lock`, which a user may not open, while nf_tables rules in
 * a network namespace owned by the user's own user namespace need nothing more.
 *
 * Every bridge lives in the one namespace, whose `ip_forward` is on (outbound through the
 * user-mode stack needs it), so without rules a container on one network could route to any
 * other network's subnet. Hence a `forward` chain with policy drop: a network's own traffic
 * (bridged packets pass it when `br_netfilter` is loaded), replies, and, for networks with a
 * way out, traffic to a link that is not one of berth's bridges: the stack's interface.
 * Internal networks get no accept rule towards it (and their containers no default route).
 * @module
 */
import { BRIDGE_PREFIX } from './firewall-rules.js';

/** The nftables table berth owns in the rootless namespace. */
export const ROOTLESS_TABLE = 'berth_rootless';

/** What the rules depend on. */
export interface RootlessRuleNetwork {
  bridge: string;
  subnet: string;
  internal: boolean;
}

function quoted(name: string): string {
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name)) throw new Error(`not an interface name: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

function subnet(text: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(text)) throw new Error(`not an IPv4 subnet: ${JSON.stringify(text)}`);
  return text;
}

/** Who may reach the host's loopback through the stack's gateway (`hostLoopback: true`). */
export interface RootlessHostLoopback {
  /** The address the stack maps to the host's loopback (pasta: the host's default gateway). */
  address: string;
  /** Containers that asked for it: their address, the bridge they come from, their veth's host end. */
  allowed: ReadonlyArray<{ bridge: string; ip: string; port: string }>;
}

function address(text: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  return text;
}

/**
 * The whole table, replaced atomically by one `nft -f` (the `delete` of an `add`ed table
 * makes the file idempotent). The stack maps its gateway address to the host's loopback for
 * the whole namespace; only the containers in `loopback.allowed` may send there.
 */
export function renderRootlessRules(networks: readonly RootlessRuleNetwork[], loopback?: RootlessHostLoopback): string {
  const forward: string[] = ['ct state established,related accept'];
  const nat: string[] = [];
  for (const n of networks) {
    const br = quoted(n.bridge);
    forward.push(`iifname ${br} oifname ${br} accept`);
  }
  if (loopback) {
    const internal = new Set(networks.filter((n) => n.internal).map((n) => n.bridge));
    for (const a of loopback.allowed) {
      if (!internal.has(a.bridge) && networks.some((n) => n.bridge === a.bridge)) forward.push(`iifname ${quoted(a.bridge)} ip saddr ${address(a.ip)} ip daddr ${address(loopback.address)} accept`);
    }
    forward.push(`ip daddr ${address(loopback.address)} drop`);
  }
  for (const n of networks) {
    if (n.internal) continue;
    const br = quoted(n.bridge);
    forward.push(`iifname ${br} oifname != "${BRIDGE_PREFIX}*" accept`);
    nat.push(`ip saddr ${subnet(n.subnet)} oifname != ${br} masquerade`);
  }
  // A grant is by source address: on the bridge, only the granted container's own port may
  // send with that address (IPv4 or ARP), or a neighbour with NET_RAW could borrow it.
  const ports = (loopback?.allowed ?? []).flatMap((a) => [
    `ether type ip ip saddr ${address(a.ip)} iifname != ${quoted(a.port)} drop`,
    `ether type arp arp saddr ip ${address(a.ip)} iifname != ${quoted(a.port)} drop`,
  ]);
  return [
    `table bridge ${ROOTLESS_TABLE}`,
    `delete table bridge ${ROOTLESS_TABLE}`,
    `table bridge ${ROOTLESS_TABLE} {`,
    '  chain prerouting {',
    '    type filter hook prerouting priority 0; policy accept;',
    ...ports.map((r) => `    ${r}`),
    '  }',
    '}',
    `table ip ${ROOTLESS_TABLE}`,
    `delete table ip ${ROOTLESS_TABLE}`,
    `table ip ${ROOTLESS_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy drop;',
    ...forward.map((r) => `    ${r}`),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    ...nat.map((r) => `    ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The rules' inputs from the networks of a state (a network's rules do not depend on its members). */
export function rulesOf(state: { networks: readonly RootlessRuleNetwork[] }): RootlessRuleNetwork[] {
  return state.networks.map((n) => ({ bridge: n.bridge, subnet: n.subnet, internal: n.internal }));
}
