/**
 * The public shapes of networking: options of `rt.networks.create()`, the container options
 * (`network`, `networks`, `ports`, `dns`, `extraHosts`, `exposedPorts`), and what `inspect()`
 * reports (Docker's field names).
 * @module
 */

/** The name of every runtime's default network (Docker's `bridge`), made on first use. */
export const DEFAULT_NETWORK = 'bridge';

export type PortProtocol = 'tcp' | 'udp';

/** A published port: connections to `hostIp:host` reach the container's `container` port. */
export interface PortMapping {
  /** The port inside the container. */
  container: number;
  /** The host port; `0` or absent picks a free one (see the container's `inspect()` / `port()`). */
  host?: number;
  /**
   * The host address to publish on. Default `'127.0.0.1'`: only the host itself reaches the
   * port (Docker's default, `'0.0.0.0'`, exposes it on every network the host is on). Pass
   * `'0.0.0.0'` to publish on every address of the host, or one of its addresses.
   */
  hostIp?: string;
  /** Default `'tcp'`. */
  protocol?: PortProtocol;
}

/**
 * A port to publish: a {@link PortMapping}, a container port number, or Docker's `-p` syntax
 * (`'8080'`, `'18080:8080'`, `'0.0.0.0:18080:8080'`, `'127.0.0.1::8080/udp'`). Without a host
 * address the port is published on `127.0.0.1` only (unlike Docker); `'0.0.0.0:…'` publishes
 * it on every address of the host.
 */
export type PortSpec = PortMapping | number | string;

/** A published port after validation; `host` is 0 until a port is chosen at start. */
export interface NormalizedPort {
  container: number;
  host: number;
  hostIp: string;
  protocol: PortProtocol;
}

/** A published port as it is in effect. */
export interface PublishedPort {
  container: number;
  protocol: PortProtocol;
  hostIp: string;
  /** The host port in use (the chosen one when 0 was asked). */
  host: number;
}

/** Something that names a network: its name, its id (or a unique prefix), or the object. */
export type NetworkRef = string | { readonly id: string; readonly name: string };

/** One network to attach a container to, with its names on that network. */
export interface NetworkAttachmentOptions {
  network: NetworkRef;
  /** More names the container answers to on this network. */
  aliases?: string[];
  /** A static IPv4 address inside the network's subnet. */
  ip?: string;
}

/**
 * The container's network: `'none'` (only loopback; `run()`'s default), `'host'` (the host's
 * network namespace), `'bridge'` (the default bridge network, with outbound NAT), a user
 * network's name or object (peers reach each other by name), or `'container:<id>'` (share
 * another container's network namespace, pod style).
 */
export type NetworkMode = 'none' | 'host' | 'bridge' | `container:${string}` | (string & {}) | { readonly id: string; readonly name: string };

/** Options of `rt.networks.create()`. */
export interface NetworkCreateOptions {
  /** Docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. Unique in the runtime. */
  name: string;
  /** Only `'bridge'`. */
  driver?: 'bridge';
  /** IPv4 CIDR; default: the first free of 172.17-31.0.0/16, 192.168.0.0/20… avoiding the host's routes. */
  subnet?: string;
  /** Default: the subnet's first address. */
  gateway?: string;
  /** Containers get addresses from this CIDR inside the subnet. */
  ipRange?: string;
  /** No route out of the network and no NAT: containers reach only each other. Default false. */
  internal?: boolean;
  /** MTU of the bridge and the containers' interfaces. Default: the kernel's (1500). */
  mtu?: number;
  labels?: Record<string, string>;
}

/** One container of a network, as `network.inspect().Containers` lists it. */
export interface NetworkContainerInspect {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  /** CIDR, e.g. `172.18.0.2/16`. */
  IPv4Address: string;
  IPv6Address: string;
}

/** `network.inspect()`: Docker's `NetworkResource` shape. */
export interface NetworkInspect {
  Name: string;
  Id: string;
  /** RFC 3339. */
  Created: string;
  Scope: 'local';
  Driver: 'bridge';
  EnableIPv6: false;
  IPAM: { Driver: 'default'; Options: Record<string, string>; Config: Array<{ Subnet: string; Gateway: string; IPRange?: string }> };
  Internal: boolean;
  Attachable: false;
  Ingress: false;
  /** Running containers by id. */
  Containers: Record<string, NetworkContainerInspect>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}
