/**
 * Command lines of the user-mode network stacks, and slirp4netns's port requests: pure
 * functions of what a container asks for, so every security-relevant flag is unit-tested.
 *
 * What both must never do by default is let the container reach the host's loopback: services
 * bound to 127.0.0.1 trust that only local users connect (the CVE-2020-8558 class the rootful
 * packet filter blocks too). pasta maps its gateway address to the host's loopback and forwards
 * ports bound on the host's loopback into the namespace's (`-T auto`) unless told otherwise;
 * slirp4netns maps 10.0.2.2 to the host's loopback unless `--disable-host-loopback`.
 * @module
 */
import type { PortProtocol, PublishedPort } from './types.js';

/** Name of the container's interface, as on bridge networks (pasta copies the host's otherwise). */
export const USERMODE_IFNAME = 'eth0';
/** slirp4netns's fixed addresses (its defaults; `--cidr` is not used). */
export const SLIRP_ADDRESSES = { cidr: '10.0.2.0/24', address: '10.0.2.100', gateway: '10.0.2.2', dns: '10.0.2.3' } as const;

/** The address pasta answers DNS on inside the namespace, forwarded to the host's first resolver (Podman's choice). */
export const PASTA_DNS_FORWARD = '169.254.1.1';

/** Stands for PID 1's pid in a command line a detached container's monitor completes at each run. */
export const PID_PLACEHOLDER = '{pid}';

export interface UserModeArgsRequest {
  /** A process whose user and network namespaces the stack joins ({@link PID_PLACEHOLDER}: the monitor's PID 1). */
  pid: number | typeof PID_PLACEHOLDER;
  /** Published ports, host ports chosen. */
  ports: readonly PublishedPort[];
  /** Let the container reach the host's loopback through the gateway address. Default false. */
  hostLoopback?: boolean;
}

function pastaPortSpec(p: PublishedPort): string {
  // pasta: [address/]port[:target]; no address means every address of the host.
  const at = p.hostIp === '0.0.0.0' ? '' : `${p.hostIp}/`;
  return `${at}${p.host}:${p.container}`;
}

function pastaPortArgs(ports: readonly PublishedPort[], protocol: PortProtocol, flag: string): string[] {
  const mine = ports.filter((p) => p.protocol === protocol);
  // 'none' matters: pasta's default is 'auto', publishing every port the container binds.
  if (mine.length === 0) return [flag, 'none'];
  return mine.flatMap((p) => [flag, pastaPortSpec(p)]);
}

/**
 * `pasta` in the foreground (berth ends it), configuring the namespace's interface itself and
 * writing `pidFile` once the interface is up and every port is bound: that is the readiness.
 */
export function pastaArgs(req: UserModeArgsRequest & { pidFile: string }): string[] {
  return [
    '--foreground',
    '--quiet',
    '--ipv4-only',
    '--config-net',
    '--ns-ifname',
    USERMODE_IFNAME,
    ...pastaPortArgs(req.ports, 'tcp', '--tcp-ports'),
    ...pastaPortArgs(req.ports, 'udp', '--udp-ports'),
    // The namespace's own loopback must stay its own: 'auto' would forward the host's
    // loopback-bound ports into it.
    '--tcp-ns',
    'none',
    '--udp-ns',
    'none',
    ...(req.hostLoopback ? [] : ['--no-map-gw']),
    // The container's resolv.conf names this address: it reaches the host's resolver even when
    // that listens on the host's loopback (systemd-resolved), which the container cannot.
    '--dns-forward',
    PASTA_DNS_FORWARD,
    '--pid',
    req.pidFile,
    String(req.pid),
  ];
}

/**
 * `slirp4netns` configuring the namespace (`--configure`), reporting readiness on fd 3 and
 * exiting when fd 4 reaches end of file (its owner closed it or died); ports are added later
 * through the API socket ({@link slirpAddHostFwd}).
 */
export function slirpArgs(req: Omit<UserModeArgsRequest, 'ports'> & { apiSocket: string }): string[] {
  return [
    '--configure',
    '--mtu=65520',
    ...(req.hostLoopback ? [] : ['--disable-host-loopback']),
    '--ready-fd=3',
    '--exit-fd=4',
    '--api-socket',
    req.apiSocket,
    String(req.pid),
    USERMODE_IFNAME,
  ];
}

/** One slirp4netns API request publishing `p` (one JSON line). */
export function slirpAddHostFwd(p: PublishedPort): string {
  return `${JSON.stringify({
    execute: 'add_hostfwd',
    arguments: { proto: p.protocol, host_addr: p.hostIp, host_port: p.host, guest_addr: SLIRP_ADDRESSES.address, guest_port: p.container },
  })}\n`;
}
