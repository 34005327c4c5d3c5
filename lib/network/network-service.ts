/**
 * `rt.networks`: bridge networks over one state directory, shared safely by every process
 * that opens it. Every change holds the `networks` lock, re-reads the state, and then makes
 * the kernel match it (bridge, veths, packet-filter rules); see `network-store.ts` for the
 * layout and `docs/design/networks.md` for the design.
 * @module
 */
import { closeSync } from 'node:fs';
import { EventEmitter } from 'eventemitter3';
import { acquireFileLock } from '../state/lock.js';
import { identityOf, type ProcessIdentity } from '../state/process-identity.js';
import { ConflictError, NotFoundError, UnsupportedError, ValidationError } from '../errors.js';
import { fromNativeError, native, type NativeBinding, type NativeNetInterface } from '../native.js';
import { deleteLink, ensureBridge, rootTag } from './bridge-driver.js';
import { parseIpv4 } from './cidr.js';
import { detectFirewall, requireFirewall } from './firewall.js';
import { hostSubnetLockPath } from './ipam.js';
import { Network, type ConnectableContainer, type ConnectOptions, type NetworkEndpointEvent } from './network.js';
import { NetworkStore, type EndpointRecord, type NetworkRecord, type NetworkState } from './network-store.js';
import { removeNameDir, removeNameFile, tellResolvers, writeNameFile } from './dns-names.js';
import { DEFAULT_NETWORK, EndpointLeases, type StoredEndpoint } from './endpoint-leases.js';
import { findNetwork, isLive, refName } from './network-records.js';
import { planNetworkRecord } from './network-record-plan.js';
import { reconcileNetworks, type NetworkReconcileReport } from './network-reconcile.js';
import type { NetworkCreateOptions, NetworkInspect, NetworkRef } from './types.js';
import { isRootless } from '../rootless/index.js';
import { createRootlessRecord, removeRootlessBridge, removeRootlessLinks } from './rootless-networks.js';

export { DEFAULT_NETWORK, hostsFileFor, type Attached, type AttachmentRequest, type AttachRequest } from './endpoint-leases.js';
export { isLive } from './network-records.js';
export type { NetworkReconcileReport } from './network-reconcile.js';

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

/** A running container whose network namespace another container may join. */
export interface NetnsHolder {
  id: string;
  pid: ProcessIdentity;
}

