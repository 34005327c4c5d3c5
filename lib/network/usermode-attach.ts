/**
 * A rootless container's own network: its network namespace (created by the launch, owned by
 * its user namespace) served by a user-mode stack (pasta or slirp4netns) that berth starts
 * with the container's pid while the child waits for "go", and stops at release.
 *
 * Order in `launch()`, as for bridges: `prepareUserModeNetwork()` (stack chosen, ports
 * claimed, /etc files) → plan → spawn → `beforeGo(pid)` (the stack is up, every port bound)
 * → "go" → … exit → `release()` (the stack stopped). Detached containers do not come here
 * for the stack: their monitor starts it at each run (usermode-monitor.ts).
 * @module
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnsupportedError, ValidationError } from '../errors.js';
import type { PreparedNetwork } from './attach.js';
import { renderHosts, renderResolvConf, type HostsEntry } from './etc-files.js';
import type { NormalizedNetworkOptions } from './network-options.js';
import { claimHostPorts } from './ports.js';
import { DEFAULT_NETWORK, type PublishedPort } from './types.js';
import { PASTA_DNS_FORWARD, PID_PLACEHOLDER, SLIRP_ADDRESSES, pastaArgs, slirpAddHostFwd, slirpArgs } from './usermode-args.js';
import { hostDefaultGateway, installedUserModeTools, startUserModeNetwork, type UserModeNetwork } from './usermode-network.js';
import { describeUserModeStack, requireUserModeStack, type UserModeStackName, type UserModeTools } from './usermode-stack.js';

/** Network names that pick a stack, as Podman names them; `bridge` (the default) takes the preferred one. */
export const USERMODE_NETWORK_NAMES: ReadonlySet<string> = new Set([DEFAULT_NETWORK, 'pasta', 'slirp4netns']);

/** The name a container resolves to reach the host's loopback, with `hostLoopback` (Podman's). */
export const HOST_LOOPBACK_NAME = 'host.containers.internal';

/** What the monitor of a detached container needs to start the same stack at each run. */
export interface UserModePlan {
  stack: UserModeStackName;
  /** The stack's executable. */
  path: string;
  ports: PublishedPort[];
  hostLoopback: boolean;
}

export interface UserModeLaunchRequest {
  launchId: string;
  options: NormalizedNetworkOptions & { hostname?: string };
  /** Where the stacks are installed; default found in PATH and the system directories. */
  tools?: UserModeTools;
}

/**
 * Whether the launch of a process without root needs a user-mode stack: a bridge-kind network
 * (`'bridge'`, `'pasta'`, `'slirp4netns'`, or `ports` alone, which mean `'bridge'`).
 */
export function wantsUserModeNetwork(o: Pick<NormalizedNetworkOptions, 'network' | 'networks'>): boolean {
  const n = o.network;
  if (n === undefined) return (o.networks?.length ?? 0) > 0;
  return n !== 'none' && n !== 'host' && !n.startsWith('container:');
}

function stackOf(o: NormalizedNetworkOptions): UserModeStackName | undefined {
  if ((o.networks?.length ?? 0) > 0) {
    throw new UnsupportedError(`networks: without root a container gets its own user-mode network (network: "bridge", "pasta" or "slirp4netns"); user networks shared between containers (${o.networks!.map((a) => a.network).join(', ')}) need root`);
  }
  const n = o.network!;
  if (!USERMODE_NETWORK_NAMES.has(n)) {
    throw new UnsupportedError(`network: "${n}" is a user network; without root a container gets its own user-mode network (network: "bridge", "pasta" or "slirp4netns"), user networks shared between containers need root`);
  }
  return n === 'pasta' || n === 'slirp4netns' ? n : undefined;
}

/** The container's /etc/resolv.conf: the stack's DNS forwarder, unless `dns` names servers. */
function resolvConfFor(stack: UserModeStackName, dns: readonly string[] | undefined): string {
  if (dns && dns.length > 0) return renderResolvConf(undefined, dns);
  let host: string | undefined;
  try {
    host = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // no search/options lines to keep
  }
  // Only the host's search and options lines are kept; the server is the stack's forwarder,
  // which reaches the host's resolver even when that is on the host's loopback.
  return renderResolvConf(host, [stack === 'pasta' ? PASTA_DNS_FORWARD : SLIRP_ADDRESSES.dns]);
}

/** The address inside that reaches the host's loopback with `hostLoopback` (null: none known). */
export function hostLoopbackAddress(stack: UserModeStackName): string | null {
  return stack === 'pasta' ? hostDefaultGateway() : SLIRP_ADDRESSES.gateway;
}

