/**
 * A rootless container on user networks (`network: '<name>'`, `networks: [...]`): leases as
 * rootful (addresses, name files, the state under the user's state dir), the kernel work in
 * this process's rootless network namespace (rootless-netns.ts).
 *
 * Order in `launch()`: `prepareRootlessNetwork()` (leases, bridges, rules, resolver) → plan
 * (no interface for the native spawn: its netlink would run in the host's namespace, where the
 * user may not) → spawn → `beforeGo(pid)`: the helper makes each veth from its bridge into the
 * child's namespace and hands the resolver the child's DNS socket, and published ports get
 * their forwarder (rootless-ports.ts), while the child waits for "go" (so its first
 * instruction has all of them) → `started(pid)` → … exit → `release()` (the forwarder ends
 * before the address is released). The veth dies with the container's namespace.
 * @module
 */
import { readFileSync } from 'node:fs';
import { NotFoundError, UnsupportedError, ValidationError } from '../errors.js';
import { leaseHeldUserns, rootlessIdMaps } from '../rootless/index.js';
import type { PreparedNetwork } from './attach.js';
import { bridgeAlias } from './bridge-driver.js';
import { RESOLVER_ADDRESS, controlName, handOverMessage, removeNameFile, writeNameFile } from './dns-names.js';
import { renderResolvConf, type HostsEntry } from './etc-files.js';
import type { NormalizedNetworkOptions } from './network-options.js';
import { findNetwork, isLive, refName } from './network-records.js';
import { claimHostPorts } from './ports.js';
import { hostsFileFor, type StoredEndpoint } from './endpoint-leases.js';
import type { NetworkService } from './network-service.js';
import type { NetworkRecord } from './network-store.js';
import { rulesOf } from './rootless-net-rules.js';
import { rootlessNetnsFor, type RootlessInterface, type RootlessNetns } from './rootless-netns.js';
import { startRootlessPortForwarder, type RootlessPortForwarder } from './rootless-ports.js';
import { HOST_LOOPBACK_NAME, USERMODE_NETWORK_NAMES } from './usermode-attach.js';

/** Whether a rootless launch names user networks (not its own user-mode network). */
export function wantsRootlessUserNetwork(o: Pick<NormalizedNetworkOptions, 'network' | 'networks'>): boolean {
  if ((o.networks?.length ?? 0) > 0) return true;
  const n = o.network;
  return n !== undefined && n !== 'none' && n !== 'host' && !n.startsWith('container:') && !USERMODE_NETWORK_NAMES.has(n);
}

export interface RootlessNetworkRequest {
  launchId: string;
  options: NormalizedNetworkOptions & { hostname?: string; userns?: unknown };
  networks?: NetworkService;
  container?: { id: string; name: string };
}

