/**
 * A launch's network, between the options and the native spawn: which networks, which
 * addresses, which ports, the container's /etc/hosts and /etc/resolv.conf, and the interfaces
 * the native core creates between clone() and "go". Shared by `run()` and containers.
 *
 * Order in `launch()`: `prepareNetwork()` (leases, ports, rules) → plan → spawn →
 * `started(pid)` (the lease now follows the container's PID 1) → … exit → `release()`.
 * The veth pair needs no release: it dies with the container's network namespace.
 * @module
 */
import { closeSync, constants as FS, openSync } from 'node:fs';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { NativeNetInterface } from '../native.js';
import { isAlive, identityOf } from '../state/process-identity.js';
import { readContainerFile } from './container-files.js';
import { renderHosts, type HostsEntry } from './etc-files.js';
import type { NormalizedNetworkOptions } from './network-options.js';
import { DEFAULT_NETWORK, isLive, type NetnsHolder, type NetworkService } from './network-service.js';
import type { EndpointRecord } from './network-store.js';
import type { PublishedPort } from './types.js';

/** How a container is networked, from its options. */
export type NetworkKind = 'none' | 'host' | 'container' | 'bridge';

/** The kind of network the options ask for (`run()`'s default is `none`). */
export function networkKind(o: Pick<NormalizedNetworkOptions, 'network' | 'networks'>): NetworkKind {
  const n = o.network;
  if (n === 'none' || n === 'host') return n;
  if (n?.startsWith('container:')) return 'container';
  if (n !== undefined) return 'bridge';
  return o.networks && o.networks.length > 0 ? 'bridge' : 'none';
}

export interface NetworkLaunchRequest {
  /** The launch's id (names its cgroup); identifies a `run()` container on its networks. */
  launchId: string;
  /** The launch's normalized options; only the networking ones (and `hostname`) are read. */
  options: NormalizedNetworkOptions & { hostname?: string };
  /**
   * The runtime's networks, which resolve the names in the options (see `networkServiceOf` for
   * `Network` objects); required for bridge and `container:` networking.
   */
  networks?: NetworkService;
  /** Set for containers of `rt.containers`: their id and name (peers resolve the name). */
  container?: { id: string; name: string };
}

/** What the plan and the launcher need; see the module comment for the order of calls. */
export interface PreparedNetwork {
  /** `usermode`: a rootless container's own namespace served by pasta or slirp4netns (usermode-attach.ts). */
  kind: 'bridge' | 'container' | 'usermode';
  hostname?: string;
  files: { hosts: string; resolvConf: string };
  interfaces: NativeNetInterface[];
  /** On a user network: the resolver that gets the container's DNS socket before "go". */
  dns?: { control: string; message: string };
  /** `container:<id>`: a descriptor of the target's network namespace, for the child's setns(). */
  netnsFd?: number;
  /** The published ports, host ports chosen. */
  ports: PublishedPort[];
  /** @internal */
  endpoints: EndpointRecord[];
  /** Closes descriptors the spawn no longer needs. */
  closeFds(): void;
  /**
   * Set up the network of the child `pid` while it waits for "go" (the native spawn's
   * `beforeGo`): the first instruction of the container already has it. A rejection abandons
   * the launch (the child is killed) and is the launch's error.
   */
  beforeGo?(pid: number): Promise<void>;
  /** `usermode` only: the stack and what it publishes (usermode-attach.ts). */
  usermode?: { stack: 'pasta' | 'slirp4netns'; path: string; ports: PublishedPort[]; hostLoopback: boolean };
  /**
   * Never rejects (the container already runs); a failure is a process warning. `monitorPid`:
   * a detached container's monitor, which the lease then follows across restarts.
   */
  started(pid: number, monitorPid?: number): Promise<void>;
  /** Idempotent. */
  release(): Promise<void>;
}

/**
 * Finds the container named by `container:<ref>`: through the runtime's containers, else among
 * the live endpoints of the runtime's networks (a `run()` container, or one of another process).
 */
async function findHolder(service: NetworkService, ref: string): Promise<NetnsHolder | undefined> {
  const resolved = await service.resolveContainer(ref);
  if (resolved) return resolved;
  const { endpoints } = await service.store.read();
  const live = endpoints.endpoints.filter((e) => e.pid && isLive(e));
  const hit =
    live.find((e) => e.containerId === ref) ??
    live.find((e) => e.name === ref) ??
    (ref.length >= 4 ? live.find((e) => e.containerId.startsWith(ref)) : undefined) ??
    live.find((e) => e.hostname === ref);
  return hit ? { id: hit.containerId, pid: hit.pid! } : undefined;
}

