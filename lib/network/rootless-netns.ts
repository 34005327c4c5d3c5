/**
 * The network namespace a rootless process's user networks live in (Podman's rootless netns):
 * `berth-helper rootless-net` (src-native/rootless-net.h) joins this process's held user
 * namespace (lib/rootless/held-userns.ts), the one every rootless container of the process is
 * created in, and unshares a network namespace there. It holds the networks' bridges and the
 * host ends of the containers' veths, runs the networks' resolvers, and is served by one
 * user-mode stack (pasta, else slirp4netns) for the way out. Node cannot do any of this
 * itself: a multi-threaded process may not join a user namespace, and only a process inside
 * the held one has CAP_NET_ADMIN over the containers' network namespaces.
 *
 * One per held user namespace: a new holder (after the last `Runtime.close()`, or maps that
 * changed) gets a new one. Tied to this process (parent-death signal, EOF on stdin) and ended
 * with the last runtime ({@link releaseRootlessNetns}); its resolvers die with it, its stack
 * is stopped with it.
 * @module
 */
import { SystemError } from '../errors.js';
import { identityOf, isAlive, type ProcessIdentity } from '../state/process-identity.js';
import type { HeldUsernsLease } from '../rootless/index.js';
import { findTool } from './find-tool.js';
import type { NetworkRecord } from './network-store.js';
import { renderRootlessRules, type RootlessRuleNetwork } from './rootless-net-rules.js';
import { startHelper, type TiedProcess } from './usermode-process.js';
import { PASTA_DNS_FORWARD, SLIRP_ADDRESSES } from './usermode-args.js';
import { startUserModeNetwork, type UserModeNetwork } from './usermode-network.js';

/** How long one command may take (a netlink round trip, an `nft -f`; a loaded VM). */
const COMMAND_TIMEOUT_MS = 30_000;

/** One interface of a container on a rootless network (the native NetInterface, flattened). */
export interface RootlessInterface {
  hostIfname: string;
  bridge: string;
  ifname: string;
  address: string;
  gateway?: string;
  mtu?: number;
  mac: string;
  alias: string;
}

function word(value: string, what: string): string {
  if (value === '' || /[\s]/.test(value)) throw new SystemError('EINVAL', `rootless network: ${what} ${JSON.stringify(value)} cannot be sent to the helper`);
  return value;
}

const hex = (text: string): string => Buffer.from(text, 'utf8').toString('hex');

/** A running `berth-helper rootless-net` and the stack that serves its namespace. */
export class RootlessNetns {
  readonly #proc: TiedProcess;
  /** The held user namespace's holder this namespace is owned by. */
  readonly holderPid: number;
  #queue: Promise<unknown> = Promise.resolve();
  #lines: string[] = [];
  #waiter: ((line: string | undefined) => void) | undefined;
  #buffer = '';
  #closed = false;
  #stack: UserModeNetwork | undefined;
  #rules = '';
  #networks: RootlessRuleNetwork[] = [];
  /** Containers with `hostLoopback: true`, by address: this namespace is this process's alone. */
  readonly #loopback = new Map<string, { bridge: string; port: string }>();
  /** Bridges made here (a `bridge` command per launch is a netlink round trip too many). */
  readonly #bridges = new Set<string>();
  /** Resolvers started here (each exits when its network has no member, or with the helper). */
  readonly #resolvers = new Set<ProcessIdentity>();

  private constructor(proc: TiedProcess, holderPid: number) {
    this.#proc = proc;
    this.holderPid = holderPid;
    const out = proc.child.stdout!;
    out.setEncoding('utf8');
    out.on('data', (d: string) => {
      this.#buffer += d;
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        if (this.#waiter) this.#waiter(line);
        else this.#lines.push(line);
      }
    });
    proc.child.stdin!.on('error', () => {});
    void proc.exited.then(() => {
      this.#closed = true;
      this.#waiter?.(undefined);
    });
  }

  /** The helper's pid: `/proc/<pid>/ns/net` is the namespace. */
  get pid(): number {
    return this.#proc.pid;
  }

  /** False once it exited or was closed. */
  get alive(): boolean {
    return !this.#closed;
  }

