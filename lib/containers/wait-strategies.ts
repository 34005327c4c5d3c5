/**
 * Wait helpers for test harnesses (testcontainers' `Wait.forLogMessage`, `forListeningPorts`,
 * `forHealthCheck`, `forHttp`), each bounded by a timeout and an optional AbortSignal, each
 * failing fast when the container stops. A timeout is a {@link WaitTimeoutError} that says
 * what was awaited and what was last seen (the last log lines, the last HTTP status or
 * connection error, the health log), as properties and in its message.
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
import { readdirSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, BerthError, ConflictError, ValidationError } from '../errors.js';
import { listeningInodes } from '../network/listening-sockets.js';
import { isActive, type ContainerState } from './container-record.js';
import type { HealthLogEntry } from './healthcheck.js';
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
  /**
   * Where the host reaches the container's TCP `port`: its published binding, else its address
   * on its first network (the host's loopback with network `host`); undefined when the host
   * cannot reach it (network `none`, or not running).
   */
  httpEndpoint(port: number): Promise<{ host: string; port: number } | undefined>;
}

/** Options of `container.waitForHttp()`. */
export interface WaitForHttpOptions extends WaitOptions {
  /** The container's TCP port (required): reached through its published binding, else at its own address. */
  port: number;
  /** The status to wait for: a number, or a test. Default: any 2xx. */
  status?: number | ((status: number) => boolean);
  /** The body must contain this string, or match this RegExp (read up to 1 MiB). */
  body?: string | RegExp;
  /** Default `'GET'`. */
  method?: string;
  headers?: Record<string, string>;
  /** Milliseconds between attempts. Default 100. */
  interval?: number;
  /** Milliseconds one request may take. Default 2000 (capped by the time left). */
  requestTimeout?: number;
}

/** What a wait saw last before it ran out of time (each field where it applies). */
export interface WaitEvidence {
  /** The last lines of the container's output (`waitForLog`: up to 5). */
  lastLogLines?: string[];
  /** The last HTTP status received (`waitForHttp`). */
  lastStatus?: number;
  /** The start of the last HTTP body received, when the status matched but the body did not (`waitForHttp`). */
  lastBody?: string;
  /** The last connection or request error (`waitForHttp`, `waitForPort`). */
  lastError?: string;
  /** The last healthcheck results (`waitForHealthy`), oldest first. */
  healthLog?: HealthLogEntry[];
  /** The container's status when the time ran out. */
  lastState?: string;
}

/**
 * The error of a wait that ran out of time. `.awaited` says what was awaited; the
 * {@link WaitEvidence} fields what was last seen (also summed up in the message).
 */
export class WaitTimeoutError extends BerthError implements WaitEvidence {
  /** What the wait was for: `log /ready/`, `port 8080`, `HTTP GET http://127.0.0.1:32768/health -> 200`, `a healthy status`. */
  readonly awaited: string;
  /** The timeout, in milliseconds. */
  readonly timeoutMs: number;
  readonly lastLogLines?: string[];
  readonly lastStatus?: number;
  readonly lastBody?: string;
  readonly lastError?: string;
  readonly healthLog?: HealthLogEntry[];
  readonly lastState?: string;