async function prepareJoin(req: NetworkLaunchRequest, service: NetworkService): Promise<PreparedNetwork> {
  const o = req.options;
  const ref = o.network!.slice('container:'.length);
  const holder = await findHolder(service, ref);
  if (!holder) throw new NotFoundError(`network: container ${ref} is not running (or not found)`, { option: 'network' });
  let fd: number;
  try {
    fd = openSync(`/proc/${holder.pid.pid}/ns/net`, FS.O_RDONLY);
  } catch {
    throw new ConflictError(`network: container ${ref} exited`);
  }
  // Opened, then checked: if the pid was recycled in between, the identity no longer matches.
  if (!isAlive(holder.pid)) {
    closeSync(fd);
    throw new ConflictError(`network: container ${ref} exited`);
  }
  const hosts = readContainerFile(holder.pid, 'etc/hosts') ?? renderHosts([], [], []);
  const resolvConf = readContainerFile(holder.pid, 'etc/resolv.conf') ?? '';
  let open = true;
  return {
    kind: 'container',
    files: { hosts, resolvConf },
    interfaces: [],
    netnsFd: fd,
    ports: [],
    endpoints: [],
    closeFds: () => {
      if (open) closeSync(fd);
      open = false;
    },
    started: async () => {},
    release: async () => {},
  };
}

/**
 * Leases addresses, claims ports and installs their rules for a launch; undefined for
 * `none`/`host`. On failure nothing is left held.
 * @throws NotFoundError for an unknown network or `container:` target; ConflictError for a
 *   host port in use or an address taken; ValidationError for options that contradict the
 *   network (ports on an internal network…).
 */
export async function prepareNetwork(req: NetworkLaunchRequest): Promise<PreparedNetwork | undefined> {
  const o = req.options;
  const kind = networkKind(o);
  if (kind === 'none' || kind === 'host') return undefined;
  const attachments: Array<{ network: string; aliases: string[]; ip?: string }> = [];
  if (o.network !== undefined && kind === 'bridge') attachments.push({ network: o.network, aliases: [] });
  for (const a of o.networks ?? []) attachments.push({ network: a.network, aliases: a.aliases ?? [], ...(a.ip !== undefined ? { ip: a.ip } : {}) });
  const service = req.networks;
  // run() and Runtime.run() pass their runtime's networks whenever the options name one.
  if (!service) throw new ValidationError('network', `"${o.network ?? o.networks![0]!.network}" names a network or container of a runtime: run it through a Runtime`);
  if (kind === 'container') return prepareJoin(req, service);

  const hostname = o.hostname ?? req.launchId.slice(0, 12);
  const attached = await service.leases.attach({
    container: req.container ?? { id: req.launchId, name: '' },
    hostname,
    attachments: attachments.length > 0 ? attachments : [{ network: DEFAULT_NETWORK, aliases: [] }],
    ports: o.ports ?? [],
    ...(o.dns ? { dns: o.dns } : {}),
    extraHosts: (o.extraHosts ?? []).map((h): HostsEntry => ({ ip: h.ip, names: [h.host] })),
  });
  let released: Promise<void> | undefined;
  let starting: Promise<void> | undefined;
  return {
    kind: 'bridge',
    hostname,
    files: { hosts: attached.hostsFile, resolvConf: attached.resolvConf },
    interfaces: attached.interfaces,
    ...(attached.dns ? { dns: attached.dns } : {}),
    ports: attached.ports,
    endpoints: attached.endpoints,
    closeFds: () => {},
    started: (pid, monitorPid) => {
      // A detached PID 1 may be gone already (a crash the monitor restarts): the monitor holds the lease then.
      if (!identityOf(pid) && monitorPid === undefined) return Promise.resolve();
      // The container already runs: a failure here must not fail its start. Until its pid is
      // recorded, the lease follows the process that made it, and peers learn its name later.
      starting = service.leases.started(attached, pid, monitorPid).catch((error: unknown) => {
        process.emitWarning(`berth: recording the network endpoints of a started container failed: ${(error as Error).message}`, { code: 'BERTH_NETWORK_STARTED' });
      });
      return starting;
    },
    release: () => {
      released ??= (async () => {
        await starting?.catch(() => {});
        await service.leases.release(attached);
      })();
      return released;
    },
  };
}
