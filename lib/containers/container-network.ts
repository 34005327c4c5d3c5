/**
 * A container's networks as the container layer sees them (docs/design/networks.md): the
 * release of a finished run's leases, the removal of its connections, Docker's
 * `NetworkSettings` for `inspect()` and the bindings `port()` reports.
 *
 * Leases are made at each start by the launcher (`prepareNetwork`) and follow the container's
 * PID 1, so a lease of a dead container is stale for everyone at once; releasing it explicitly
 * also takes its published ports out of the packet filter and its name out of its peers'
 * `/etc/hosts`. Only bridge-mode containers can hold leases (`none`, `host` and `container:`
 * cannot be connected), so the others never touch the network state.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { ContainerConfig } from '../image/manifest.js';
import { networkKind } from '../network/attach.js';
import type { NetworkService } from '../network/network-service.js';
import type { NetworkRecord, NetworkState } from '../network/network-store.js';
import type { ContainerRecord, ContainerState } from './container-record.js';

/** One network of a container in `inspect().NetworkSettings.Networks` (Docker's `EndpointSettings`). */
export interface EndpointSettings {
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  MacAddress: string;
  Aliases: string[] | null;
}

/** `inspect().NetworkSettings`: Docker's shape. */
export interface NetworkSettings {
  /** By network name; addresses are empty while the container is not running. */
  Networks: Record<string, EndpointSettings>;
  /** `"8080/tcp"` → its bindings while running; exposed but unpublished ports map to `null`. */
  Ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null>;
  /** Docker's legacy fields: those of the default `bridge` network, empty on other networks. */
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
}

/** One published binding of a container port, as `docker port` prints it. */
export interface PortBinding {
  hostIp: string;
  hostPort: number;
}

export function usesBridge(record: Pick<ContainerRecord, 'options'>): boolean {
  return networkKind(record.options) === 'bridge';
}

/** The networks the options name, in order (the primary first). */
function configuredRefs(record: Pick<ContainerRecord, 'options'>): Array<{ ref: string; aliases: string[] }> {
  const o = record.options;
  const out: Array<{ ref: string; aliases: string[] }> = [];
  if (o.network !== undefined && networkKind({ network: o.network }) === 'bridge') out.push({ ref: o.network, aliases: [] });
  for (const a of o.networks ?? []) out.push({ ref: a.network, aliases: a.aliases ?? [] });
  return out;
}

function findRecord(networks: readonly NetworkRecord[], ref: string): NetworkRecord | undefined {
  return networks.find((n) => n.id === ref) ?? networks.find((n) => n.name === ref) ?? (/^[0-9a-f]+$/.test(ref) ? networks.filter((n) => n.id.startsWith(ref)).at(0) : undefined);
}

/** Releases what the container's last run still holds on its networks. */
export async function releaseContainerNetwork(networks: NetworkService, record: ContainerRecord): Promise<void> {
  if (usesBridge(record)) await networks.releaseContainer(record.id);
}

/** A removed container: its leases and its `connect()` memberships go. */
export async function forgetContainerNetwork(networks: NetworkService, record: ContainerRecord): Promise<void> {
  if (usesBridge(record)) await networks.forgetContainer(record.id);
}

function exposedKeys(record: ContainerRecord, image: ContainerConfig | undefined): string[] {
  const keys = new Set<string>(Object.keys(image?.ExposedPorts ?? {}));
  for (const p of record.options.exposedPorts ?? []) keys.add(`${p.port}/${p.protocol}`);
  for (const p of record.options.ports ?? []) keys.add(`${p.container}/${p.protocol}`);
  return [...keys];
}

/** `Config.ExposedPorts`: the image's, `exposedPorts` and the published ports, Docker's `{ "80/tcp": {} }`. */
export function exposedPortsOf(record: ContainerRecord): Record<string, Record<string, never>> {
  return Object.fromEntries(exposedKeys(record, record.imageConfig).map((k) => [k, {}]));
}

/** Docker's `NetworkSettings` of the container: live endpoints while it runs, its configured networks otherwise. */
/**
 * The container's `NetworkSettings`. `snapshot`: the network state as read once by the caller
 * (`list()` shows every container from one read instead of one read per container).
 */
