/**
 * Published ports: Docker's `-p` syntax and objects to one normalized form, and the checks
 * that happen before a container starts (the host port is free, `0` becomes a free port).
 * @module
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { ConflictError, ValidationError } from '../errors.js';
import { parseIpv4 } from './cidr.js';
import type { NormalizedPort, PortProtocol, PortSpec, PublishedPort } from './types.js';

function portNumber(value: unknown, option: string, allowZero: boolean): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    throw new ValidationError(option, `must be a port number between ${allowZero ? 0 : 1} and 65535, got ${JSON.stringify(value)}`);
  }
  return n;
}

function protocolOf(value: unknown, option: string): PortProtocol {
  if (value === undefined) return 'tcp';
  if (value === 'tcp' || value === 'udp') return value;
  throw new ValidationError(option, `must be "tcp" or "udp", got ${JSON.stringify(value)}`);
}

/**
 * Where a port is published when no `hostIp` is given: the host's loopback only. berth is
 * embedded in apps and test harnesses, where Docker's `0.0.0.0` quietly exposed a container
 * (often one running untrusted code) to every network the host is on. `0.0.0.0` opts in.
 */
export const DEFAULT_HOST_IP = '127.0.0.1';

function hostIpOf(value: unknown, option: string): string {
  if (value === undefined || value === '') return DEFAULT_HOST_IP;
  if (parseIpv4(value) === undefined) throw new ValidationError(option, `must be an IPv4 address of this host, got ${JSON.stringify(value)}`);
  return value as string;
}

/** One port in Docker's `[hostIp:][hostPort:]containerPort[/proto]` syntax. */
function parsePortString(text: string, option: string): NormalizedPort {
  const slash = text.lastIndexOf('/');
  const protocol = protocolOf(slash >= 0 ? text.slice(slash + 1) : undefined, option);
  const parts = (slash >= 0 ? text.slice(0, slash) : text).split(':');
  if (parts.length > 3 || parts.some((p, i) => p === '' && i === parts.length - 1)) {
    throw new ValidationError(option, `"${text}" is not a port mapping ([hostIp:][hostPort:]containerPort[/tcp|udp])`);
  }
  if (parts.some((p) => p.includes('-'))) throw new ValidationError(option, `"${text}": port ranges are not supported; list each port`);
  const container = portNumber(parts[parts.length - 1], option, false);
  const host = parts.length >= 2 && parts[parts.length - 2] !== '' ? portNumber(parts[parts.length - 2], option, true) : 0;
  const hostIp = parts.length === 3 ? hostIpOf(parts[0], option) : DEFAULT_HOST_IP;
  return { container, host, hostIp, protocol };
}

/**
 * Validates `ports` and gives each its defaults (host 0 = pick, hostIp 127.0.0.1, tcp).
 * @throws ValidationError naming `ports[i]`.
 */
export function normalizePorts(ports: unknown, option = 'ports'): NormalizedPort[] {
  if (!Array.isArray(ports)) throw new ValidationError(option, 'must be an array of port mappings');
  const out = ports.map((p: PortSpec, i): NormalizedPort => {
    const at = `${option}[${i}]`;
    if (typeof p === 'number') return { container: portNumber(p, at, false), host: 0, hostIp: DEFAULT_HOST_IP, protocol: 'tcp' };
    if (typeof p === 'string') return parsePortString(p, at);
    if (!p || typeof p !== 'object') throw new ValidationError(at, 'must be { container, host?, hostIp?, protocol? }, a number or a string such as "127.0.0.1:8080:80"');
    for (const key of Object.keys(p)) {
      if (!['container', 'host', 'hostIp', 'protocol'].includes(key)) throw new ValidationError(`${at}.${key}`, 'unknown field (expected container, host, hostIp, protocol)');
    }
    return {
      container: portNumber(p.container, `${at}.container`, false),
      host: p.host === undefined ? 0 : portNumber(p.host, `${at}.host`, true),
      hostIp: hostIpOf(p.hostIp, `${at}.hostIp`),
      protocol: protocolOf(p.protocol, `${at}.protocol`),
    };
  });
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < i; j++) {
      if (out[i]!.host !== 0 && clashes(out[i]!, out[j]!)) {
        throw new ValidationError(`${option}[${i}]`, `host port ${out[i]!.host}/${out[i]!.protocol} is published twice`);
      }
    }
  }
  return out;
}

