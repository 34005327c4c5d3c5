/**
 * A user-mode network for one network namespace that an unprivileged user owns: berth starts
 * pasta (preferred) or slirp4netns joined to the namespaces of a process, waits until the
 * interface is configured and every published port is bound, and ends the stack again.
 *
 * Lifetime: the stack is a tied child of this process (`berth-helper tie`): it dies with this
 * process even on SIGKILL, ends when {@link UserModeNetwork.stop} is called (the container's
 * release path), and is stopped here when it fails to start. pasta 2023 keeps running after
 * the namespace it serves is gone when that namespace was given by pid (it only watches
 * namespaces bound in the filesystem), so berth never relies on the stack noticing by itself.
 * @module
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortError, ConflictError, SystemError } from '../errors.js';
import { findTool } from './find-tool.js';
import { claimHostPorts } from './ports.js';
import type { NormalizedPort, PublishedPort } from './types.js';
import { pastaArgs, slirpAddHostFwd, slirpArgs, SLIRP_ADDRESSES } from './usermode-args.js';
import { startTied, type TiedProcess } from './usermode-process.js';
import { describeUserModeStack, requireUserModeStack, type UserModeStackName, type UserModeTools } from './usermode-stack.js';

/** How long a stack may take to configure the namespace (a loaded 2-CPU VM: under 1 s). */
export const USERMODE_READY_TIMEOUT_MS = 20_000;

/** Options of {@link startUserModeNetwork}. */
export interface UserModeNetworkOptions {
  /** A process in the target user and network namespaces (a container's PID 1, a holder). */
  pid: number;
  /** Ports to publish on the host; `host: 0` picks a free one. Default none. */
  ports?: readonly NormalizedPort[];
  /**
   * Let the namespace reach the host's loopback through {@link UserModeNetwork.hostAddress}.
   * Default false: services bound to the host's 127.0.0.1 trust local users only.
   */
  hostLoopback?: boolean;
  /** Which stack; default pasta when installed, else slirp4netns. */
  stack?: UserModeStackName;
  /** Where the stacks are installed; default found in PATH and the system directories. */
  tools?: UserModeTools;
  /** Aborts the start (the stack is stopped). */
  signal?: AbortSignal;
}

/** A running user-mode network. */
export interface UserModeNetwork {
  readonly stack: UserModeStackName;
  /** The stack's pid. */
  readonly pid: number;
  /** The published ports, host ports chosen. */
  readonly ports: readonly PublishedPort[];
  /** With `hostLoopback`: the address inside the namespace that reaches the host's loopback; else null. */
  readonly hostAddress: string | null;
  /** Resolves with the stack's exit code once it exited (for whatever reason). */
  readonly exited: Promise<number>;
  /** Ends the stack; resolves once it exited. Idempotent, never rejects. */
  stop(): Promise<void>;
  /**
   * Lets Node exit while the stack runs (it dies with this process anyway, through `tie`): for
   * a stack that lives as long as the process, as the rootless networks' one does.
   */
  unref(): void;
}

/** The installed stacks, from PATH and the system directories. */
export function installedUserModeTools(): UserModeTools {
  return { pasta: findTool('pasta') ?? null, slirp4netns: findTool('slirp4netns') ?? null };
}

/** The host's IPv4 default gateway, which pasta gives the namespace too (null without one). */
export function hostDefaultGateway(routeTable = '/proc/net/route'): string | null {
  let text: string;
  try {
    text = readFileSync(routeTable, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== '00000000' || f[7] !== '00000000' || f[2] === undefined) continue;
    const n = Number.parseInt(f[2], 16);
    // /proc/net/route prints addresses in host (little-endian) byte order.
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
  }
  return null;
}

const SCRATCH_PREFIX = 'berth-usermode-';

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A private directory for a stack's pid file or API socket: under `$XDG_RUNTIME_DIR/berth`
 * when set (a per-user tmpfs, emptied at logout), else the temp dir. Named after this process,
 * so that the directories of an owner that died by SIGKILL (nothing ran to remove them) are
 * removed by the next start of any process of the user.
 */
