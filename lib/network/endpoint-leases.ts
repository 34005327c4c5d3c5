/**
 * Endpoint leases: what a container holds on the networks of one runtime — an address, a veth
 * and published ports — from the launch that attaches it to the exit that releases it, and
 * what follows from them (each container's /etc/hosts, the packet-filter rules). The network
 * service keeps the networks themselves (create, inspect, remove, connect) and hands this its
 * store; `attach.ts` drives it for a launch.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { identityOf, selfIdentity } from '../state/process-identity.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { fromNativeError, type NativeBinding, type NativeNetInterface } from '../native.js';
import { isRootless } from '../rootless/index.js';
import { deleteLink, ensureBridge, linkExists, newVethName, randomMac, vethAlias } from './bridge-driver.js';
import { formatIpv4, parseIpv4 } from './cidr.js';
import { RESOLVER_ADDRESS, ensureResolver, handOverMessage, removeNameFile, writeNameFile } from './dns-names.js';
import { renderHosts, renderResolvConf, type HostsEntry } from './etc-files.js';
import type { FirewallModel } from './firewall-rules.js';
import { detectFirewall, requireFirewall } from './firewall.js';
import { allocateAddress } from './ipam.js';
import { claimHostPorts } from './ports.js';
import { findNetwork, isLive, poolOf, refName } from './network-records.js';
import type { EndpointRecord, EndpointTable, NetworkRecord, NetworkState, NetworkStore } from './network-store.js';
import { DEFAULT_NETWORK, type NetworkRef, type NormalizedPort, type PublishedPort } from './types.js';

/** How long a released veth may linger with its dying namespace before berth deletes it. */
const VETH_GRACE_MS = 2000;

export { DEFAULT_NETWORK } from './types.js';

/** One network a launch attaches to. */
export interface AttachmentRequest {
  network: NetworkRef;
  aliases: string[];
  ip?: string;
}

/** A launch's request for endpoints. */
export interface AttachRequest {
  container: { id: string; name: string };
  hostname: string;
  attachments: AttachmentRequest[];
  ports: NormalizedPort[];
  dns?: string[];
  /** `--add-host` entries; the address `host-gateway` means the primary network's gateway. */
  extraHosts: HostsEntry[];
}

/** The endpoints made for a launch. */
export interface Attached {
  endpoints: EndpointRecord[];
  /** The networks of the endpoints, as they were at attach time. */
  networks: NetworkRecord[];
  interfaces: NativeNetInterface[];
  ports: PublishedPort[];
  hostsFile: string;
  resolvConf: string;
  /** On a user network: the resolver that gets the member's socket before "go". */
  dns?: { control: string; message: string };
}

/** An endpoint as stored, with the extra hosts its container asked for. */
export type StoredEndpoint = EndpointRecord & { extraHosts?: HostsEntry[] };

/** What the leases need of the network service that owns them. */
export interface LeaseContext {
  store: NetworkStore;
  /** Names the runtime in kernel objects (link aliases, the nft table). */
  tag: string;
  binding(): NativeBinding;
  /** Resolves once the service has reconciled its state with the kernel. */
  ready(): Promise<unknown>;
  /** Creates the default network (Docker's `bridge`) inside a held lock, on first use. */
  createDefault(state: NetworkState): Promise<NetworkRecord>;
  /** Tells listeners that a container came to or went from a network. */
  emitEndpoint(kind: 'connect' | 'disconnect', rec: NetworkRecord, e: EndpointRecord): void;
}

/** The leases of one runtime's containers on its networks. */
export class EndpointLeases {
  readonly #ctx: LeaseContext;

  constructor(ctx: LeaseContext) {
    this.#ctx = ctx;
  }

