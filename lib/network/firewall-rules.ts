/**
 * The packet-filter rules of one runtime's networks, rendered from its state as a whole:
 * every change re-renders and replaces the lot in one transaction, so the kernel's rules are a
 * pure function of `networks/` and a crash can leave nothing half-applied that the next
 * change would not overwrite.
 *
 * Each runtime (state directory) owns one nftables table (`ip berth_<tag>`), or with iptables
 * four chains `BERTH-<tag>-*` (raw, nat ×2, filter) jumped to from the built-in chains.
 * @module
 */

/** Every berth bridge starts with this (other runtimes' too: isolation covers them). */
export const BRIDGE_PREFIX = 'berth-';

export interface FirewallNetwork {
  bridge: string;
  /** CIDR. */
  subnet: string;
  internal: boolean;
}

export interface FirewallPort {
  protocol: 'tcp' | 'udp';
  /** `0.0.0.0`: every local address. */
  hostIp: string;
  host: number;
  containerIp: string;
  container: number;
}

export interface FirewallModel {
  /** Identifies the runtime: 12 hex digits of its state directory's hash. */
  tag: string;
  networks: FirewallNetwork[];
  ports: FirewallPort[];
}

export function nftTableName(tag: string): string {
  return `berth_${tag}`;
}

const q = (name: string) => `"${name}"`;

/**
 * An `nft -f` script that replaces the runtime's table atomically (declare, delete, re-create
 * in one transaction). With no networks left the table is only deleted.
 *
 * - DNAT: `fib daddr type local` matches traffic to any of the host's addresses, in prerouting
 *   (from outside and from containers: hairpin) and in output (from the host itself,
 *   `127.0.0.1:<port>` included; the bridges have `route_localnet` for that).
 * - Masquerade: outbound traffic of non-internal networks; loopback-sourced traffic after
 *   DNAT (the container could not answer 127.0.0.1); hairpin traffic (so the reply comes back
 *   through the host and is un-DNATed).
 * - Forward: traffic within a network, replies and published ports pass; then traffic
 *   between berth bridges, into internal networks or out of them, and unsolicited traffic
 *   into any network is dropped. The policy stays `accept`: the host's other forwarding is
 *   not berth's business.
 */
export function renderNft(m: FirewallModel): string {
  const table = nftTableName(m.tag);
  const head = `table ip ${table} {}\ndelete table ip ${table}\n`;
  if (m.networks.length === 0) return head;
  const published = m.ports.map((p) => {
    const dst = p.hostIp === '0.0.0.0' ? '' : `ip daddr ${p.hostIp} `;
    return `\t\t${dst}meta l4proto ${p.protocol} th dport ${p.host} dnat to ${p.containerIp}:${p.container}`;
  });
  const post: string[] = [];
  const fwd: string[] = ['\t\tct state established,related accept'];
  for (const n of m.networks) fwd.push(`\t\tiifname ${q(n.bridge)} oifname ${q(n.bridge)} accept`);
  for (const n of m.networks) {
    if (n.internal) continue;
    fwd.push(`\t\toifname ${q(n.bridge)} ct status dnat accept`);
    post.push(
      `\t\toifname ${q(n.bridge)} ip saddr 127.0.0.0/8 masquerade`,
      // Hairpin: the input interface is unknown in postrouting, so "from the subnet, DNATed
      // back into it". A container reaching its own published port needs it (its reply would
      // otherwise stay inside it, never un-DNATed); for its peers it is harmless.
      `\t\tip saddr ${n.subnet} ip daddr ${n.subnet} oifname ${q(n.bridge)} ct status dnat masquerade`,
      `\t\tip saddr ${n.subnet} oifname != ${q(n.bridge)} masquerade`,
    );
  }
  for (const n of m.networks) fwd.push(`\t\tiifname ${q(n.bridge)} oifname ${q(`${BRIDGE_PREFIX}*`)} drop`);
  for (const n of m.networks) {
    if (n.internal) fwd.push(`\t\tiifname ${q(n.bridge)} drop`);
    fwd.push(`\t\toifname ${q(n.bridge)} drop`);
  }
  // route_localnet (needed for 127.0.0.1:<port>) would also let a container send packets *to*
  // 127.0.0.0/8 through its bridge and reach the host's loopback-only services (the
  // CVE-2020-8558 class). Drop them before conntrack: legitimate replies to loopback clients
  // arrive addressed to the gateway and are rewritten later.
  const raw = m.networks.map((n) => `\t\tiifname ${q(n.bridge)} ip daddr 127.0.0.0/8 drop`);
  const chain = (name: string, hook: string | null, rules: string[]) =>
    `\tchain ${name} {\n${hook ? `\t\t${hook}\n` : ''}${rules.map((r) => `${r}\n`).join('')}\t}\n`;
  return (
    head +
    `table ip ${table} {\n` +
    chain('pre_raw', 'type filter hook prerouting priority raw; policy accept;', raw) +
    chain('published', null, published) +
    chain('pre_nat', 'type nat hook prerouting priority dstnat; policy accept;', ['\t\tfib daddr type local jump published']) +
    chain('out_nat', 'type nat hook output priority -100; policy accept;', ['\t\tfib daddr type local jump published']) +
    chain('post_nat', 'type nat hook postrouting priority srcnat; policy accept;', post) +
    chain('fwd_filter', 'type filter hook forward priority filter; policy accept;', fwd) +
    '}\n'
  );
}

