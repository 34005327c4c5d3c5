/**
 * Wait helpers for test harnesses (testcontainers' `Wait.forLogMessage`, `forListeningPorts`,
 * `forHealthCheck`), each bounded by a timeout and an optional AbortSignal, each failing fast
 * when the container stops.
 *
 * Ports: a container with network `none` has only its own loopback, which the host cannot
 * reach, and exec'ing a probe would need a client in the image. Berth reads the listening
 * sockets of the container's network namespace instead: `/proc/<pid>/net/tcp{,6}` of its
 * PID 1 lists them, and a socket in state LISTEN accepts connections (the kernel completes
 * the handshake from the backlog). This works for any image, with no exec. With network
 * `host` that table is the host's, so berth also requires the socket's inode to be open in a
 * process of the container's cgroup, then connects to 127.0.0.1 to be sure.
 * @module
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, BerthError, ConflictError, ValidationError } from '../errors.js';
import { isActive, type ContainerState } from './container-record.js';
import type { LogEntry, LogsOptions } from './log-reader.js';

export interface WaitOptions {
  /** Milliseconds. Default 60000. */
  timeout?: number;
  signal?: AbortSignal;
}

/** What the strategies need from a container. */
export interface WaitTarget {
  readonly name: string;
  logs(options: LogsOptions): AsyncIterable<LogEntry>;
  /** The current state (throws NotFoundError once removed). */
  readState(): Promise<ContainerState>;
  /** The network mode: 'none', 'host' or a network name (own namespace). */
  network(): string;
  /** Pids in the container's cgroup. */
  pids(): number[];
}

/** The error of a wait that ran out of time. */
export class WaitTimeoutError extends BerthError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message);
  }
}

function deadlineSignal(opts: WaitOptions, what: string): { signal: AbortSignal; timedOut: () => boolean; done: () => void } {
  const timeout = opts.timeout ?? 60_000;
  if (!(timeout > 0) || !Number.isFinite(timeout)) throw new ValidationError('timeout', 'must be a positive number of milliseconds');
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort(new WaitTimeoutError(`timed out after ${timeout} ms waiting for ${what}`));
  }, timeout);
  const onAbort = () => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  return {
    signal: ac.signal,
    timedOut: () => timedOut,
    done: () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    },
  };
}

function failure(d: { timedOut: () => boolean; signal: AbortSignal }, what: string): Error {
  if (d.timedOut()) return d.signal.reason as Error;
  return new AbortError(`aborted while waiting for ${what}`, { cause: d.signal.reason });
}

function stopped(t: WaitTarget, s: ContainerState, what: string): ConflictError {
  return new ConflictError(`container ${t.name} stopped (${s.status}, exit code ${s.exitCode}) while waiting for ${what}`);
}

/** Resolves with the matching line once `pattern` has matched `times` lines (all output since the container was created). */
export async function waitForLog(t: WaitTarget, pattern: RegExp | string, opts: WaitOptions & { times?: number; stream?: 'stdout' | 'stderr' } = {}): Promise<LogEntry> {
  const what = `log ${String(pattern)}`;
  const times = opts.times ?? 1;
  if (!Number.isInteger(times) || times < 1) throw new ValidationError('times', 'must be a positive integer');
  const test = typeof pattern === 'string' ? (l: string) => l.includes(pattern) : (l: string) => pattern.test(l);
  const d = deadlineSignal(opts, what);
  let seen = 0;
  try {
    for await (const e of t.logs({ follow: true, signal: d.signal, ...(opts.stream ? { [opts.stream === 'stdout' ? 'stderr' : 'stdout']: false } : {}) })) {
      if (test(e.line) && ++seen >= times) return e;
    }
  } catch (error) {
    if (d.signal.aborted) throw failure(d, what);
    throw error;
  } finally {
    d.done();
  }
  throw stopped(t, await t.readState(), what);
}

/** Inodes of sockets listening on `port` in the network namespace of `pid`. */
export function listeningInodes(pid: number, port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = Number.parseInt(f[1]!.split(':')[1] ?? '', 16);
      if (localPort === port && f[3] === '0A') inodes.add(f[9]!);
    }
  }
  return inodes;
}

function ownedBy(pids: number[], inodes: Set<string>): boolean {
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return true;
      } catch {
        // closed meanwhile
      }
    }
  }
  return false;
}

function tcpConnects(port: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port, signal });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Resolves once a TCP socket of the container listens on `port` (and, with host network, accepts a loopback connection). */
export async function waitForPort(t: WaitTarget, port: number, opts: WaitOptions & { interval?: number } = {}): Promise<void> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ValidationError('port', 'must be an integer from 1 to 65535');
  const what = `port ${port}`;
  const interval = opts.interval ?? 100;
  const d = deadlineSignal(opts, what);
  try {
    for (;;) {
      const s = await t.readState();
      if (!isActive(s.status)) throw stopped(t, s, what);
      if (s.status === 'running' && s.pid > 0) {
        const inodes = listeningInodes(s.pid, port);
        if (inodes.size > 0) {
          if (t.network() !== 'host') return;
          if (ownedBy(t.pids(), inodes) && (await tcpConnects(port, d.signal))) return;
        }
      }
      try {
        await sleep(interval, undefined, { signal: d.signal });
      } catch {
        throw failure(d, what);
      }
    }
  } finally {
    d.done();
  }
}

/** Resolves once the healthcheck reports `healthy`. */
export async function waitForHealthy(t: WaitTarget, hasHealthcheck: boolean, opts: WaitOptions & { interval?: number } = {}): Promise<void> {
  if (!hasHealthcheck) throw new ConflictError(`container ${t.name} has no healthcheck (neither its image nor its options define one)`);
  const what = 'a healthy status';
  const d = deadlineSignal(opts, what);
  try {
    for (;;) {
      const s = await t.readState();
      if (s.health?.status === 'healthy' && s.status === 'running') return;
      if (!isActive(s.status)) throw stopped(t, s, what);
      try {
        await sleep(opts.interval ?? 50, undefined, { signal: d.signal });
      } catch {
        throw failure(d, what);
      }
    }
  } finally {
    d.done();
  }
}
