/**
 * Validation of the container options about networking (`network`, `networks`, `ports`,
 * `dns`, `extraHosts`, `exposedPorts`), called by `normalizeRunOptions`. Names are checked
 * here; whether a network exists is known only at start.
 * @module
 */
import { isIP } from 'node:net';
import { ValidationError } from '../errors.js';
import { normalizeExposedPorts, normalizePorts } from './ports.js';
import { DEFAULT_NETWORK, type NetworkAttachmentOptions, type NetworkMode, type NetworkRef, type NormalizedPort, type PortProtocol, type PortSpec } from './types.js';

/** Something holding a `service` (a `Network`): the runtime a network option belongs to. */
type WithService = { service?: unknown };

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,253})$/;

/** The networking options as a user writes them (part of `RunOptions` and container options). */
export interface NetworkRunOptions {
  /**
   * `'none'` (default: only loopback), `'host'` (the host's network), `'bridge'` (the default
   * bridge network: an address, outbound NAT), a user network's name or `Network` (peers
   * resolve each other by name, hostname and alias), or `'container:<id or name>'` (join that
   * running container's network namespace).
   */
  network?: NetworkMode;
  /** More networks (or, without `network`, the networks), each with optional `aliases` and a static `ip`. */
  networks?: Array<NetworkRef | NetworkAttachmentOptions>;
  /**
   * Published ports (bridge networks; without `network` or `networks`, the container joins the
   * default `'bridge'` network, as Docker's `-p`): `{ container: 8080, host?: 0 | 18080, hostIp?, protocol? }`
   * or Docker's `'127.0.0.1:18080:8080/udp'`. `host` 0 or absent picks a free port. A host port
   * in use fails the start with a ConflictError.
   *
   * `hostIp` defaults to `'127.0.0.1'`: a published port is reachable from this host only, not
   * from the networks it is on (Docker publishes on every address). `hostIp: '0.0.0.0'` (or
   * `'0.0.0.0:8080:80'`) opts in to every address of the host.
   */
  ports?: PortSpec[];
  /** Name servers for /etc/resolv.conf (default: the host's, minus loopback ones). */
  dns?: string[];
  /** Extra /etc/hosts entries: `['name:1.2.3.4']`, `{ name: '1.2.3.4' }`; `host-gateway` is the network's gateway. */
  extraHosts?: string[] | Record<string, string> | Array<{ host: string; ip: string }>;
  /** Ports the container listens on (Docker's EXPOSE): recorded, not published. */
  exposedPorts?: Array<number | string | { port: number; protocol?: PortProtocol }>;
  /**
   * Without root (a user-mode stack, `pasta` or `slirp4netns`): let the container reach the
   * host's loopback (`127.0.0.1` services) through the address `host.containers.internal`
   * names in its /etc/hosts. Default `false`: services bound to the host's loopback trust
   * local users only, and a container is not one. As root, a `ValidationError` (bridges never
   * lead to the host's loopback).
   */
  hostLoopback?: boolean;
  /** Read for validation only (a network alias defaults to it); documented on `RunOptions`. */
  hostname?: string;
  /** Read for validation only (bridge networks and user namespaces); documented on `RunOptions`. */
  userns?: unknown;
}

/** One attachment after validation: a `Network` is replaced by its name (options are stored as JSON). */
export interface NormalizedAttachment {
  network: string;
  aliases: string[];
  ip?: string;
}

/**
 * The networking options after validation. `network` is a string: `'none'`, `'host'`,
 * `'container:<ref>'`, or a network's name (a `Network` object becomes its name; see
 * {@link networkServiceOf} for the runtime it belongs to).
 */
export interface NormalizedNetworkOptions {
  network?: string;
  networks?: NormalizedAttachment[];
  ports?: NormalizedPort[];
  dns?: string[];
  extraHosts?: Array<{ host: string; ip: string }>;
  exposedPorts?: Array<{ port: number; protocol: PortProtocol }>;
  hostLoopback?: boolean;
}

function isNetworkObject(v: unknown): v is { id: string; name: string } {
  return typeof v === 'object' && v !== null && typeof (v as { id?: unknown }).id === 'string' && typeof (v as { name?: unknown }).name === 'string';
}