/** Two publications compete for the same host socket. */
export function clashes(a: { host: number; hostIp: string; protocol: PortProtocol }, b: { host: number; hostIp: string; protocol: PortProtocol }): boolean {
  return a.protocol === b.protocol && a.host === b.host && (a.hostIp === b.hostIp || a.hostIp === '0.0.0.0' || b.hostIp === '0.0.0.0');
}

/** `'8080/tcp'`, `8080` or `{ port, protocol }` (EXPOSE): validated into `{ port, protocol }`. */
export function normalizeExposedPorts(value: unknown, option = 'exposedPorts'): Array<{ port: number; protocol: PortProtocol }> {
  if (!Array.isArray(value)) throw new ValidationError(option, 'must be an array such as [8080, "53/udp"]');
  return value.map((v: unknown, i) => {
    const at = `${option}[${i}]`;
    if (typeof v === 'number') return { port: portNumber(v, at, false), protocol: 'tcp' as const };
    if (v && typeof v === 'object') return { port: portNumber((v as { port?: unknown }).port, `${at}.port`, false), protocol: protocolOf((v as { protocol?: unknown }).protocol, `${at}.protocol`) };
    if (typeof v !== 'string') throw new ValidationError(at, 'must be a port number or "port/protocol"');
    const [port, proto] = v.split('/');
    return { port: portNumber(port, at, false), protocol: protocolOf(proto, at) };
  });
}

/**
 * Binds the host socket a publication would shadow, to learn whether something holds it, and
 * for `host: 0` to let the kernel choose a free port. The socket is closed at once: kernel
 * DNAT needs no listener.
 */
function probe(hostIp: string, port: number, protocol: PortProtocol): Promise<number> {
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const s = createSocket('udp4');
      s.once('error', (e) => {
        s.close();
        reject(e);
      });
      s.bind({ address: hostIp, port, exclusive: true }, () => {
        const chosen = s.address().port;
        s.close(() => resolve(chosen));
      });
      return;
    }
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: hostIp, port, exclusive: true }, () => {
      const address = server.address();
      const chosen = typeof address === 'object' && address ? address.port : port;
      server.close(() => resolve(chosen));
    });
  });
}

/**
 * Turns normalized ports into publications: checks that each fixed host port is free and
 * picks free ports for `host: 0`, avoiding `taken` (ports berth already forwards, which no
 * socket holds).
 * @throws ConflictError (code `ERR_CONFLICT`) when a host port is in use; ValidationError when
 *   `hostIp` is not an address of this host.
 */
export async function claimHostPorts(ports: readonly NormalizedPort[], taken: readonly PublishedPort[]): Promise<PublishedPort[]> {
  const out: PublishedPort[] = [];
  for (const [i, p] of ports.entries()) {
    const others = [...taken, ...out];
    const describe = (port: number) => `${p.hostIp}:${port}/${p.protocol}`;
    if (p.host !== 0) {
      const holder = others.find((t) => clashes(t, p));
      if (holder) throw new ConflictError(`ports[${i}]: host port ${describe(p.host)} is already published by another berth container`);
      try {
        await probe(p.hostIp, p.host, p.protocol);
      } catch (error) {
        throw portError(error, i, describe(p.host));
      }
      out.push({ container: p.container, protocol: p.protocol, hostIp: p.hostIp, host: p.host });
      continue;
    }
    let chosen = 0;
    for (let attempt = 0; attempt < 20 && chosen === 0; attempt++) {
      let port: number;
      try {
        port = await probe(p.hostIp, 0, p.protocol);
      } catch (error) {
        throw portError(error, i, describe(0));
      }
      if (!others.some((t) => clashes(t, { ...p, host: port }))) chosen = port;
    }
    if (chosen === 0) throw new ConflictError(`ports[${i}]: found no free host port for ${p.container}/${p.protocol}`);
    out.push({ container: p.container, protocol: p.protocol, hostIp: p.hostIp, host: chosen });
  }
  return out;
}

function portError(error: unknown, index: number, what: string): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new ConflictError(`ports[${index}]: host port ${what} is already in use`, { cause: error });
  if (code === 'EADDRNOTAVAIL') return new ValidationError(`ports[${index}].hostIp`, `${what.split(':')[0]} is not an address of this host`, { cause: error });
  if (code === 'EACCES') return new ConflictError(`ports[${index}]: not allowed to bind ${what}`, { cause: error });
  return error as Error;
}