function scratchDir(): string {
  const runtimeDir = process.env['XDG_RUNTIME_DIR'];
  const base = runtimeDir ? join(runtimeDir, 'berth') : tmpdir();
  mkdirSync(base, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(base)) {
    if (!name.startsWith(SCRATCH_PREFIX)) continue;
    const pid = Number(name.slice(SCRATCH_PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processExists(pid)) rmSync(join(base, name), { recursive: true, force: true });
  }
  return mkdtempSync(join(base, `${SCRATCH_PREFIX}${process.pid}-`));
}

function startFailure(stack: UserModeStackName, proc: TiedProcess, what: string, ports: readonly PublishedPort[]): Error {
  const detail = proc.stderr() || 'no message';
  // pasta and slirp4netns both say "bind" when a published port's host socket is taken.
  if (ports.length > 0 && /bind|in use/i.test(detail)) {
    return new ConflictError(`ports: ${stack} could not publish ${ports.map((p) => `${p.hostIp}:${p.host}/${p.protocol}`).join(', ')}: ${detail}`);
  }
  return new SystemError('ERR_USERMODE_NETWORK', `${stack} ${what}: ${detail}`);
}

/** Resolves when `ready` resolves; rejects when the process exits first, on timeout or abort. */
async function untilReady<T>(stack: UserModeStackName, proc: TiedProcess, ready: Promise<T>, ports: readonly PublishedPort[], signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      ready,
      proc.exited.then((code) => {
        throw startFailure(stack, proc, `exited with code ${code} before the network was up`, ports);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SystemError('ETIMEDOUT', `${stack} did not configure the network within ${USERMODE_READY_TIMEOUT_MS / 1000} s${proc.stderr() ? `: ${proc.stderr()}` : ''}`)), USERMODE_READY_TIMEOUT_MS);
      }),
      new Promise<never>((_, reject) => {
        onAbort = () => reject(new AbortError('aborted while starting the user-mode network', { cause: signal?.reason }));
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/** pasta writes its pid file only after the interface is configured and the ports are bound. */
function pidFileWritten(dir: string, file: string): { ready: Promise<void>; close(): void } {
  let resolve!: () => void;
  const ready = new Promise<void>((r) => (resolve = r));
  const check = (): void => {
    try {
      if (readFileSync(file, 'utf8').endsWith('\n')) resolve();
    } catch {
      // not written yet
    }
  };
  const watcher = watch(dir, check);
  check();
  return { ready, close: () => watcher.close() };
}

async function startPasta(path: string, opts: UserModeNetworkOptions, ports: PublishedPort[]): Promise<UserModeNetwork> {
  const dir = scratchDir();
  const pidFile = join(dir, 'pid');
  const written = pidFileWritten(dir, pidFile);
  let proc: TiedProcess | undefined;
  try {
    proc = startTied(path, pastaArgs({ pid: opts.pid, ports, hostLoopback: opts.hostLoopback ?? false, pidFile }), ['ignore', 'ignore', 'pipe']);
    await untilReady('pasta', proc, written.ready, ports, opts.signal);
  } catch (error) {
    await proc?.stop();
    throw error;
  } finally {
    written.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return handle('pasta', proc, ports, opts.hostLoopback ? hostDefaultGateway() : null, () => {});
}

/** Sends one API request to slirp4netns and returns its parsed answer. */
function slirpRequest(socketPath: string, line: string): Promise<{ return?: unknown; error?: { desc?: string } }> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    let answer = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (answer += d));
    s.on('error', reject);
    s.on('end', () => {
      try {
        resolve(JSON.parse(answer) as { return?: unknown; error?: { desc?: string } });
      } catch {
        reject(new SystemError('EPROTO', `slirp4netns answered ${JSON.stringify(answer.slice(0, 200))}`));
      }
    });
    s.end(line);
  });
}

async function startSlirp(path: string, opts: UserModeNetworkOptions, ports: PublishedPort[]): Promise<UserModeNetwork> {
  const dir = scratchDir();
  const apiSocket = join(dir, 'api.sock');
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  let proc: TiedProcess | undefined;
  try {
    // fd 3: slirp4netns writes "1" once configured; fd 4: it exits at end of file, which
    // comes when berth closes its end or dies.
    proc = startTied(path, slirpArgs({ pid: opts.pid, hostLoopback: opts.hostLoopback ?? false, apiSocket }), ['ignore', 'ignore', 'pipe', 'pipe', 'pipe']);
    const readyFd = proc.child.stdio[3]!;
    const configured = new Promise<void>((resolve) => readyFd.once('data', () => resolve()));
    await untilReady('slirp4netns', proc, configured, ports, opts.signal);
    readyFd.destroy();
    for (const [i, p] of ports.entries()) {
      const answer = await untilReady('slirp4netns', proc, slirpRequest(apiSocket, slirpAddHostFwd(p)), ports, opts.signal);
      if (answer.error) throw new ConflictError(`ports[${i}]: slirp4netns could not publish ${p.hostIp}:${p.host}/${p.protocol}: ${answer.error.desc ?? JSON.stringify(answer.error)}`);
    }
  } catch (error) {
    await proc?.stop();
    removeDir();
    throw error;
  }
  const exitFd = proc.child.stdio[4]!;
  return handle('slirp4netns', proc, ports, opts.hostLoopback ? SLIRP_ADDRESSES.gateway : null, () => {
    exitFd.destroy();
    removeDir();
  });
}

function handle(stack: UserModeStackName, proc: TiedProcess, ports: PublishedPort[], hostAddress: string | null, cleanup: () => void): UserModeNetwork {
  let stopping: Promise<void> | undefined;
  void proc.exited.then(cleanup);
  return {
    stack,
    pid: proc.pid,
    ports,
    hostAddress,
    exited: proc.exited,
    stop: () => {
      stopping ??= proc.stop().then(cleanup);
      return stopping;
    },
    unref: () => {
      proc.child.unref();
      for (const s of proc.child.stdio) (s as unknown as { unref?: () => void } | null)?.unref?.();
    },
  };
}

/**
 * Starts a user-mode network for the namespaces of `options.pid` and resolves once the
 * namespace's `eth0` is configured (address, default route) and every port is published.
 * On failure nothing is left running.
 * @throws UnsupportedError naming the package when neither pasta nor slirp4netns is installed
 *   (or the fix when `/dev/net/tun` cannot be opened); ConflictError when a host port is in
 *   use; ValidationError for a `hostIp` that is not an address of this host; SystemError when
 *   the stack fails or takes longer than {@link USERMODE_READY_TIMEOUT_MS}; AbortError.
 */
export async function startUserModeNetwork(options: UserModeNetworkOptions): Promise<UserModeNetwork> {
  const { stack, path } = requireUserModeStack(describeUserModeStack(options.tools ?? installedUserModeTools(), options.stack));
  if (options.signal?.aborted) throw new AbortError('aborted before the user-mode network started', { cause: options.signal.reason });
  // Fixed ports are checked and free ones chosen here, so a taken port is a ConflictError
  // naming it rather than a stack's exit message (a race with another binder stays possible).
  const ports = await claimHostPorts(options.ports ?? [], []);
  return stack === 'pasta' ? startPasta(path, options, ports) : startSlirp(path, options, ports);
}
