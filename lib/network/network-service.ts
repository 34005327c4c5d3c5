/**
 * `rt.networks`: bridge networks over one state directory, shared safely by every process
 * that opens it. Every change holds the `networks` lock, re-reads the state, and then makes
 * the kernel match it (bridge, veths, packet-filter rules); see `network-store.ts` for the
 * layout and `docs/design/networks.md` for the design.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { closeSync, readFileSync } from 'node:fs';
import { EventEmitter } from 'eventemitter3';
import { identityOf, isAlive, selfIdentity, type ProcessIdentity } from '../state/process-identity.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { fromNativeError, native, type NativeBinding, type NativeLinkInfo, type NativeNetInterface } from '../native.js';
import { bridgeNameFor, deleteLink, ensureBridge, linkExists, newVethName, randomMac, rootTag, VETH_PREFIX, vethAlias } from './bridge-driver.js';
import { formatIpv4, parseIpv4, parseSubnet } from './cidr.js';
import { writeContainerFile } from './container-files.js';
import { renderHosts, renderResolvConf, type HostsEntry } from './etc-files.js';
import { BRIDGE_PREFIX, type FirewallModel } from './firewall-rules.js';
import { detectFirewall, requireFirewall } from './firewall.js';
import { allocateAddress, hostRoutes, planPool, type Pool } from './ipam.js';
import { Network, type ConnectableContainer, type ConnectOptions, type NetworkEndpointEvent } from './network.js';
import { NetworkStore, type EndpointRecord, type EndpointTable, type NetworkRecord, type NetworkState } from './network-store.js';
import { claimHostPorts } from './ports.js';
import type { NetworkCreateOptions, NetworkInspect, NetworkRef, NormalizedPort, PublishedPort } from './types.js';

/** How long a released veth may linger with its dying namespace before berth deletes it. */
const VETH_GRACE_MS = 2000;

/** The name of every runtime's default network (Docker's `bridge`). */
export const DEFAULT_NETWORK = 'bridge';
const PREDEFINED = new Set([DEFAULT_NETWORK, 'host', 'none']);
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const CREATE_KEYS = new Set(['name', 'driver', 'subnet', 'gateway', 'ipRange', 'internal', 'mtu', 'labels']);

/** Events of `rt.networks` (from this process's actions). */
export interface NetworkServiceEvents {
  create: [Network];
  destroy: [{ id: string; name: string }];
  connect: [{ network: Network } & NetworkEndpointEvent];
  disconnect: [{ network: Network } & NetworkEndpointEvent];
}

/** Filters of {@link NetworkService.list} and {@link NetworkService.prune}. */
export interface NetworkFilters {
  /** Substring of the name. */
  name?: string;
  /** Id prefix. */
  id?: string;
  /** `key` or `key=value`; every one must match. */
  label?: string[];
}

/** Docker's `NetworkSettings` of a container (for the container's `inspect()` and `port()`). */
export interface ContainerNetworkSettings {
  Networks: Record<string, { NetworkID: string; EndpointID: string; Gateway: string; IPAddress: string; IPPrefixLen: number; MacAddress: string; Aliases: string[] }>;
  Ports: Record<string, Array<{ HostIp: string; HostPort: string }>>;
}

/** What reconciliation found and fixed. */
export interface NetworkReconcileReport {
  /** Leases of containers whose processes are gone. */
  staleEndpoints: number;
  /** Bridges and veths of this runtime that no state accounts for, deleted. */
  removedLinks: string[];
}

/** @internal One network a launch attaches to. */
export interface AttachmentRequest {
  network: NetworkRef;
  aliases: string[];
  ip?: string;
}

/** @internal A launch's request for endpoints. */
export interface AttachRequest {
  container: { id: string; name: string };
  hostname: string;
  attachments: AttachmentRequest[];
  ports: NormalizedPort[];
  dns?: string[];
  /** `--add-host` entries; the address `host-gateway` means the primary network's gateway. */
  extraHosts: HostsEntry[];
}

/** @internal The endpoints made for a launch. */
export interface Attached {
  endpoints: EndpointRecord[];
  /** The networks of the endpoints, as they were at attach time. */
  networks: NetworkRecord[];
  interfaces: NativeNetInterface[];
  ports: PublishedPort[];
  hostsFile: string;
  resolvConf: string;
}