function checkRef(v: unknown, option: string): string {
  if (isNetworkObject(v)) return v.name;
  if (typeof v !== 'string' || !NAME_RE.test(v)) throw new ValidationError(option, `must be a network name or a Network, got ${JSON.stringify(v)}`);
  if (v === 'none' || v === 'host') throw new ValidationError(option, `"${v}" cannot be combined with other networks`);
  return v;
}

function checkAliasList(v: unknown, option: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ValidationError(option, 'must be an array of names');
  return v.map((a: unknown, i) => {
    if (typeof a !== 'string' || !HOSTNAME_RE.test(a)) throw new ValidationError(`${option}[${i}]`, `${JSON.stringify(a)} is not a valid host name`);
    return a;
  });
}

function checkExtraHosts(v: unknown): Array<{ host: string; ip: string }> {
  const pairs: Array<[unknown, unknown, string]> = [];
  if (Array.isArray(v)) {
    v.forEach((e: unknown, i) => {
      const at = `extraHosts[${i}]`;
      if (typeof e === 'string') {
        // Docker's `host:ip` (the address may be IPv6, so split at the first colon).
        const colon = e.indexOf(':');
        if (colon <= 0) throw new ValidationError(at, `"${e}" is not "host:ip"`);
        pairs.push([e.slice(0, colon), e.slice(colon + 1), at]);
      } else if (e && typeof e === 'object') {
        pairs.push([(e as { host?: unknown }).host, (e as { ip?: unknown }).ip, at]);
      } else {
        throw new ValidationError(at, 'must be "host:ip" or { host, ip }');
      }
    });
  } else if (v && typeof v === 'object') {
    for (const [host, ip] of Object.entries(v)) pairs.push([host, ip, `extraHosts.${host}`]);
  } else {
    throw new ValidationError('extraHosts', 'must be ["host:ip", …] or { host: ip }');
  }
  return pairs.map(([host, ip, at]) => {
    if (typeof host !== 'string' || !HOSTNAME_RE.test(host)) throw new ValidationError(at, `${JSON.stringify(host)} is not a valid host name`);
    if (ip !== 'host-gateway' && (typeof ip !== 'string' || isIP(ip) === 0)) throw new ValidationError(at, `${JSON.stringify(ip)} is not an IP address (or "host-gateway")`);
    return { host, ip: ip as string };
  });
}

/**
 * Validates the networking options. `network` defaults to `'none'` (only loopback), or to
 * `'bridge'` when `ports` are published without a network (Docker's default); `ports` need a
 * bridge network, `container:<id>` excludes options that would change the joined
 * namespace (`hostname`, `ports`, `dns`, `extraHosts`, as Docker).
 * @throws ValidationError naming the option.
 */