  constructor(awaited: string, timeoutMs: number, evidence: WaitEvidence = {}) {
    super('ERR_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${awaited}; ${describeEvidence(evidence)}`);
    this.awaited = awaited;
    this.timeoutMs = timeoutMs;
    for (const [k, v] of Object.entries(evidence)) if (v !== undefined) Object.assign(this, { [k]: v });
  }
}

function clip(text: string, max = 200): string {
  const one = text.replace(/\s+$/, '');
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

function describeEvidence(e: WaitEvidence): string {
  const parts: string[] = [];
  if (e.lastStatus !== undefined) parts.push(`last HTTP status ${e.lastStatus}${e.lastBody !== undefined ? ` with body ${JSON.stringify(clip(e.lastBody, 120))}` : ''}`);
  if (e.lastError !== undefined) parts.push(`last error: ${e.lastError}`);
  if (e.healthLog !== undefined) {
    const last = e.healthLog.at(-1);
    parts.push(last ? `last health check: exit code ${last.exitCode}, output ${JSON.stringify(clip(last.output, 120))} (${e.healthLog.length} in the log)` : 'no health check has run yet');
  }
  if (e.lastLogLines !== undefined) parts.push(e.lastLogLines.length > 0 ? `last log lines: ${e.lastLogLines.map((l) => JSON.stringify(clip(l, 120))).join(' | ')}` : 'no output yet');
  if (e.lastState !== undefined) parts.push(`container ${e.lastState}`);
  return parts.length > 0 ? `seen last: ${parts.join('; ')}` : 'nothing seen';
}

function deadlineSignal(opts: WaitOptions, what: string | (() => string), evidence: () => WaitEvidence = () => ({})): { signal: AbortSignal; timedOut: () => boolean; done: () => void } {
  const timeout = opts.timeout ?? 60_000;
  if (!(timeout > 0) || !Number.isFinite(timeout)) throw new ValidationError('timeout', 'must be a positive number of milliseconds');
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort(new WaitTimeoutError(typeof what === 'function' ? what() : what, timeout, evidence()));
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

/** Log lines a timed-out `waitForLog` reports. */
const RECENT_LINES = 5;

function stopped(t: WaitTarget, s: ContainerState, what: string): ConflictError {
  return new ConflictError(`container ${t.name} stopped (${s.status}, exit code ${s.exitCode}) while waiting for ${what}`);
}

/** Resolves with the matching line once `pattern` has matched `times` lines (all output since the container was created). */
export async function waitForLog(t: WaitTarget, pattern: RegExp | string, opts: WaitOptions & { times?: number; stream?: 'stdout' | 'stderr' } = {}): Promise<LogEntry> {
  const what = `log ${String(pattern)}`;
  const times = opts.times ?? 1;
  if (!Number.isInteger(times) || times < 1) throw new ValidationError('times', 'must be a positive integer');
  const test = typeof pattern === 'string' ? (l: string) => l.includes(pattern) : (l: string) => pattern.test(l);
  const recent: string[] = [];
  const d = deadlineSignal(opts, what, () => ({ lastLogLines: [...recent] }));
  let seen = 0;
  try {
    for await (const e of t.logs({ follow: true, signal: d.signal, ...(opts.stream ? { [opts.stream === 'stdout' ? 'stderr' : 'stdout']: false } : {}) })) {
      if (test(e.line) && ++seen >= times) return e;
      recent.push(e.line);
      if (recent.length > RECENT_LINES) recent.shift();
    }
  } catch (error) {
    if (d.signal.aborted) throw failure(d, what);
    throw error;
  } finally {
    d.done();
  }
  throw stopped(t, await t.readState(), what);
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
  let last: WaitEvidence = { lastError: 'not checked yet' };
  const d = deadlineSignal(opts, what, () => last);
  try {
    for (;;) {
      const s = await t.readState();
      if (!isActive(s.status)) throw stopped(t, s, what);
      last = { lastState: s.status, lastError: `no TCP socket listening on port ${port} in the container's network namespace` };
      if (s.status === 'running' && s.pid > 0) {
        const inodes = listeningInodes(s.pid, port);
        if (inodes.size > 0) {
          if (t.network() !== 'host') return;
          last = { lastState: s.status, lastError: `port ${port} listens, but not in a process of the container, or 127.0.0.1:${port} refused` };
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
  let last: WaitEvidence = {};
  const d = deadlineSignal(opts, what, () => last);
  try {
    for (;;) {
      const s = await t.readState();
      last = { healthLog: s.health?.log ?? [], lastState: `${s.status}${s.health ? `, health ${s.health.status} (failing streak ${s.health.failingStreak})` : ''}` };
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

/** Read at most this much of a body to match `body` against. */
const MAX_BODY = 1 << 20;

interface HttpReply {
  status: number;
  body: string;
}

function httpOnce(url: URL, method: string, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time (no agent): a harness polls a server that is starting.
    const req = request(url, { method, headers, agent: false, signal, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_BODY) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Resolves with the status and body once an HTTP request to the container's `port` at `path`
 * answers with the wanted status (and body). Reached from the host, through the published
 * binding of `port` or, without one, at the container's address on its network.
 * @throws ValidationError for bad options; ConflictError when the container stops, or has no
 *   address the host can reach (network `none` without the port published); WaitTimeoutError
 *   with the last status, body or connection error; AbortError.
 */
export async function waitForHttp(t: WaitTarget, path: string, opts: WaitForHttpOptions): Promise<HttpReply> {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new ValidationError('path', `must start with "/", got ${JSON.stringify(path)}`);
  if (!opts || typeof opts !== 'object') throw new ValidationError('options', 'must be an object with at least { port }');
  const { port } = opts;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ValidationError('port', 'must be an integer from 1 to 65535');
  const status = opts.status ?? ((s: number) => s >= 200 && s < 300);
  if (typeof status !== 'function' && !(Number.isInteger(status) && status >= 100 && status <= 599)) throw new ValidationError('status', 'must be an HTTP status (100-599) or a function');
  const statusOk = typeof status === 'function' ? status : (s: number) => s === status;
  const body = opts.body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof RegExp)) throw new ValidationError('body', 'must be a string or a RegExp');
  const bodyOk = body === undefined ? () => true : typeof body === 'string' ? (b: string) => b.includes(body) : (b: string) => body.test(b);
  const method = opts.method ?? 'GET';
  if (typeof method !== 'string' || !/^[A-Z]+$/.test(method)) throw new ValidationError('method', `must be an HTTP method in capitals, got ${JSON.stringify(method)}`);
  const interval = opts.interval ?? 100;
  const requestTimeout = opts.requestTimeout ?? 2000;
  if (!(requestTimeout > 0)) throw new ValidationError('requestTimeout', 'must be a positive number of milliseconds');
  const wanted = typeof status === 'function' ? (opts.status === undefined ? '2xx' : 'the status test') : String(status);
  let what = `HTTP ${method} ${path} on port ${port} -> ${wanted}${body !== undefined ? ` with body ${String(body)}` : ''}`;
  let last: WaitEvidence = { lastError: 'no request made yet' };
  const d = deadlineSignal(opts, () => what, () => last);
  const started = Date.now();
  const timeout = opts.timeout ?? 60_000;
  try {
    const mode = t.network();
    for (;;) {
      const s = await t.readState();
      if (!isActive(s.status)) throw stopped(t, s, what);
      if (mode === 'none' || mode.startsWith('container:')) {
        throw new ConflictError(`container ${t.name} has no address the host can reach for port ${port} (network "${mode}"): publish it with ports: [${port}] or use a bridge network`);
      }
      // Between an exit and its record the leases are already gone: no endpoint, try again.
      const endpoint = s.status === 'running' ? await t.httpEndpoint(port) : undefined;
      if (!endpoint) last = { lastState: s.status, lastError: `container has no endpoint on a network (${s.status})` };
      if (endpoint) {
        const url = new URL(`http://${endpoint.host}:${endpoint.port}${path}`);
        what = `HTTP ${method} ${url.href} (container port ${port}) -> ${wanted}${body !== undefined ? ` with body ${String(body)}` : ''}`;
        try {
          const left = Math.max(1, timeout - (Date.now() - started));
          const reply = await httpOnce(url, method, opts.headers ?? {}, Math.min(requestTimeout, left), d.signal);
          if (statusOk(reply.status) && bodyOk(reply.body)) return reply;
          last = { lastStatus: reply.status, ...(statusOk(reply.status) ? { lastBody: reply.body } : {}) };
        } catch (error) {
          if (d.signal.aborted) throw failure(d, what);
          last = { lastError: (error as Error).message };
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