/** A running container whose network namespace another container may join. */
export interface NetnsHolder {
  id: string;
  pid: ProcessIdentity;
}

/** Finds a running container by id, id prefix or name. */
export type ContainerResolver = (ref: string) => Promise<NetnsHolder | undefined>;

type StoredEndpoint = EndpointRecord & { extraHosts?: HostsEntry[] };

function refName(ref: NetworkRef): string {
  return typeof ref === 'string' ? ref : ref.id;
}

function findNetwork(networks: readonly NetworkRecord[], ref: NetworkRef): NetworkRecord | undefined {
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

function poolOf(n: NetworkRecord): Pool {
  return { subnet: parseSubnet(n.subnet, 'subnet'), gateway: parseIpv4(n.gateway)!, ...(n.ipRange ? { ipRange: parseSubnet(n.ipRange, 'ipRange') } : {}) };
}

/** A lease is live while the container's PID 1 runs, or before that, while the process making it does. */
export function isLive(e: EndpointRecord): boolean {
  return e.pid ? isAlive(e.pid) : isAlive(e.owner);
}

function labelsMatch(labels: Record<string, string>, wanted: readonly string[] | undefined): boolean {
  for (const l of wanted ?? []) {
    const eq = l.indexOf('=');
    const key = eq < 0 ? l : l.slice(0, eq);
    if (!(key in labels)) return false;
    if (eq >= 0 && labels[key] !== l.slice(eq + 1)) return false;
  }
  return true;
}

function checkCreateOptions(o: NetworkCreateOptions): void {
  if (!o || typeof o !== 'object') throw new ValidationError('options', 'must be an object with at least { name }');
  for (const key of Object.keys(o)) if (!CREATE_KEYS.has(key)) throw new ValidationError(key, 'unknown option');
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name) || o.name.length > 128) {
    throw new ValidationError('name', `invalid network name ${JSON.stringify(o.name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  if (PREDEFINED.has(o.name)) throw new ValidationError('name', `"${o.name}" is a pre-defined network and cannot be created`);
  if (o.driver !== undefined && o.driver !== 'bridge') throw new ValidationError('driver', `only "bridge" is supported, got ${JSON.stringify(o.driver)}`);
  if (o.internal !== undefined && typeof o.internal !== 'boolean') throw new ValidationError('internal', 'must be a boolean');
  if (o.mtu !== undefined && (!Number.isInteger(o.mtu) || o.mtu < 68 || o.mtu > 65535)) throw new ValidationError('mtu', 'must be an integer between 68 and 65535');
  if (o.labels !== undefined) {
    if (!o.labels || typeof o.labels !== 'object' || Array.isArray(o.labels)) throw new ValidationError('labels', 'must be an object of strings');
    for (const [k, v] of Object.entries(o.labels)) if (typeof v !== 'string') throw new ValidationError(`labels.${k}`, 'must be a string');
  }
}

export class NetworkService extends EventEmitter<NetworkServiceEvents> {
  /** The state directory. */
  readonly root: string;
  /** @internal Names this runtime in kernel objects (nft table, link aliases). */
  readonly tag: string;
  /** @internal */
  readonly store: NetworkStore;
  readonly #objects = new Map<string, Network>();
  #ready: Promise<NetworkReconcileReport> | undefined;
  #resolver: ContainerResolver | undefined;
  readonly #native: NativeBinding | undefined;

  /** @param options.native the native core (default: the addon); unit tests pass the recording fake. */
  constructor(root: string, options: { native?: NativeBinding } = {}) {
    super();
    this.#native = options.native;
    this.root = root;
    this.tag = rootTag(root);
    this.store = new NetworkStore(root);
  }

  /**
   * Once per runtime and process: drops the leases of containers that died with a crashed
   * owner, re-applies the packet-filter rules (gone after a reboot), and deletes this
   * runtime's bridges and veths that no state accounts for. Every operation waits for it.
   */
  ready(): Promise<NetworkReconcileReport> {
    this.#ready ??= this.reconcile();
    return this.#ready;
  }

  /**
   * @internal Lets `rt.containers` resolve `container:<id or name>` to a running container's
   * PID 1 (without it, only containers with an endpoint on a network of this runtime are found).
   */
  setContainerResolver(resolver: ContainerResolver): void {
    this.#resolver = resolver;
  }

  /** @internal */
  resolveContainer(ref: string): Promise<NetnsHolder | undefined> {
    return this.#resolver ? this.#resolver(ref) : Promise.resolve(undefined);
  }

  #object(rec: NetworkRecord): Network {
    const cached = this.#objects.get(rec.id);
    if (cached) return cached;
    const n = new Network(
      {
        inspect: (id) => this.inspect(id),
        connect: (id, c, o) => this.connect(id, c, o),
        disconnect: (id, c) => this.disconnect(id, c),
        remove: (id) => this.remove(id),
      },
      rec,
      this,
    );
    this.#objects.set(rec.id, n);
    return n;
  }

  /**
   * Creates a bridge network: the Linux bridge `berth-<id>` with the gateway address, NAT for
   * traffic out (unless `internal`), and isolation from every other network.
   * @throws ValidationError for a bad name, CIDR, gateway outside the subnet…; ConflictError
   *   for a duplicate name or a subnet overlapping another network or a host route.
   */
  async create(options: NetworkCreateOptions): Promise<Network> {
    checkCreateOptions(options);
    await this.ready();
    const rec = await this.store.locked(async (state) => {
      if (state.networks.some((n) => n.name === options.name)) throw new ConflictError(`network with name "${options.name}" already exists`);
      return this.#createLocked(state, options, false);
    });
    const n = this.#object(rec);
    this.emit('create', n);
    return n;
  }

  async #createLocked(state: NetworkState, o: NetworkCreateOptions, isDefault: boolean): Promise<NetworkRecord> {
    const pool = planPool(
      { ...(o.subnet !== undefined ? { subnet: o.subnet } : {}), ...(o.gateway !== undefined ? { gateway: o.gateway } : {}), ...(o.ipRange !== undefined ? { ipRange: o.ipRange } : {}) },
      {
        taken: state.networks.map((n) => ({ name: n.name, subnet: parseSubnet(n.subnet, 'subnet') })),
        routes: hostRoutes(),
        ownBridges: new Set(state.networks.map((n) => n.bridge)),
      },
    );
    const id = randomBytes(32).toString('hex');
    const rec: NetworkRecord = {
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
    const fw = await requireFirewall();
    await this.store.writeNetwork(rec);
    try {
      await ensureBridge(rec, this.tag);
      state.networks.push(rec);
      await fw.apply(this.#firewallModel(state));
    } catch (error) {
      state.networks = state.networks.filter((n) => n.id !== rec.id);
      await this.store.deleteNetwork(rec.id);
      await deleteLink(rec.bridge).catch(() => false);
      await fw.apply(this.#firewallModel(state)).catch(() => {});
      throw error;
    }
    return rec;
  }

  /**
   * A network by name, id or unique id prefix. `'bridge'`, the default network, always exists:
   * it is made on first use (Docker makes it when its daemon starts).
   * @throws NotFoundError
   */
  async get(ref: NetworkRef): Promise<Network> {
    await this.ready();
    const { networks } = await this.store.read();
    let rec = findNetwork(networks, ref);
    if (!rec && refName(ref) === DEFAULT_NETWORK) {
      rec = await this.store.locked(async (state) => findNetwork(state.networks, ref) ?? this.#createLocked(state, { name: DEFAULT_NETWORK }, true));
      this.emit('create', this.#object(rec));
    }
    if (!rec) throw new NotFoundError(`network ${refName(ref)} not found`);
    return this.#object(rec);
  }

  /** The networks of the runtime, oldest first. */
  async list(filters: NetworkFilters = {}): Promise<Network[]> {
    await this.ready();
    const { networks } = await this.store.read();
    return networks
      .filter((n) => (filters.name === undefined || n.name.includes(filters.name)) && (filters.id === undefined || n.id.startsWith(filters.id)) && labelsMatch(n.labels, filters.label))
      .map((n) => this.#object(n));
  }

  /** Docker's `network inspect`. @throws NotFoundError */
  async inspect(ref: NetworkRef): Promise<NetworkInspect> {
    await this.ready();
    const { networks, endpoints } = await this.store.read();
    const rec = findNetwork(networks, ref);
    if (!rec) throw new NotFoundError(`network ${refName(ref)} not found`);
    const prefix = rec.subnet.split('/')[1];
    const containers: NetworkInspect['Containers'] = {};
    for (const e of endpoints.endpoints) {
      if (e.networkId !== rec.id || !isLive(e)) continue;
      containers[e.containerId] = { Name: e.name || e.hostname, EndpointID: e.id, MacAddress: e.mac, IPv4Address: `${e.ip}/${prefix}`, IPv6Address: '' };
    }
    return {
      Name: rec.name,
      Id: rec.id,
      Created: rec.created,
      Scope: 'local',
      Driver: 'bridge',
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: rec.subnet, Gateway: rec.gateway, ...(rec.ipRange ? { IPRange: rec.ipRange } : {}) }] },
      Internal: rec.internal,
      Attachable: false,
      Ingress: false,
      Containers: containers,
      Options: {
        'com.docker.network.bridge.name': rec.bridge,
        ...(rec.mtu ? { 'com.docker.network.driver.mtu': String(rec.mtu) } : {}),
      },
      Labels: { ...rec.labels },
    };
  }

  /**
   * Removes a network, its bridge and its rules. Containers connected while stopped are
   * disconnected; the default `bridge` network may be removed too when unused (it comes back
   * on next use).
   * @throws NotFoundError; ConflictError while a running container uses it.
   */
  async remove(ref: NetworkRef): Promise<void> {
    await this.ready();
    const rec = await this.store.locked(async (state) => {
      const rec = findNetwork(state.networks, ref);
      if (!rec) throw new NotFoundError(`network ${refName(ref)} not found`);
      const live = state.endpoints.endpoints.filter((e) => e.networkId === rec.id && isLive(e));
      if (live.length > 0) {
        throw new ConflictError(`network ${rec.name} has active endpoints: ${live.map((e) => e.name || e.hostname || e.containerId.slice(0, 12)).join(', ')}`);
      }
      await this.#removeLocked(state, rec);
      return rec;
    });
    this.#objects.get(rec.id)?.emit('destroy');
    this.#objects.delete(rec.id);
    this.emit('destroy', { id: rec.id, name: rec.name });
  }

  async #removeLocked(state: NetworkState, rec: NetworkRecord): Promise<void> {
    const table = state.endpoints;
    const before = table.endpoints.length;
    table.endpoints = table.endpoints.filter((e) => e.networkId !== rec.id);
    delete table.cursors[rec.id];
    if (table.endpoints.length !== before) await this.store.writeEndpoints(table);
    await this.store.deleteNetwork(rec.id);
    state.networks = state.networks.filter((n) => n.id !== rec.id);
    const fw = await detectFirewall();
    await fw?.apply(this.#firewallModel(state));
    await deleteLink(rec.bridge);
  }

  /** Removes every network no container uses (the default `bridge` network stays). */
  async prune(filters: Pick<NetworkFilters, 'label'> = {}): Promise<{ NetworksDeleted: string[] }> {
    await this.ready();
    const removed = await this.store.locked(async (state) => {
      const out: NetworkRecord[] = [];
      for (const rec of [...state.networks]) {
        if (rec.isDefault || !labelsMatch(rec.labels, filters.label)) continue;
        if (Object.keys(rec.members).length > 0) continue;
        if (state.endpoints.endpoints.some((e) => e.networkId === rec.id && isLive(e))) continue;
        await this.#removeLocked(state, rec);
        out.push(rec);
      }
      return out;
    });
    for (const rec of removed) {
      this.#objects.get(rec.id)?.emit('destroy');
      this.#objects.delete(rec.id);
      this.emit('destroy', { id: rec.id, name: rec.name });
    }
    return { NetworksDeleted: removed.map((r) => r.name) };
  }

  /**
   * Connects `container` to the network: recorded for its future starts, and attached at once
   * if it runs (a new interface `eth<n>`, its peers' /etc/hosts updated).
   */
  async connect(ref: NetworkRef, container: ConnectableContainer, options: ConnectOptions = {}): Promise<void> {
    await this.ready();
    const aliases = checkAliases(options.aliases, 'aliases');
    if (options.ip !== undefined && parseIpv4(options.ip) === undefined) throw new ValidationError('ip', `must be an IPv4 address, got ${JSON.stringify(options.ip)}`);
    const info = await container.inspect();
    const mode = info.HostConfig?.NetworkMode;
    if (mode === 'none' || mode === 'host' || mode?.startsWith('container:')) {
      // berth's containers default to "none" (Docker's default is "bridge"): say how to get one that can be connected.
      const hint = mode === 'none' ? ' (create it with network: "bridge" or a network name)' : '';
      throw new ConflictError(`container ${container.name} uses network mode "${mode}" and cannot be connected to a network${hint}`);
    }
    const running = info.State.Running && info.State.Pid > 0 ? identityOf(info.State.Pid) : undefined;
    const result = await this.store.locked(async (state) => {
      const rec = findNetwork(state.networks, ref);
      if (!rec) throw new NotFoundError(`network ${refName(ref)} not found`);
      if (rec.members[container.id] || state.endpoints.endpoints.some((e) => e.networkId === rec.id && e.containerId === container.id && isLive(e))) {
        throw new ConflictError(`container ${container.name} is already connected to network ${rec.name}`);
      }
      let endpoint: StoredEndpoint | undefined;
      let nic: NativeNetInterface | undefined;
      if (running) {
        const mine = state.endpoints.endpoints.filter((e) => e.containerId === container.id && isLive(e));
        const used = new Set(mine.map((e) => e.ifname));
        let n = 0;
        while (used.has(`eth${n}`)) n++;
        const made = this.#makeEndpoint(state, rec, {
          container: { id: container.id, name: container.name },
          hostname: info.Config.Hostname,
          aliases,
          ...(options.ip !== undefined ? { ip: options.ip } : {}),
          ifname: `eth${n}`,
          gateway: false,
          ports: [],
          extraHosts: (mine[0] as StoredEndpoint | undefined)?.extraHosts ?? [],
        });
        endpoint = { ...made.endpoint, pid: running };
        nic = made.nic;
        state.endpoints.endpoints.push(endpoint);
        await this.store.writeEndpoints(state.endpoints);
        await this.#ensureBridges([rec]);
        try {
          const pidfd = this.#binding().pidfdOpen(running.pid);
          try {
            await this.#binding().netAttach({ pid: running.pid, pidfd, interfaces: [nic] });
          } finally {
            closeSync(pidfd);
          }
        } catch (error) {
          state.endpoints.endpoints = state.endpoints.endpoints.filter((e) => e.id !== endpoint!.id);
          await this.store.writeEndpoints(state.endpoints);
          throw fromNativeError(error);
        }
      }
      rec.members[container.id] = { name: container.name, aliases, ...(options.ip !== undefined ? { ip: options.ip } : {}) };
      await this.store.writeNetwork(rec);
      return { rec, endpoint };
    });
    if (result.endpoint) {
      await this.#refreshHosts([result.rec.id]);
      this.#emitEndpoint('connect', result.rec, result.endpoint);
    }
  }

  /** Disconnects `container` (a Container, its id or its name) from the network. */
  async disconnect(ref: NetworkRef, container: ConnectableContainer | string): Promise<void> {
    await this.ready();
    const id = typeof container === 'string' ? container : container.id;
    const result = await this.store.locked(async (state) => {
      const rec = findNetwork(state.networks, ref);
      if (!rec) throw new NotFoundError(`network ${refName(ref)} not found`);
      const endpoints = state.endpoints.endpoints.filter((e) => e.networkId === rec.id && (e.containerId === id || e.name === id));
      const memberId = rec.members[id] ? id : Object.keys(rec.members).find((k) => rec.members[k]!.name === id);
      if (endpoints.length === 0 && memberId === undefined) throw new NotFoundError(`container ${id} is not connected to network ${rec.name}`);
      if (memberId !== undefined) {
        delete rec.members[memberId];
        await this.store.writeNetwork(rec);
      }
      if (endpoints.length > 0) {
        state.endpoints.endpoints = state.endpoints.endpoints.filter((e) => !endpoints.includes(e));
        await this.store.writeEndpoints(state.endpoints);
        if (endpoints.some((e) => e.ports.length > 0)) await (await detectFirewall())?.apply(this.#firewallModel(state));
        // The container lives on: its interface must go now, not with its namespace.
        for (const e of endpoints) await deleteLink(e.hostIfname).catch(() => false);
      }
      return { rec, endpoints };
    });
    await this.#refreshHosts([result.rec.id]);
    for (const e of result.endpoints) this.#emitEndpoint('disconnect', result.rec, e);
  }

  /** @internal Forgets a removed container: its connections and any lease it still had. */
  async forgetContainer(containerId: string): Promise<void> {
    await this.ready();
    const touched = await this.store.locked(async (state) => {
      const nets: string[] = [];
      for (const rec of state.networks) {
        if (rec.members[containerId]) {
          delete rec.members[containerId];
          await this.store.writeNetwork(rec);
          nets.push(rec.id);
        }
      }
      const gone = state.endpoints.endpoints.filter((e) => e.containerId === containerId);
      if (gone.length > 0) {
        state.endpoints.endpoints = state.endpoints.endpoints.filter((e) => e.containerId !== containerId);
        await this.store.writeEndpoints(state.endpoints);
        if (gone.some((e) => e.ports.length > 0)) await (await detectFirewall())?.apply(this.#firewallModel(state));
        nets.push(...gone.map((e) => e.networkId));
      }
      return nets;
    });
    if (touched.length > 0) await this.#refreshHosts(touched);
  }

  /**
   * @internal Releases every lease `containerId` still holds: its run ended, whoever noticed
   * (the supervising process, or a reconciliation in any process for a crashed owner or a
   * detached container). Covers endpoints added by `connect()` while it ran. Idempotent.
   */
  async releaseContainer(containerId: string): Promise<void> {
    const { networks, endpoints } = await this.store.read();
    const mine = endpoints.endpoints.filter((e) => e.containerId === containerId);
    if (mine.length > 0) await this.release({ endpoints: mine, networks });
  }

  /** Docker's `NetworkSettings` of a container from its live endpoints. */
  async settingsFor(containerId: string): Promise<ContainerNetworkSettings> {
    const { networks, endpoints } = await this.store.read();
    const out: ContainerNetworkSettings = { Networks: {}, Ports: {} };
    for (const e of endpoints.endpoints) {
      if (e.containerId !== containerId || !isLive(e)) continue;
      const rec = networks.find((n) => n.id === e.networkId);
      if (!rec) continue;
      out.Networks[rec.name] = {
        NetworkID: rec.id,
        EndpointID: e.id,
        Gateway: rec.gateway,
        IPAddress: e.ip,
        IPPrefixLen: Number(rec.subnet.split('/')[1]),
        MacAddress: e.mac,
        Aliases: [...e.aliases],
      };
      for (const p of e.ports) (out.Ports[`${p.container}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.host) });
    }
    return out;
  }

  /** @internal Makes the endpoints of a launch (see `attach.ts`). */
  async attach(req: AttachRequest, launchOwner = selfIdentity()): Promise<Attached> {
    await this.ready();
    return this.store.locked(async (state) => {
      const targets: Array<{ rec: NetworkRecord; aliases: string[]; ip?: string }> = [];
      for (const [i, a] of req.attachments.entries()) {
        let rec = findNetwork(state.networks, a.network);
        if (!rec && refName(a.network) === DEFAULT_NETWORK) rec = await this.#createLocked(state, { name: DEFAULT_NETWORK }, true);
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
          this.#makeEndpoint(state, t.rec, {
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
      await this.store.writeEndpoints(state.endpoints);
      try {
        await this.#ensureBridges(targets.map((t) => t.rec));
        if (req.ports.length > 0) {
          await (await requireFirewall()).apply(this.#firewallModel(state));
          await flushUdp(this.#binding(), made[0]!.endpoint.ports);
        }
      } catch (error) {
        state.endpoints.endpoints = state.endpoints.endpoints.filter((e) => !made.some((m) => m.endpoint === e));
        await this.store.writeEndpoints(state.endpoints);
        throw error;
      }
      const mine = made.map((m) => m.endpoint);
      return {
        endpoints: mine,
        networks: targets.map((t) => t.rec),
        interfaces: made.map((m) => m.nic),
        ports: mine[0]!.ports,
        hostsFile: this.#hostsFor(req.container.id, state),
        resolvConf: renderResolvConf(readHostResolvConf(), req.dns),
      };
    });
  }

  /**
   * @internal The container's PID 1 is running: its leases now live as long as it does, and
   * its peers on user networks learn its name.
   */
  async started(attached: Pick<Attached, 'endpoints' | 'networks'>, pid: number): Promise<void> {
    const identity = identityOf(pid);
    if (!identity || attached.endpoints.length === 0) return;
    const ids = new Set(attached.endpoints.map((e) => e.id));
    const named = new Set(attached.networks.filter((n) => !n.isDefault).map((n) => n.id));
    const me = attached.endpoints[0]!.containerId;
    const peers = await this.store.lockedEndpoints(async (table) => {
      for (const e of table.endpoints) if (ids.has(e.id)) e.pid = identity;
      await this.store.writeEndpoints(table);
      return table.endpoints.some((e) => named.has(e.networkId) && e.containerId !== me);
    });
    for (const e of attached.endpoints) e.pid = identity;
    // Alone on its networks, nobody needs to learn the name (its own file was written at start).
    if (peers) await this.#refreshHosts([...named]);
    for (const e of attached.endpoints) {
      const rec = attached.networks.find((n) => n.id === e.networkId);
      if (rec) this.#emitEndpoint('connect', rec, e);
    }
  }

  /** @internal The container exited: its leases and published ports go. Idempotent. */
  async release(attached: Pick<Attached, 'endpoints' | 'networks'>): Promise<void> {
    if (attached.endpoints.length === 0) return;
    const ids = new Set(attached.endpoints.map((e) => e.id));
    const withPorts = attached.endpoints.some((e) => e.ports.length > 0);
    const named = new Set(attached.networks.filter((n) => !n.isDefault).map((n) => n.id));
    let peers = false;
    const release = async (table: EndpointTable): Promise<EndpointRecord[]> => {
      const removed = table.endpoints.filter((e) => ids.has(e.id));
      if (removed.length === 0) return removed;
      table.endpoints = table.endpoints.filter((e) => !ids.has(e.id));
      peers = table.endpoints.some((e) => named.has(e.networkId));
      await this.store.writeEndpoints(table);
      return removed;
    };
    // Published ports change the rules, which are rendered from the whole state.
    const removed = withPorts
      ? await this.store.locked(async (state) => {
          const r = await release(state.endpoints);
          if (r.length > 0) {
            await (await detectFirewall())?.apply(this.#firewallModel(state));
            await flushUdp(this.#binding(), r.flatMap((e) => e.ports));
          }
          return r;
        })
      : await this.store.lockedEndpoints(release);
    if (peers) await this.#refreshHosts([...named]);
    // The veth dies with the namespace, asynchronously. If something still holds the namespace
    // (a `container:` joiner) it would keep the released address: delete it if it outlives that.
    const veths = removed.map((e) => e.hostIfname);
    setTimeout(() => {
      for (const v of veths) if (linkExists(v)) void deleteLink(v).catch(() => false);
    }, VETH_GRACE_MS).unref();
    for (const e of removed) {
      const rec = attached.networks.find((n) => n.id === e.networkId);
      if (rec && e.pid) this.#emitEndpoint('disconnect', rec, e);
    }
  }

  /**
   * Drops stale leases, re-applies the rules, and deletes this runtime's links that nothing
   * accounts for (bridges of removed networks, veths of containers that are gone).
   */
  async reconcile(): Promise<NetworkReconcileReport> {
    await this.store.removeStaleTemps((pid) => isAlive(identityOf(pid)));
    return this.store.locked(async (state) => {
      const before = state.endpoints.endpoints.length;
      state.endpoints.endpoints = state.endpoints.endpoints.filter(isLive);
      const stale = before - state.endpoints.endpoints.length;
      if (stale > 0) await this.store.writeEndpoints(state.endpoints);
      if (state.networks.length > 0) await (await detectFirewall())?.apply(this.#firewallModel(state));
      const removedLinks: string[] = [];
      let links: NativeLinkInfo[] = [];
      try {
        links = await this.#binding().netListLinks();
      } catch {
        // No netlink (not root): nothing of ours can exist either.
      }
      const mark = `berth:${this.tag}:`;
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

  #makeEndpoint(
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
      alias: vethAlias(this.tag, rec.id, id),
      hairpin: true,
    };
    return { endpoint, nic };
  }

  /** Bridges vanish with a reboot (or an admin's `ip link del`): recreated on use. */
  #binding(): NativeBinding {
    return this.#native ?? native();
  }

  async #ensureBridges(recs: readonly NetworkRecord[]): Promise<void> {
    for (const rec of recs) if (!linkExists(rec.bridge)) await ensureBridge(rec, this.tag);
  }

  #firewallModel(state: NetworkState): FirewallModel {
    const byId = new Map(state.networks.map((n) => [n.id, n]));
    return {
      tag: this.tag,
      networks: state.networks.map((n) => ({ bridge: n.bridge, subnet: n.subnet, internal: n.internal })),
      ports: state.endpoints.endpoints
        .filter((e) => byId.has(e.networkId))
        .flatMap((e) => e.ports.map((p) => ({ protocol: p.protocol, hostIp: p.hostIp, host: p.host, containerIp: e.ip, container: p.container }))),
    };
  }

  /** The /etc/hosts of a container: its addresses, its peers on user networks, its extra hosts. */
  #hostsFor(containerId: string, state: NetworkState): string {
    return hostsFileFor(containerId, state.networks, state.endpoints);
  }

  /** Rewrites /etc/hosts in every running container on `networkIds` (peers came or went). */
  async #refreshHosts(networkIds: readonly string[]): Promise<void> {
    const state = await this.store.read();
    const nets = new Set(networkIds.filter((id) => !state.networks.find((n) => n.id === id)?.isDefault));
    if (nets.size === 0) return;
    const done = new Set<string>();
    for (const e of state.endpoints.endpoints) {
      if (!nets.has(e.networkId) || !e.pid || done.has(e.containerId)) continue;
      done.add(e.containerId);
      writeContainerFile(e.pid, 'etc/hosts', hostsFileFor(e.containerId, state.networks, state.endpoints));
    }
  }

  #emitEndpoint(kind: 'connect' | 'disconnect', rec: NetworkRecord, e: EndpointRecord): void {
    const event: NetworkEndpointEvent = { containerId: e.containerId, name: e.name || e.hostname, ip: e.ip };
    const n = this.#objects.get(rec.id) ?? this.#object(rec);
    n.emit(kind, event);
    this.emit(kind, { network: n, ...event });
  }
}