/**
 * Plans a rootless launch's user-mode network: the stack (refused with the fix when none can
 * run), the published ports (host ports chosen, a taken one refused), /etc/hosts and
 * /etc/resolv.conf. Nothing runs yet and nothing is held.
 * @throws UnsupportedError naming `apt-get install passt` without a stack (or the tun device's
 *   fix), and for user networks; ValidationError for a `hostIp` off the host's loopback;
 *   ConflictError for a taken host port.
 */
export async function planUserModeNetwork(req: UserModeLaunchRequest): Promise<{ plan: UserModePlan; files: { hosts: string; resolvConf: string }; hostname: string }> {
  const o = req.options;
  const { stack, path } = requireUserModeStack(describeUserModeStack(req.tools ?? installedUserModeTools(), stackOf(o)));
  (o.ports ?? []).forEach((p, i) => {
    // A user-mode stack binds the host port as the user: reachable from this host only, as
    // the contract says; every other address would expose the container to the LAN.
    if (!p.hostIp.startsWith('127.')) throw new ValidationError(`ports[${i}].hostIp`, `without root ports are published on the host's loopback only (127.0.0.0/8), got ${p.hostIp}`);
  });
  const ports = await claimHostPorts(o.ports ?? [], []);
  const hostname = o.hostname ?? req.launchId.slice(0, 12);
  const hostLoopback = o.hostLoopback === true;
  const extra: HostsEntry[] = (o.extraHosts ?? []).map((h) => ({ ip: h.ip === 'host-gateway' ? (hostLoopbackAddress(stack) ?? h.ip) : h.ip, names: [h.host] }));
  const gateway = hostLoopback ? hostLoopbackAddress(stack) : null;
  if (gateway) extra.unshift({ ip: gateway, names: [HOST_LOOPBACK_NAME] });
  const hosts = renderHosts([{ ip: '127.0.1.1', names: [hostname] }], [], extra);
  return { plan: { stack, path, ports, hostLoopback }, files: { hosts, resolvConf: resolvConfFor(stack, o.dns) }, hostname };
}

/**
 * The stack's command line and requests for a detached container's monitor, which starts it
 * for each run's PID 1 (`{pid}` in the arguments) and removes `scratch` when the run ends.
 * The scratch dir is named after the container, not a process: the sweep of dead owners'
 * dirs (usermode-network.ts) leaves it alone, and its monitor removes it.
 */
export function monitorStackPlan(plan: UserModePlan, containerId: string): { kind: UserModeStackName; scratch: string; argv: string[]; hostfwd: string[] } {
  const runtimeDir = process.env['XDG_RUNTIME_DIR'];
  const base = runtimeDir ? join(runtimeDir, 'berth') : tmpdir();
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const scratch = join(base, `berth-usermode-c-${containerId.slice(0, 12)}`);
  const args =
    plan.stack === 'pasta'
      ? pastaArgs({ pid: PID_PLACEHOLDER, ports: plan.ports, hostLoopback: plan.hostLoopback, pidFile: join(scratch, 'pid') })
      : slirpArgs({ pid: PID_PLACEHOLDER, hostLoopback: plan.hostLoopback, apiSocket: join(scratch, 'api.sock') });
  return { kind: plan.stack, scratch, argv: [plan.path, ...args], hostfwd: plan.stack === 'slirp4netns' ? plan.ports.map((p) => slirpAddHostFwd(p).trimEnd()) : [] };
}

/**
 * A {@link PreparedNetwork} whose `beforeGo(pid)` starts the planned stack for the child and
 * whose `release()` stops it. For launches whose stack lives in this process (`run()`,
 * `spawn()`, containers with lifetime `'process'`).
 */
export async function prepareUserModeNetwork(req: UserModeLaunchRequest): Promise<PreparedNetwork & { usermode: UserModePlan }> {
  const { plan, files, hostname } = await planUserModeNetwork(req);
  let running: UserModeNetwork | undefined;
  let starting: Promise<UserModeNetwork> | undefined;
  let released: Promise<void> | undefined;
  return {
    kind: 'usermode',
    hostname,
    files,
    interfaces: [],
    ports: plan.ports,
    endpoints: [],
    usermode: plan,
    closeFds: () => {},
    beforeGo: async (pid) => {
      if (released) throw new ValidationError('network', 'the launch was released before its network started');
      starting = startUserModeNetwork({
        pid,
        ports: plan.ports,
        hostLoopback: plan.hostLoopback,
        stack: plan.stack,
        tools: { pasta: plan.stack === 'pasta' ? plan.path : null, slirp4netns: plan.stack === 'slirp4netns' ? plan.path : null },
      });
      running = await starting;
    },
    started: async () => {},
    release: () => {
      released ??= (async () => {
        await starting?.catch(() => {});
        await running?.stop();
      })();
      return released;
    },
  };
}