export function normalizeNetworkOptions(o: NetworkRunOptions): NormalizedNetworkOptions {
  const out: NormalizedNetworkOptions = {};
  const n = o.network;
  let kind: 'none' | 'host' | 'container' | 'bridge' = 'none';
  if (n !== undefined) {
    if (isNetworkObject(n)) {
      kind = 'bridge';
    } else if (typeof n !== 'string') {
      // (a `Network` is checked above; anything else is a mistake)
      throw new ValidationError('network', `must be "none", "host", "bridge", a network name, a Network or "container:<id>", got ${JSON.stringify(n)}`);
    } else if (n === 'none' || n === 'host') {
      kind = n as 'none' | 'host';
    } else if (n.startsWith('container:')) {
      if (!NAME_RE.test(n.slice('container:'.length))) throw new ValidationError('network', `"${n}" must name a container: "container:<id or name>"`);
      kind = 'container';
    } else if (NAME_RE.test(n)) {
      kind = 'bridge';
    } else {
      throw new ValidationError('network', `must be "none", "host", "bridge", a network name, a Network or "container:<id>", got ${JSON.stringify(n)}`);
    }
    out.network = isNetworkObject(n) ? n.name : n;
  }
  if (o.networks !== undefined) {
    if (!Array.isArray(o.networks)) throw new ValidationError('networks', 'must be an array of network names, Networks or { network, aliases?, ip? }');
    if (kind === 'none' && n !== undefined) throw new ValidationError('networks', 'cannot be combined with network "none"');
    if (kind === 'host' || kind === 'container') throw new ValidationError('networks', `cannot be combined with network "${n as string}"`);
    out.networks = o.networks.map((a, i): NormalizedAttachment => {
      const at = `networks[${i}]`;
      if (typeof a === 'string' || isNetworkObject(a)) return { network: checkRef(a, at), aliases: [] };
      if (!a || typeof a !== 'object') throw new ValidationError(at, 'must be a network name, a Network or { network, aliases?, ip? }');
      for (const key of Object.keys(a)) if (!['network', 'aliases', 'ip'].includes(key)) throw new ValidationError(`${at}.${key}`, 'unknown field (expected network, aliases, ip)');
      const ip = (a as NetworkAttachmentOptions).ip;
      if (ip !== undefined && isIP(ip) !== 4) throw new ValidationError(`${at}.ip`, `must be an IPv4 address, got ${JSON.stringify(ip)}`);
      return {
        network: checkRef((a as NetworkAttachmentOptions).network, `${at}.network`),
        aliases: checkAliasList((a as NetworkAttachmentOptions).aliases, `${at}.aliases`),
        ...(ip !== undefined ? { ip } : {}),
      };
    });
    if (out.networks.length > 0) kind = 'bridge';
  }
  if (o.ports !== undefined) {
    out.ports = normalizePorts(o.ports);
    if (out.ports.length > 0 && n === undefined && o.networks === undefined) {
      // Docker's rule: publishing without naming a network means the default bridge network.
      kind = 'bridge';
      out.network = DEFAULT_NETWORK;
    }
    if (out.ports.length > 0 && kind !== 'bridge') {
      throw new ValidationError('ports', `publishing ports needs a bridge network (network: "bridge" or a network name); network is "${kind === 'container' ? (n as string) : kind}"`);
    }
  }
  if (o.dns !== undefined) {
    if (!Array.isArray(o.dns)) throw new ValidationError('dns', 'must be an array of IP addresses');
    o.dns.forEach((d: unknown, i) => {
      if (typeof d !== 'string' || isIP(d) === 0) throw new ValidationError(`dns[${i}]`, `${JSON.stringify(d)} is not an IP address`);
    });
    out.dns = [...o.dns];
  }
  if (o.extraHosts !== undefined) {
    out.extraHosts = checkExtraHosts(o.extraHosts);
    if (kind !== 'bridge' && out.extraHosts.some((h) => h.ip === 'host-gateway')) {
      throw new ValidationError('extraHosts', '"host-gateway" needs a bridge network (it is the network\'s gateway)');
    }
  }
  if (o.exposedPorts !== undefined) out.exposedPorts = normalizeExposedPorts(o.exposedPorts);
  if (o.hostLoopback !== undefined) {
    if (typeof o.hostLoopback !== 'boolean') throw new ValidationError('hostLoopback', `must be true or false, got ${JSON.stringify(o.hostLoopback)}`);
    if (o.hostLoopback && kind !== 'bridge') throw new ValidationError('hostLoopback', `needs a network with a user-mode stack (network: "bridge", "pasta" or "slirp4netns"); network is "${kind === 'container' ? (n as string) : kind}"`);
    out.hostLoopback = o.hostLoopback;
  }
  if (kind === 'container') {
    for (const key of ['hostname', 'dns', 'extraHosts'] as const) {
      if (o[key] !== undefined) throw new ValidationError(key, `conflicts with network "${n as string}": the joined container's applies`);
    }
    if (o.userns !== undefined) throw new ValidationError('network', `"${n as string}" cannot be combined with userns: a new user namespace cannot join the other container's network namespace`);
  }
  return out;
}

/**
 * The network service of the `Network` objects among the options (the runtime they belong
 * to), so that `run(…, { network: rt2Network })` resolves in `rt2` and not in the default
 * runtime. Undefined when the options name networks by string only.
 * @throws ValidationError when the options mix networks of different runtimes.
 */
export function networkServiceOf<S>(o: Pick<NetworkRunOptions, 'network' | 'networks'>): S | undefined {
  const refs: unknown[] = [o.network, ...(Array.isArray(o.networks) ? o.networks.map((a) => (isNetworkObject(a) || typeof a === 'string' ? a : (a as NetworkAttachmentOptions | undefined)?.network)) : [])];
  const services = new Set<unknown>();
  for (const r of refs) {
    const s = isNetworkObject(r) ? (r as WithService).service : undefined;
    if (s && typeof s === 'object') services.add(s);
  }
  if (services.size > 1) throw new ValidationError('networks', 'networks of different runtimes cannot be combined');
  return [...services][0] as S | undefined;
}