/** The iptables chains of a runtime, and where the built-in chains jump to them. */
export function iptablesChains(tag: string): { raw: { pre: string }; nat: { dnat: string; post: string }; filter: { fwd: string } } {
  const t = tag.slice(0, 12).toUpperCase();
  return { raw: { pre: `BERTH-${t}-RAW` }, nat: { dnat: `BERTH-${t}-DNAT`, post: `BERTH-${t}-POST` }, filter: { fwd: `BERTH-${t}-FWD` } };
}

/** The jumps from built-in chains, as `iptables` argument lists (after `-t table -X CHAIN`). */
export function iptablesJumps(tag: string): Array<{ table: 'raw' | 'nat' | 'filter'; chain: string; rule: string[] }> {
  const c = iptablesChains(tag);
  return [
    { table: 'raw', chain: 'PREROUTING', rule: ['-j', c.raw.pre] },
    { table: 'nat', chain: 'PREROUTING', rule: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', c.nat.dnat] },
    { table: 'nat', chain: 'OUTPUT', rule: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', c.nat.dnat] },
    { table: 'nat', chain: 'POSTROUTING', rule: ['-j', c.nat.post] },
    { table: 'filter', chain: 'FORWARD', rule: ['-j', c.filter.fwd] },
  ];
}

/**
 * An `iptables-restore --noflush` script with the same rules as {@link renderNft}; declaring
 * a chain flushes it, so the script replaces the chains' contents in one commit per table.
 */
export function renderIptables(m: FirewallModel): string {
  const c = iptablesChains(m.tag);
  const nat: string[] = [`:${c.nat.dnat} - [0:0]`, `:${c.nat.post} - [0:0]`];
  for (const p of m.ports) {
    const dst = p.hostIp === '0.0.0.0' ? '' : ` -d ${p.hostIp}/32`;
    nat.push(`-A ${c.nat.dnat}${dst} -p ${p.protocol} -m ${p.protocol} --dport ${p.host} -j DNAT --to-destination ${p.containerIp}:${p.container}`);
  }
  const fwd: string[] = [`:${c.filter.fwd} - [0:0]`];
  if (m.networks.length > 0) fwd.push(`-A ${c.filter.fwd} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
  for (const n of m.networks) fwd.push(`-A ${c.filter.fwd} -i ${n.bridge} -o ${n.bridge} -j ACCEPT`);
  for (const n of m.networks) {
    if (n.internal) continue;
    fwd.push(`-A ${c.filter.fwd} -o ${n.bridge} -m conntrack --ctstate DNAT -j ACCEPT`);
    nat.push(
      `-A ${c.nat.post} -s 127.0.0.0/8 -o ${n.bridge} -j MASQUERADE`,
      // Hairpin, as in the nftables rules: DNATed traffic from the subnet back into it.
      `-A ${c.nat.post} -s ${n.subnet} -d ${n.subnet} -o ${n.bridge} -m conntrack --ctstate DNAT -j MASQUERADE`,
      `-A ${c.nat.post} -s ${n.subnet} ! -o ${n.bridge} -j MASQUERADE`,
    );
  }
  for (const n of m.networks) fwd.push(`-A ${c.filter.fwd} -i ${n.bridge} -o ${BRIDGE_PREFIX}+ -j DROP`);
  for (const n of m.networks) {
    if (n.internal) fwd.push(`-A ${c.filter.fwd} -i ${n.bridge} -j DROP`);
    fwd.push(`-A ${c.filter.fwd} -o ${n.bridge} -j DROP`);
  }
  const raw = [`:${c.raw.pre} - [0:0]`, ...m.networks.map((n) => `-A ${c.raw.pre} -i ${n.bridge} -d 127.0.0.0/8 -j DROP`)];
  return `*raw\n${raw.join('\n')}\nCOMMIT\n*nat\n${nat.join('\n')}\nCOMMIT\n*filter\n${fwd.join('\n')}\nCOMMIT\n`;
}