  /** Makes the endpoints of a launch (see `attach.ts`). */
  async attach(req: AttachRequest, launchOwner = selfIdentity()): Promise<Attached> {
    await this.#ctx.ready();
    return this.#ctx.store.locked(async (state) => {
      const targets: Array<{ rec: NetworkRecord; aliases: string[]; ip?: string }> = [];
      for (const [i, a] of req.attachments.entries()) {
        let rec = findNetwork(state.networks, a.network);
        if (!rec && refName(a.network) === DEFAULT_NETWORK) rec = await this.#ctx.createDefault(state);
        if (!rec) throw new NotFoundError(`network ${refName(a.network)} not found`, { option: i === 0 ? 'network' : `networks[${i - 1}]` });
        if (targets.some((t) => t.rec.id === rec!.id)) throw new ValidationError('networks', `network ${rec.name} is given twice`);
        targets.push({ rec, aliases: a.aliases, ...(a.ip !== undefined ? { ip: a.ip } : {}) });
      }
      for (const rec of state.networks) {
        const m = rec.members[req.container.id];
        if (m && !targets.some((t) => t.rec.id === rec.id)) targets.push({ rec, aliases: m.aliases, ...(m.ip !== undefined ? { ip: m.ip } : {}) });
      }
      const primary = targets[0]!;
      if (req.ports.length > 0 && primary.rec.internal) {
        throw new ValidationError('ports', `network ${primary.rec.name} is internal: nothing can be published from it`);
      }
      const gatewayOn = targets.findIndex((t) => !t.rec.internal);
      const extraHosts = req.extraHosts.map((h) => ({ ...h, ip: h.ip === 'host-gateway' ? primary.rec.gateway : h.ip }));
      const made: Array<{ endpoint: StoredEndpoint; nic: NativeNetInterface }> = [];
      let reclaimed = false;
      const attempt = async <T>(fn: () => Promise<T> | T): Promise<T> => {
        try {
          return await fn();
        } catch (error) {
          // A pool or port held by a dead container's lease: reclaim stale leases once, retry.
          if (reclaimed || !(error instanceof ConflictError)) throw error;
          reclaimed = true;
          state.endpoints.endpoints = state.endpoints.endpoints.filter(isLive);
          return fn();
        }
      };
      for (const [i, t] of targets.entries()) {
        const m = await attempt(() =>
          this.makeEndpoint(state, t.rec, {
            container: req.container,
            hostname: req.hostname,
            aliases: t.aliases,
            ...(t.ip !== undefined ? { ip: t.ip } : {}),
            ifname: `eth${i}`,
            gateway: i === gatewayOn,
            ports: [],
            extraHosts,
          }),
        );
        m.endpoint.owner = launchOwner;
        made.push(m);
        state.endpoints.endpoints.push(m.endpoint);
      }
      if (req.ports.length > 0) {
        const ports = await attempt(() =>
          claimHostPorts(
            req.ports,
            state.endpoints.endpoints.filter((e) => !made.some((m) => m.endpoint === e)).flatMap((e) => e.ports),
          ),
        );
        made[0]!.endpoint.ports = ports;
      }
      await this.#ctx.store.writeEndpoints(state.endpoints);
      // Names on user networks: one file per member, and the resolver of the first one.
      const named = targets.filter((t) => !t.rec.isDefault).map((t) => t.rec);
      let dns: Attached['dns'];
      try {
        for (const m of made) if (named.some((n) => n.id === m.endpoint.networkId)) writeNameFile(this.#ctx.store, m.endpoint);
        if (named.length > 0) {
          const control = await ensureResolver(this.#ctx.store, this.#ctx.tag, named[0]!.id);
          dns = { control, message: handOverMessage(req.container.id, named, req.dns) };
        }
        await this.ensureBridges(targets.map((t) => t.rec));
        if (req.ports.length > 0) {
          await (await requireFirewall()).apply(this.firewallModel(state));
          await flushUdp(this.#ctx.binding(), made[0]!.endpoint.ports);
        }
      } catch (error) {
        state.endpoints.endpoints = state.endpoints.endpoints.filter((e) => !made.some((m) => m.endpoint === e));
        for (const m of made) removeNameFile(this.#ctx.store, m.endpoint.networkId, m.endpoint.containerId);
        await this.#ctx.store.writeEndpoints(state.endpoints);
        throw error;
      }
      const mine = made.map((m) => m.endpoint);
      return {
        endpoints: mine,
        networks: targets.map((t) => t.rec),
        interfaces: made.map((m) => m.nic),
        ports: mine[0]!.ports,
        hostsFile: this.hostsFor(req.container.id, state),
        // The resolver forwards to `dns` itself; the container asks only 127.0.0.11.
        resolvConf: dns ? renderResolvConf(readHostResolvConf(), [RESOLVER_ADDRESS]) : renderResolvConf(readHostResolvConf(), req.dns),
        ...(dns ? { dns } : {}),
      };
    });
  }

  /**
   * The container's PID 1 is running: its leases now live as long as it does — or, with
   * `monitorPid`, as long as the detached container's monitor does (which restarts PID 1, and
   * may have to already) — and its peers on user networks learn its name.
   */
  async started(attached: Pick<Attached, 'endpoints' | 'networks'>, pid: number, monitorPid?: number): Promise<void> {
    const identity = identityOf(pid);
    const monitor = monitorPid === undefined ? undefined : identityOf(monitorPid);
    if ((!identity && !monitor) || attached.endpoints.length === 0) return;
    const ids = new Set(attached.endpoints.map((e) => e.id));
    await this.#ctx.store.lockedEndpoints(async (table) => {
      // Replaced, not changed in place: the store's records are frozen (endpoint-log.ts).
      table.endpoints = table.endpoints.map((e) => (ids.has(e.id) ? { ...e, ...(identity ? { pid: identity } : {}), ...(monitor ? { monitor } : {}) } : e));
      await this.#ctx.store.writeEndpoints(table);
    });
    for (const e of attached.endpoints) {
      if (identity) e.pid = identity;
      if (monitor) e.monitor = monitor;
    }
    for (const e of attached.endpoints) {
      const rec = attached.networks.find((n) => n.id === e.networkId);
      if (rec) this.#ctx.emitEndpoint('connect', rec, e);
    }
  }