  /**
   * Starts the helper in the held namespace of `userns` and its stack.
   * @throws SystemError when the helper cannot make the namespace (its stderr says why);
   *   UnsupportedError (from the stack) when neither pasta nor slirp4netns can run.
   */
  static async start(userns: HeldUsernsLease): Promise<RootlessNetns> {
    const proc = startHelper(['rootless-net', String(process.pid)], ['pipe', 'pipe', 'pipe', userns.fd]);
    const ns = new RootlessNetns(proc, userns.pid);
    try {
      const first = await ns.#next('start');
      if (first !== 'ready') throw new SystemError('ERR_ROOTLESS_NET', `berth-helper rootless-net did not start: ${first ?? proc.stderr() ?? 'no message'}`);
      // The way out: one stack for every network, no published port. Its gateway leads to the
      // host's loopback, which the rules close to every container that did not ask for it
      // (services on the host's 127.0.0.1 trust local users; docs/design/networks.md).
      ns.#stack = await startUserModeNetwork({ pid: proc.pid, hostLoopback: true });
    } catch (error) {
      await ns.close();
      throw error;
    }
    for (const s of [proc.child.stdin, proc.child.stdout, proc.child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    proc.child.unref();
    ns.#stack.unref();
    return ns;
  }

  async #next(what: string): Promise<string | undefined> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return queued;
    if (this.#closed) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<string | undefined>((resolve, reject) => {
        this.#waiter = resolve;
        timer = setTimeout(() => reject(new SystemError('ETIMEDOUT', `rootless network: berth-helper rootless-net did not answer "${what}" within ${COMMAND_TIMEOUT_MS / 1000} s`)), COMMAND_TIMEOUT_MS);
      });
    } finally {
      this.#waiter = undefined;
      clearTimeout(timer);
    }
  }

  /** One command, answered in order; resolves with the words after `ok`. */
  #command(line: string): Promise<string[]> {
    const run = async (): Promise<string[]> => {
      if (this.#closed) throw new SystemError('ERR_ROOTLESS_NET', `rootless network: the namespace helper exited: ${this.#proc.stderr() || 'no message'}`);
      this.#proc.child.stdin!.write(`${line}\n`);
      const what = line.split(' ', 1)[0]!;
      const answer = await this.#next(what);
      if (answer === undefined) throw new SystemError('ERR_ROOTLESS_NET', `rootless network: the namespace helper exited during "${what}": ${this.#proc.stderr() || 'no message'}`);
      if (answer === 'ok' || answer.startsWith('ok ')) return answer.split(' ').slice(1);
      const [, errno, syscall, path, ...message] = answer.split(' ');
      const n = Number(errno);
      throw new SystemError('ERR_ROOTLESS_NET', `rootless network: ${what} failed: ${syscall} ${path}: ${message.join(' ')}`, {
        ...(Number.isInteger(n) && n > 0 ? { errno: n } : {}),
        ...(syscall && syscall !== '-' ? { syscall } : {}),
        ...(path && path !== '-' ? { path } : {}),
      });
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** The network's bridge with its gateway address (idempotent). */
  async bridge(rec: NetworkRecord, alias: string): Promise<void> {
    if (this.#bridges.has(rec.bridge)) return;
    const prefix = rec.subnet.split('/')[1]!;
    await this.#command(['bridge', word(rec.bridge, 'bridge'), word(`${rec.gateway}/${prefix}`, 'address'), String(rec.mtu ?? 0), word(rec.bridgeMac ?? '-', 'mac'), word(alias, 'alias')].join(' '));
    this.#bridges.add(rec.bridge);
  }

  /** A veth from the interface's bridge into the network namespace of `pid` (waiting for "go"). */
  async attach(pid: number, nic: RootlessInterface): Promise<void> {
    await this.#command(
      ['attach', String(pid), word(nic.hostIfname, 'interface'), word(nic.bridge, 'bridge'), word(nic.ifname, 'interface'), word(nic.address, 'address'), word(nic.gateway ?? '-', 'gateway'), String(nic.mtu ?? 0), word(nic.mac, 'mac'), word(nic.alias, 'alias')].join(' '),
    );
  }

  /** Starts the resolver of a network here (or finds it running). */
  async resolver(stateDir: string, networkId: string, control: string): Promise<void> {
    // Asked every time, with the networks lock held and the member's name file written: a
    // resolver that already decided to exit (no member, under that lock) has given up its
    // control socket, so a new one binds it; one that did not stays ("running").
    const [pid, said] = await this.#command(['resolver', word(stateDir, 'state directory'), word(networkId, 'network id'), word(control, 'control name')].join(' '));
    const identity = said === 'ready' ? identityOf(Number(pid)) : undefined;
    if (identity) this.#resolvers.add(identity);
    for (const r of this.#resolvers) if (!isAlive(r)) this.#resolvers.delete(r);
  }

  /** Hands the resolver the DNS socket of `pid`'s namespace (made by the helper, inside it). */
  async dns(pid: number, control: string, message: string): Promise<void> {
    await this.#command(['dns', String(pid), word(control, 'control name'), hex(message)].join(' '));
  }

  /** Deletes a link (a bridge of a removed network); false when there was none. */
  async deleteLink(name: string): Promise<boolean> {
    this.#bridges.delete(name);
    const [existed] = await this.#command(`delete ${word(name, 'interface')}`);
    return existed === '1';
  }

  /**
   * The stack's DNS forwarder: the resolvers' upstream (the host's own resolver may listen on
   * the host's loopback, which this namespace does not reach).
   */
  get dnsForwarder(): string | null {
    if (!this.#stack) return null;
    return this.#stack.stack === 'pasta' ? PASTA_DNS_FORWARD : SLIRP_ADDRESSES.dns;
  }

  /** The address inside that reaches the host's loopback (for allowed containers), or null. */
  get hostAddress(): string | null {
    return this.#stack?.hostAddress ?? null;
  }

  /** Makes the packet filter match `networks` and the host-loopback grants (skipped when unchanged). */
  async applyRules(networks: readonly RootlessRuleNetwork[] = this.#networks): Promise<void> {
    this.#networks = [...networks];
    const address = this.hostAddress;
    const rules = renderRootlessRules(networks, address ? { address, allowed: [...this.#loopback].map(([ip, g]) => ({ ip, ...g })) } : undefined);
    if (rules === this.#rules) return;
    const nft = findTool('nft');
    if (!nft) throw new SystemError('ENOENT', 'rootless networks need nftables for isolation and NAT: apt-get install nftables', { path: 'nft' });
    await this.#command(`nft ${word(nft, 'nft path')} ${hex(rules)}`);
    this.#rules = rules;
  }

  /**
   * Lets the container at `ip` (on `bridge`, behind the veth host end `port`) reach the host's
   * loopback; apply with {@link applyRules}.
   */
  grantHostLoopback(ip: string, bridge: string, port: string): void {
    this.#loopback.set(ip, { bridge, port });
  }

  /** Takes a grant back (the container ended) and re-applies the rules. */
  async revokeHostLoopback(ip: string): Promise<void> {
    if (!this.#loopback.delete(ip) || this.#closed) return;
    await this.applyRules();
  }

  /** Ends the stack and the helper (its namespace goes once no container holds it). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#stack?.stop();
    this.#proc.child.stdin!.end();
    const timer = setTimeout(() => void this.#proc.stop(), 2000);
    await this.#proc.exited;
    clearTimeout(timer);
    // Its resolvers get SIGKILL as it exits (parent-death signal); close() resolves once they
    // are gone too. Bounded: a process killed by SIGKILL is gone within milliseconds.
    for (let i = 0; i < 50 && [...this.#resolvers].some(isAlive); i++) await new Promise((r) => setTimeout(r, 20));
    // Started here, identified by pid and start time: ours to end if one lingers.
    for (const r of this.#resolvers) {
      if (!isAlive(r)) continue;
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    for (let i = 0; i < 50 && [...this.#resolvers].some(isAlive); i++) await new Promise((r) => setTimeout(r, 20));
  }
}

let current: Promise<RootlessNetns> | undefined;
/** Serializes the check-then-start below: two launches at once must not start two helpers. */
let choosing: Promise<unknown> = Promise.resolve();
let owners = 0;

/**
 * This process's rootless network namespace in the held user namespace of `userns` (started
 * now if there is none, or if the held namespace changed).
 */
export function rootlessNetnsFor(userns: HeldUsernsLease): Promise<RootlessNetns> {
  const chosen = choosing.then(async () => {
    const existing = await current?.catch(() => undefined);
    if (existing && existing.alive && existing.holderPid === userns.pid) return existing;
    if (existing?.alive) void existing.close();
    const starting = RootlessNetns.start(userns);
    current = starting;
    starting.catch(() => {
      if (current === starting) current = undefined;
    });
    return starting;
  });
  choosing = chosen.catch(() => {});
  return chosen;
}

/** The running namespace, if any (for `rt.networks.remove()` and tests). */
export async function currentRootlessNetns(): Promise<RootlessNetns | undefined> {
  const ns = await current?.catch(() => undefined);
  return ns?.alive ? ns : undefined;
}

/** A runtime of this process may use the namespace until {@link releaseRootlessNetns}. */
export function retainRootlessNetns(): void {
  owners++;
}

/** The last runtime closed: the namespace's helper, resolvers and stack end. */
export async function releaseRootlessNetns(): Promise<void> {
  if (owners > 0) owners--;
  if (owners > 0 || !current) return;
  const ns = await current.catch(() => undefined);
  current = undefined;
  await ns?.close();
}