/** Finds a running container by id, id prefix or name. */
export type ContainerResolver = (ref: string) => Promise<NetnsHolder | undefined>;


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
  /** @internal The leases of this runtime's containers (endpoint-leases.ts). */
  readonly leases: EndpointLeases;

  /** @param options.native the native core (default: the addon); unit tests pass the recording fake. */
  constructor(root: string, options: { native?: NativeBinding } = {}) {
    super();
    this.#native = options.native;
    this.root = root;
    this.tag = rootTag(root);
    this.store = new NetworkStore(root);
    this.leases = new EndpointLeases({
      store: this.store,
      tag: this.tag,
      binding: () => this.#binding(),
      ready: () => this.ready(),
      createDefault: (state) => this.#createLocked(state, { name: DEFAULT_NETWORK }, true),
      emitEndpoint: (kind, rec, e) => this.#emitEndpoint(kind, rec, e),
    });
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
    // Without root the bridge lives in this process's rootless namespace, made on first use.
    if (isRootless()) return createRootlessRecord(this.store, state, o, isDefault);
    // Other roots see this network only through the route its bridge adds: from reading the
    // routes to that route existing, no other root may choose a subnet.
    const hostLock = await acquireFileLock(hostSubnetLockPath(), { what: 'the host-wide subnet lock', timeoutMs: 60_000 });
    try {
      return await this.#createWithHostLock(state, o, isDefault);
    } finally {
      hostLock.release();
    }
  }

  async #createWithHostLock(state: NetworkState, o: NetworkCreateOptions, isDefault: boolean): Promise<NetworkRecord> {
    const rec = planNetworkRecord(state, o, isDefault);
    const fw = await requireFirewall();
    await this.store.writeNetwork(rec);
    try {
      await ensureBridge(rec, this.tag);
      state.networks.push(rec);
      await fw.apply(this.leases.firewallModel(state));
    } catch (error) {
      state.networks = state.networks.filter((n) => n.id !== rec.id);
      await this.store.deleteNetwork(rec.id);
      await deleteLink(rec.bridge).catch(() => false);
      await fw.apply(this.leases.firewallModel(state)).catch(() => {});
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
    // Its resolver, if one still runs, sees the directory go and exits with no member.
    removeNameDir(this.store, rec.id);
    state.networks = state.networks.filter((n) => n.id !== rec.id);
    if (isRootless()) return removeRootlessBridge(state, rec);
    const fw = await detectFirewall();
    await fw?.apply(this.leases.firewallModel(state));
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
   * if it runs (a new interface `eth<n>`, its name file for the peers, and its own resolver
   * told its networks).
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
    if (running && isRootless()) {
      // Its veth would come from this process's rootless namespace helper, which makes them
      // only between a launch's clone and "go" (rootless-attach.ts).
      throw new UnsupportedError(`container ${container.name} is running: without root a container joins a network when it starts; connect it while stopped, then start it`);
    }
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
        const made = this.leases.makeEndpoint(state, rec, {
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
        // Its peers resolve it from now on. Its own lookups of this network's names need a
        // resolver that knows the network: one it started with (see docs/design/networks.md).
        if (!rec.isDefault) writeNameFile(this.store, endpoint);
        await this.leases.ensureBridges([rec]);
        try {
          const pidfd = this.#binding().pidfdOpen(running.pid);
          try {
            await this.#binding().netAttach({ pid: running.pid, pidfd, interfaces: [nic] });
          } finally {
            closeSync(pidfd);
          }
        } catch (error) {
          state.endpoints.endpoints = state.endpoints.endpoints.filter((e) => e.id !== endpoint!.id);
          removeNameFile(this.store, rec.id, container.id);
          await this.store.writeEndpoints(state.endpoints);
          throw fromNativeError(error);
        }
        if (!rec.isDefault) await this.#tellResolver(state, container.id, [rec]);
      }
      rec.members[container.id] = { name: container.name, aliases, ...(options.ip !== undefined ? { ip: options.ip } : {}) };
      await this.store.writeNetwork(rec);
      return { rec, endpoint };
    });
    if (result.endpoint) this.#emitEndpoint('connect', result.rec, result.endpoint);
  }

  /**
   * A running container's user networks changed: the resolver serving it learns them (its
   * own lookups follow its networks, as Docker's embedded DNS). Its lease and interface are
   * made already, so a resolver that cannot be told is a process warning, not a failed call.
   */
  async #tellResolver(state: NetworkState, containerId: string, changed: readonly NetworkRecord[]): Promise<void> {
    const now: NetworkRecord[] = [];
    for (const e of state.endpoints.endpoints) {
      if (e.containerId !== containerId || !isLive(e)) continue;
      const n = state.networks.find((x) => x.id === e.networkId);
      if (n && !n.isDefault && !now.includes(n)) now.push(n);
    }
    try {
      await tellResolvers(this.#binding(), this.tag, containerId, [...now, ...changed.filter((c) => !now.includes(c))], now);
    } catch (error) {
      process.emitWarning(`berth: the DNS resolver of container ${containerId} could not learn its networks: ${(error as Error).message}`, { code: 'BERTH_DNS' });
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
        for (const e of endpoints) removeNameFile(this.store, e.networkId, e.containerId);
        await this.store.writeEndpoints(state.endpoints);
        if (endpoints.some((e) => e.ports.length > 0)) await (await detectFirewall())?.apply(this.leases.firewallModel(state));
        // The container lives on: its interface must go now, not with its namespace.
        if (isRootless()) await removeRootlessLinks(endpoints.map((e) => e.hostIfname));
        else for (const e of endpoints) await deleteLink(e.hostIfname).catch(() => false);
        if (!rec.isDefault && endpoints.some((e) => e.pid && isLive(e))) await this.#tellResolver(state, endpoints[0]!.containerId, [rec]);
      }
      return { rec, endpoints };
    });
    for (const e of result.endpoints) this.#emitEndpoint('disconnect', result.rec, e);
  }

  /** @internal Forgets a removed container: its connections and any lease it still had. */
  async forgetContainer(containerId: string): Promise<void> {
    await this.ready();
    await this.store.locked(async (state) => {
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
        for (const e of gone) removeNameFile(this.store, e.networkId, e.containerId);
        await this.store.writeEndpoints(state.endpoints);
        if (gone.some((e) => e.ports.length > 0)) await (await detectFirewall())?.apply(this.leases.firewallModel(state));
        nets.push(...gone.map((e) => e.networkId));
      }
      return nets;
    });
  }

  /**
   * @internal Releases every lease `containerId` still holds: its run ended, whoever noticed
   * (the supervising process, or a reconciliation in any process for a crashed owner or a
   * detached container). Covers endpoints added by `connect()` while it ran. Idempotent.
   */
  async releaseContainer(containerId: string): Promise<void> {
    const { networks, endpoints } = await this.store.read();
    const mine = endpoints.endpoints.filter((e) => e.containerId === containerId);
    if (mine.length > 0) await this.leases.release({ endpoints: mine, networks });
  }

  /** Docker's `NetworkSettings` of a container from its live endpoints. */
  async settingsFor(containerId: string, snapshot?: NetworkState): Promise<ContainerNetworkSettings> {
    const { networks, endpoints } = snapshot ?? (await this.store.read());
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

  /**
   * Drops stale leases, re-applies the rules, and deletes this runtime's links that nothing
   * accounts for (bridges of removed networks, veths of containers that are gone).
   */
  reconcile(): Promise<NetworkReconcileReport> {
    return reconcileNetworks(this.store, this.tag, this.#binding(), this.leases);
  }

  /** The native core: the one given to the constructor (unit tests: the fake), or the addon. */
  #binding(): NativeBinding {
    return this.#native ?? native();
  }

  #emitEndpoint(kind: 'connect' | 'disconnect', rec: NetworkRecord, e: EndpointRecord): void {
    const event: NetworkEndpointEvent = { containerId: e.containerId, name: e.name || e.hostname, ip: e.ip };
    const n = this.#objects.get(rec.id) ?? this.#object(rec);
    n.emit(kind, event);
    this.emit(kind, { network: n, ...event });
  }
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