  /** The container exited: its leases and published ports go. Idempotent. */
  async release(attached: Pick<Attached, 'endpoints' | 'networks'>): Promise<void> {
    if (attached.endpoints.length === 0) return;
    const ids = new Set(attached.endpoints.map((e) => e.id));
    // Without root, published ports are a forwarder's sockets (rootless-ports.ts), gone before
    // this: no host rules to render, no conntrack to flush (nor the right to).
    const withPorts = !isRootless() && attached.endpoints.some((e) => e.ports.length > 0);
    const release = async (table: EndpointTable): Promise<EndpointRecord[]> => {
      const removed = table.endpoints.filter((e) => ids.has(e.id));
      if (removed.length === 0) return removed;
      table.endpoints = table.endpoints.filter((e) => !ids.has(e.id));
      // Its names go with it: one file per network, whatever the number of peers.
      for (const e of removed) removeNameFile(this.#ctx.store, e.networkId, e.containerId);
      await this.#ctx.store.writeEndpoints(table);
      return removed;
    };
    // Published ports change the rules, which are rendered from the whole state.
    const removed = withPorts
      ? await this.#ctx.store.locked(async (state) => {
          const r = await release(state.endpoints);
          if (r.length > 0) {
            await (await detectFirewall())?.apply(this.firewallModel(state));
            await flushUdp(this.#ctx.binding(), r.flatMap((e) => e.ports));
          }
          return r;
        })
      : await this.#ctx.store.lockedEndpoints(release);
    // The veth dies with the namespace, asynchronously. If something still holds the namespace
    // (a `container:` joiner) it would keep the released address: delete it if it outlives that.
    const veths = removed.map((e) => e.hostIfname);
    setTimeout(() => {
      for (const v of veths) if (linkExists(v)) void deleteLink(v).catch(() => false);
    }, VETH_GRACE_MS).unref();
    for (const e of removed) {
      const rec = attached.networks.find((n) => n.id === e.networkId);
      if (rec && e.pid) this.#ctx.emitEndpoint('disconnect', rec, e);
    }
  }