/**
 * UDP has no connection setup: a client that sent to a port before it was published (or to a
 * container that is gone) keeps its conntrack entry, and with it the old NAT decision, while
 * it keeps sending. Flushing those entries makes the next datagram take the current rules.
 */
async function flushUdp(binding: NativeBinding, ports: readonly PublishedPort[]): Promise<void> {
  for (const p of ports) {
    if (p.protocol !== 'udp') continue;
    try {
      await binding.netFlushConntrack({ protocol: 'udp', port: p.host });
    } catch (error) {
      throw fromNativeError(error);
    }
  }
}

/** @internal Builds a container's /etc/hosts from the state (exported for tests). */
export function hostsFileFor(containerId: string, networks: readonly NetworkRecord[], table: EndpointTable): string {
  const mine = table.endpoints.filter((e) => e.containerId === containerId) as StoredEndpoint[];
  const self: HostsEntry[] = mine.map((e) => ({ ip: e.ip, names: [e.hostname, ...(e.name ? [e.name] : []), ...e.aliases] }));
  const userNets = new Set(mine.filter((e) => !networks.find((n) => n.id === e.networkId)?.isDefault).map((e) => e.networkId));
  const peers: HostsEntry[] = [];
  const seen = new Set(mine.map((e) => e.ip + e.networkId));
  for (const e of table.endpoints) {
    if (e.containerId === containerId || !userNets.has(e.networkId) || seen.has(e.ip + e.networkId) || !isLive(e)) continue;
    seen.add(e.ip + e.networkId);
    peers.push({ ip: e.ip, names: [...(e.name ? [e.name] : []), e.hostname, ...e.aliases] });
  }
  return renderHosts(self, peers, mine[0]?.extraHosts ?? []);
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

/** Validates network aliases (DNS labels). */
export function checkAliases(aliases: unknown, option: string): string[] {
  if (aliases === undefined) return [];
  if (!Array.isArray(aliases)) throw new ValidationError(option, 'must be an array of names');
  return aliases.map((a: unknown, i) => {
    if (typeof a !== 'string' || !/^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62})$/.test(a)) {
      throw new ValidationError(`${option}[${i}]`, `${JSON.stringify(a)} is not a valid host name`);
    }
    return a;
  });
}