function readHostResolvConf(): string | undefined {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Leases the launch's addresses on its user networks and makes the networks exist in this
 * process's rootless namespace. On failure nothing is left held.
 * @throws UnsupportedError for what rootless user networks cannot do (explicit `userns` maps,
 *   a user-mode network name mixed in); NotFoundError for an unknown network; ConflictError
 *   for a taken address or host port; ValidationError for a `hostIp` off the host's loopback
 *   or ports on an internal network.
 */
export async function prepareRootlessNetwork(req: RootlessNetworkRequest): Promise<PreparedNetwork> {
  const o = req.options;
  const service = req.networks;
  const first = o.network ?? o.networks![0]!.network;
  if (!service) throw new ValidationError('network', `"${first}" names a network of a runtime: run it through a Runtime`);
  if (o.network !== undefined && USERMODE_NETWORK_NAMES.has(o.network)) {
    throw new UnsupportedError(`network: "${o.network}" is the container's own user-mode network; without root it cannot be combined with user networks (networks: ${o.networks!.map((a) => a.network).join(', ')})`, { option: 'network' });
  }
  (o.ports ?? []).forEach((p, i) => {
    // The forwarder binds the host port as the user: reachable from this host only, as for a
    // container's own user-mode network (usermode-attach.ts).
    if (!p.hostIp.startsWith('127.')) throw new ValidationError(`ports[${i}].hostIp`, `without root ports are published on the host's loopback only (127.0.0.0/8), got ${p.hostIp}`);
  });
  if (o.userns !== undefined) {
    throw new UnsupportedError('userns: a container with its own id maps has a user namespace of its own, which the rootless networks\' namespace has no power over; leave userns unset', { option: 'userns' });
  }
  // Unknown names first: nothing is started for a launch that cannot happen.
  await service.ready();
  const known = (await service.store.read()).networks;
  const attachRefs = [...(o.network !== undefined ? [o.network] : []), ...(o.networks ?? []).map((a) => a.network)];
  attachRefs.forEach((ref, i) => {
    if (!findNetwork(known, ref)) throw new NotFoundError(`network ${refName(ref)} not found`, { option: i === 0 && o.network !== undefined ? 'network' : 'networks' });
  });
  // The namespace the container will be created in (the launcher leases the same one).
  const userns = await leaseHeldUserns(rootlessIdMaps(process.geteuid!(), process.getegid!()));
  let netns: RootlessNetns;
  try {
    netns = await rootlessNetnsFor(userns);
  } finally {
    userns.release();
  }

  const attachments: Array<{ network: string; aliases: string[]; ip?: string }> = [];
  if (o.network !== undefined) attachments.push({ network: o.network, aliases: [] });
  for (const a of o.networks ?? []) attachments.push({ network: a.network, aliases: a.aliases ?? [], ...(a.ip !== undefined ? { ip: a.ip } : {}) });
  const container = req.container ?? { id: req.launchId, name: '' };
  const hostname = o.hostname ?? req.launchId.slice(0, 12);
  const hostAddress = o.hostLoopback === true ? netns.hostAddress : null;
  if (o.hostLoopback === true && !hostAddress) throw new UnsupportedError("hostLoopback: the rootless networks' stack has no address that leads to the host's loopback (no default gateway on this host)", { option: 'hostLoopback' });
  const extraHosts: HostsEntry[] = (o.extraHosts ?? []).map((h) => ({ ip: h.ip === 'host-gateway' && hostAddress ? hostAddress : h.ip, names: [h.host] }));
  if (hostAddress) extraHosts.unshift({ ip: hostAddress, names: [HOST_LOOPBACK_NAME] });

  await service.ready();
  const made = await service.store.locked(async (state) => {
    const targets: Array<{ rec: NetworkRecord; aliases: string[]; ip?: string }> = [];
    for (const [i, a] of attachments.entries()) {
      const rec = findNetwork(state.networks, a.network);
      if (!rec) throw new NotFoundError(`network ${refName(a.network)} not found`, { option: i === 0 && o.network !== undefined ? 'network' : 'networks' });
      if (targets.some((t) => t.rec.id === rec.id)) throw new ValidationError('networks', `network ${rec.name} is given twice`);
      targets.push({ rec, aliases: a.aliases, ...(a.ip !== undefined ? { ip: a.ip } : {}) });
    }
    for (const rec of state.networks) {
      const m = rec.members[container.id];
      if (m && !targets.some((t) => t.rec.id === rec.id)) targets.push({ rec, aliases: m.aliases, ...(m.ip !== undefined ? { ip: m.ip } : {}) });
    }
    const wanted = o.ports ?? [];
    // As rootful (endpoint-leases.ts): an internal network has no way to the host, published
    // ports included.
    if (wanted.length > 0 && targets[0]!.rec.internal) throw new ValidationError('ports', `network ${targets[0]!.rec.name} is internal: nothing can be published from it`);
    const gatewayOn = targets.findIndex((t) => !t.rec.internal);
    const out: Array<{ endpoint: StoredEndpoint; nic: RootlessInterface }> = [];
    for (const [i, t] of targets.entries()) {
      const m = service.leases.makeEndpoint(state, t.rec, {
        container,
        hostname,
        aliases: t.aliases,
        ...(t.ip !== undefined ? { ip: t.ip } : {}),
        ifname: `eth${i}`,
        gateway: i === gatewayOn,
        ports: [],
        extraHosts,
      });
      state.endpoints.endpoints.push(m.endpoint);
      const nic: RootlessInterface = {
        hostIfname: m.nic.hostIfname,
        bridge: m.nic.bridge,
        ifname: m.nic.ifname,
        address: m.nic.addresses[0]!,
        ...(m.nic.gateway ? { gateway: m.nic.gateway } : {}),
        ...(m.nic.mtu ? { mtu: m.nic.mtu } : {}),
        mac: m.nic.mac ?? '-',
        alias: m.nic.alias ?? '-',
      };
      out.push({ endpoint: m.endpoint, nic });
    }
    if (wanted.length > 0) {
      try {
        // Checked and chosen here (a taken port is a ConflictError before anything starts);
        // the forwarder binds them before "go" (a race with another binder is its error then).
        const others = state.endpoints.endpoints.filter((e) => isLive(e) && !out.some((m) => m.endpoint === e)).flatMap((e) => e.ports);
        out[0]!.endpoint.ports = await claimHostPorts(wanted, others);
      } catch (error) {
        state.endpoints.endpoints = state.endpoints.endpoints.filter((e) => !out.some((m) => m.endpoint === e));
        throw error;
      }
    }
    await service.store.writeEndpoints(state.endpoints);
    const recs = targets.map((t) => t.rec);
    try {
      for (const m of out) writeNameFile(service.store, m.endpoint);
      for (const rec of recs) await netns.bridge(rec, bridgeAlias(service.tag, rec.id));
      if (hostAddress) for (const m of out) netns.grantHostLoopback(m.endpoint.ip, m.nic.bridge, m.nic.hostIfname);
      await netns.applyRules(rulesOf(state));
      // Under the lock: a resolver exits only under it, and only with no name file left.
      const control = controlName(service.tag, recs[0]!.id);
      await netns.resolver(service.store.root, recs[0]!.id, control);
      return {
        endpoints: out.map((m) => m.endpoint),
        nics: out.map((m) => m.nic),
        networks: recs,
        hosts: hostsFileFor(container.id, state.networks, state.endpoints),
        dns: { control, message: handOverMessage(container.id, recs, o.dns ?? (netns.dnsForwarder ? [netns.dnsForwarder] : undefined)) },
      };
    } catch (error) {
      for (const m of out) await netns.revokeHostLoopback(m.endpoint.ip).catch(() => {});
      state.endpoints.endpoints = state.endpoints.endpoints.filter((e) => !out.some((m) => m.endpoint === e));
      for (const m of out) removeNameFile(service.store, m.endpoint.networkId, m.endpoint.containerId);
      await service.store.writeEndpoints(state.endpoints);
      throw error;
    }
  });

  let starting: Promise<void> | undefined;
  let released: Promise<void> | undefined;
  let forwarding: Promise<RootlessPortForwarder> | undefined;
  const published = made.endpoints[0]!.ports;
  const attached = { endpoints: made.endpoints, networks: made.networks };
  return {
    // The plan treats it as a bridge network (own netns, loopback up); no native interfaces.
    kind: 'bridge',
    hostname,
    files: { hosts: made.hosts, resolvConf: renderResolvConf(readHostResolvConf(), [RESOLVER_ADDRESS]) },
    interfaces: [],
    ports: published,
    endpoints: made.endpoints,
    closeFds: () => {},
    beforeGo: async (pid) => {
      if (released) throw new ValidationError('network', 'the launch was released before its network started');
      for (const nic of made.nics) await netns.attach(pid, nic);
      await netns.dns(pid, made.dns.control, made.dns.message);
      if (published.length > 0) {
        if (released) throw new ValidationError('network', 'the launch was released before its ports were published');
        forwarding = startRootlessPortForwarder(netns.pid, made.endpoints[0]!.ip, published);
        await forwarding;
      }
    },
    started: (pid, monitorPid) => {
      starting = service.leases.started(attached, pid, monitorPid).catch((error: unknown) => {
        process.emitWarning(`berth: recording the network endpoints of a started container failed: ${(error as Error).message}`, { code: 'BERTH_NETWORK_STARTED' });
      });
      return starting;
    },
    release: () => {
      released ??= (async () => {
        await starting?.catch(() => {});
        // The forwarder goes before the address can be leased to another container, which it
        // would otherwise reach; its host sockets close with it.
        await (await forwarding?.catch(() => undefined))?.stop();
        // The grant goes before the address can be leased to another container.
        if (hostAddress) for (const e of made.endpoints) await netns.revokeHostLoopback(e.ip).catch(() => {});
        await service.leases.release(attached);
      })();
      return released;
    },
  };
}