export async function networkSettingsOf(networks: NetworkService, record: ContainerRecord, running: boolean, snapshot?: () => Promise<NetworkState>, userMode?: ContainerState['userModeNetwork']): Promise<NetworkSettings> {
  const out: NetworkSettings = { Networks: {}, Ports: {}, IPAddress: '', IPPrefixLen: 0, Gateway: '', MacAddress: '' };
  const kind = networkKind(record.options);
  const blank = (): EndpointSettings => ({ NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '', Aliases: null });
  if (kind === 'none' || kind === 'host') {
    out.Networks[kind] = blank();
    return out;
  }
  if (userMode) {
    // A rootless run's own namespace and stack: no lease, the state has what it published.
    out.Networks[record.options.network ?? 'bridge'] = blank();
    if (running) {
      for (const key of exposedKeys(record, record.imageConfig)) out.Ports[key] = null;
      for (const p of userMode.ports) (out.Ports[`${p.container}/${p.protocol}`] ??= [])!.push({ HostIp: p.hostIp, HostPort: String(p.host) });
    }
    return out;
  }
  if (kind === 'container') return out;
  if (running) {
    const live = await networks.settingsFor(record.id, snapshot ? await snapshot() : undefined);
    for (const [name, s] of Object.entries(live.Networks)) out.Networks[name] = { ...s, Aliases: s.Aliases.length > 0 ? s.Aliases : null };
    for (const key of exposedKeys(record, record.imageConfig)) out.Ports[key] = live.Ports[key] ?? null;
    for (const [key, b] of Object.entries(live.Ports)) out.Ports[key] = b;
  }
  const { networks: recs } = snapshot ? await snapshot() : await networks.store.read();
  const add = (rec: NetworkRecord | undefined, ref: string, aliases: string[]) => {
    const name = rec?.name ?? ref;
    if (out.Networks[name]) return;
    out.Networks[name] = { ...blank(), NetworkID: rec?.id ?? '', Aliases: aliases.length > 0 ? aliases : null };
  };
  for (const c of configuredRefs(record)) add(findRecord(recs, c.ref), c.ref, c.aliases);
  for (const rec of recs) if (rec.members[record.id]) add(rec, rec.name, rec.members[record.id]!.aliases);
  const bridge = out.Networks['bridge'];
  if (bridge && recs.find((n) => n.name === 'bridge')?.isDefault) {
    Object.assign(out, { IPAddress: bridge.IPAddress, IPPrefixLen: bridge.IPPrefixLen, Gateway: bridge.Gateway, MacAddress: bridge.MacAddress });
  }
  return out;
}

/** `8080`, `'8080'`, `'8080/udp'` → the `NetworkSettings.Ports` key. */
export function portKey(port: number | string, protocol?: 'tcp' | 'udp'): string {
  const text = String(port);
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(text);
  const n = m ? Number(m[1]) : NaN;
  if (!m || n < 1 || n > 65535) throw new ValidationError('port', `must be a port number (1-65535), optionally with "/tcp" or "/udp", got ${JSON.stringify(port)}`);
  if (protocol !== undefined && protocol !== 'tcp' && protocol !== 'udp') throw new ValidationError('protocol', 'must be "tcp" or "udp"');
  if (m[2] && protocol && m[2] !== protocol) throw new ValidationError('protocol', `contradicts ${JSON.stringify(port)}`);
  return `${n}/${m[2] ?? protocol ?? 'tcp'}`;
}

/** The bindings of one container port (empty when it is not published or the container is not running). */
export function bindingsOf(settings: Pick<NetworkSettings, 'Ports'>, key: string): PortBinding[] {
  return (settings.Ports[key] ?? []).map((b) => ({ hostIp: b.HostIp, hostPort: Number(b.HostPort) }));
}

/** One row of `containers.list()[i].Ports` (Docker's `ContainerSummary.Ports`, `docker ps`). */
export interface SummaryPort {
  /** The host address of a published port; absent for a port that is only exposed. */
  IP?: string;
  /** The port inside the container. */
  PrivatePort: number;
  /** The host port; absent for a port that is only exposed. */
  PublicPort?: number;
  Type: 'tcp' | 'udp';
}

/** Docker's `ContainerSummary.Ports` from `NetworkSettings.Ports`: one row per binding, one per exposed-only port. */
export function summaryPorts(settings: Pick<NetworkSettings, 'Ports'>): SummaryPort[] {
  const out: SummaryPort[] = [];
  for (const [key, bindings] of Object.entries(settings.Ports)) {
    const [port, proto] = key.split('/');
    const base = { PrivatePort: Number(port), Type: proto === 'udp' ? ('udp' as const) : ('tcp' as const) };
    if (!bindings || bindings.length === 0) out.push(base);
    else for (const b of bindings) out.push({ IP: b.HostIp, ...base, PublicPort: Number(b.HostPort) });
  }
  return out.sort((a, b) => a.PrivatePort - b.PrivatePort || a.Type.localeCompare(b.Type) || (a.PublicPort ?? 0) - (b.PublicPort ?? 0));
}

/**
 * The address to reach a published binding from this host: its `hostIp`, or `127.0.0.1` for a
 * binding on every address (`0.0.0.0`), which includes loopback.
 */
export function reachableHost(hostIp: string): string {
  return hostIp === '' || hostIp === '0.0.0.0' ? '127.0.0.1' : hostIp;
}