  /** A new endpoint on `rec`: an address from its pool, a veth name, a MAC. */
  makeEndpoint(
    state: NetworkState,
    rec: NetworkRecord,
    o: {
      container: { id: string; name: string };
      hostname: string;
      aliases: string[];
      ip?: string;
      ifname: string;
      gateway: boolean;
      ports: PublishedPort[];
      extraHosts: HostsEntry[];
    },
  ): { endpoint: StoredEndpoint; nic: NativeNetInterface } {
    const pool = poolOf(rec);
    const used = new Set(state.endpoints.endpoints.filter((e) => e.networkId === rec.id).map((e) => parseIpv4(e.ip)!));
    const ip = allocateAddress(pool, used, o.ip === undefined ? state.endpoints.cursors[rec.id] : undefined, o.ip);
    if (o.ip === undefined) state.endpoints.cursors[rec.id] = ip;
    const id = randomBytes(32).toString('hex');
    const endpoint: StoredEndpoint = {
      id,
      networkId: rec.id,
      containerId: o.container.id,
      name: o.container.name,
      hostname: o.hostname,
      aliases: o.aliases,
      ip: formatIpv4(ip),
      mac: randomMac(),
      hostIfname: newVethName(),
      ifname: o.ifname,
      ports: o.ports,
      owner: selfIdentity(),
      created: new Date().toISOString(),
      ...(o.extraHosts.length > 0 ? { extraHosts: o.extraHosts } : {}),
    };
    const nic: NativeNetInterface = {
      hostIfname: endpoint.hostIfname,
      bridge: rec.bridge,
      ifname: o.ifname,
      addresses: [`${endpoint.ip}/${pool.subnet.prefix}`],
      ...(o.gateway && !rec.internal ? { gateway: rec.gateway } : {}),
      ...(rec.mtu ? { mtu: rec.mtu } : {}),
      mac: endpoint.mac,
      alias: vethAlias(this.#ctx.tag, rec.id, id),
      hairpin: true,
    };
    return { endpoint, nic };
  }

  /** Bridges vanish with a reboot (or an admin's `ip link del`): recreated on use. */
  async ensureBridges(recs: readonly NetworkRecord[]): Promise<void> {
    for (const rec of recs) if (!linkExists(rec.bridge)) await ensureBridge(rec, this.#ctx.tag);
  }

  /** The packet-filter rules of the whole state: every network and every published port. */
  firewallModel(state: NetworkState): FirewallModel {
    const byId = new Map(state.networks.map((n) => [n.id, n]));
    return {
      tag: this.#ctx.tag,
      networks: state.networks.map((n) => ({ bridge: n.bridge, subnet: n.subnet, internal: n.internal })),
      ports: state.endpoints.endpoints
        .filter((e) => byId.has(e.networkId))
        .flatMap((e) => e.ports.map((p) => ({ protocol: p.protocol, hostIp: p.hostIp, host: p.host, containerIp: e.ip, container: p.container }))),
    };
  }

  /** The /etc/hosts of a container: its own addresses and its extra hosts (peers are the resolver's). */
  hostsFor(containerId: string, state: NetworkState): string {
    return hostsFileFor(containerId, state.networks, state.endpoints);
  }
}

/**
 * UDP has no connection setup: a client that sent to a port before it was published (or to a
 * container that is gone) keeps its conntrack entry, and with it the old NAT decision, while
 * it keeps sending. Flushing those entries makes the next datagram take the current rules.
 */
export async function flushUdp(binding: NativeBinding, ports: readonly PublishedPort[]): Promise<void> {
  for (const p of ports) {
    if (p.protocol !== 'udp') continue;
    try {
      await binding.netFlushConntrack({ protocol: 'udp', port: p.host });
    } catch (error) {
      throw fromNativeError(error);
    }
  }
}

/**
 * @internal A container's /etc/hosts (exported for tests): localhost, its own addresses with
 * its names, its extra hosts. Peers are not listed: the network's resolver answers for them, so
 * no peer's file changes when a container joins or leaves.
 */
export function hostsFileFor(containerId: string, _networks: readonly NetworkRecord[], table: EndpointTable): string {
  const mine = table.endpoints.filter((e) => e.containerId === containerId) as StoredEndpoint[];
  const self: HostsEntry[] = mine.map((e) => ({ ip: e.ip, names: [e.hostname, ...(e.name ? [e.name] : []), ...e.aliases] }));
  return renderHosts(self, [], mine[0]?.extraHosts ?? []);
}

let hostResolv: { at: number; text: string | undefined } | undefined;
function readHostResolvConf(): string | undefined {
  // Read at most once a second: a burst of starts should not each hit the file.
  const now = Date.now();
  if (hostResolv && now - hostResolv.at < 1000) return hostResolv.text;
  let text: string | undefined;
  try {
    text = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    text = undefined;
  }
  hostResolv = { at: now, text };
  return text;
}

