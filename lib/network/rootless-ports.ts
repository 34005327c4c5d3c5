/**
 * Published ports of a rootless container on a user network (docs/design/networks.md,
 * "Published ports without root"). The container's address exists only inside this process's
 * rootless network namespace (rootless-netns.ts), whose pasta was started before the
 * container and cannot be given forwards at run time (and may not be restarted under live
 * containers). So each such container gets one `berth-helper port-forward`
 * (src-native/port-forward.h): it binds the host sockets as the user in the host's namespace,
 * then joins the rootless namespace and splices each accepted connection (each UDP client) to
 * a socket it opens there to the container's address. Bound before "go", stopped before the
 * container's address is released (so a later holder of the address is never reached through
 * it); tied to this process by its parent-death signal, and ended by EOF on its stdin.
 * @module
 */
import { closeSync, constants as FS, openSync } from 'node:fs';
import { ConflictError, SystemError, ValidationError } from '../errors.js';
import type { PublishedPort } from './types.js';
import { startHelper, type TiedProcess } from './usermode-process.js';

/** How long the forwarder may take to bind and join (a loaded 2-CPU VM: milliseconds). */
const READY_TIMEOUT_MS = 20_000;

const ERRNO: Record<number, string> = { 1: 'EPERM', 13: 'EACCES', 98: 'EADDRINUSE', 99: 'EADDRNOTAVAIL' };

/** A running forwarder. */
export interface RootlessPortForwarder {
  /** The forwarder's pid. */
  readonly pid: number;
  /** The published ports, host ports as bound. */
  readonly ports: readonly PublishedPort[];
  /** Ends it (its host sockets close with it); resolves once it exited. Idempotent. */
  stop(): Promise<void>;
}

/** What the forwarder said when it could not bind `ports[index]`: a typed error naming it. */
function bindError(errno: number, syscall: string, index: number, p: PublishedPort, message: string): Error {
  const what = `${p.hostIp}:${p.host}/${p.protocol}`;
  const code = ERRNO[errno];
  if (code === 'EADDRINUSE') return new ConflictError(`ports[${index}]: host port ${what} is already in use`);
  if (code === 'EACCES') return new ConflictError(`ports[${index}]: not allowed to bind ${what} (ports below net.ipv4.ip_unprivileged_port_start need root)`);
  if (code === 'EADDRNOTAVAIL') return new ValidationError(`ports[${index}].hostIp`, `${p.hostIp} is not an address of this host`);
  return new SystemError(code ?? 'ERR_PORT_FORWARD', `ports[${index}]: berth-helper port-forward: ${syscall} ${what}: ${message}`, errno > 0 ? { errno, syscall } : {});
}

function firstLine(proc: TiedProcess): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const out = proc.child.stdout!;
    out.setEncoding('utf8');
    const timer = setTimeout(() => done(undefined), READY_TIMEOUT_MS);
    const onData = (d: string): void => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl >= 0) done(text.slice(0, nl));
    };
    const done = (line: string | undefined): void => {
      clearTimeout(timer);
      out.off('data', onData);
      resolve(line);
    };
    out.on('data', onData);
    void proc.exited.then(() => done(undefined));
  });
}

/**
 * Starts the forwarder of `ports` to `target` (the container's address on its primary
 * network) in the namespaces of `helperPid` (the rootless namespace's helper, whose user
 * namespace is the held one). Resolves once every host socket is bound.
 * @throws ConflictError for a host port in use (or below the unprivileged port range);
 *   ValidationError for a `hostIp` that is not this host's; SystemError when the forwarder
 *   cannot start or join the namespace.
 */
export async function startRootlessPortForwarder(helperPid: number, target: string, ports: readonly PublishedPort[]): Promise<RootlessPortForwarder> {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(target)) throw new SystemError('EINVAL', `rootless ports: ${JSON.stringify(target)} is not the container's IPv4 address`);
  const specs = ports.map((p) => `${p.protocol}:${p.hostIp}:${p.host}:${p.container}`);
  // The helper is our unreaped child: its pid names it until we wait for it.
  const fds: number[] = [];
  let proc: TiedProcess;
  try {
    for (const ns of ['user', 'net']) fds.push(openSync(`/proc/${helperPid}/ns/${ns}`, FS.O_RDONLY));
    proc = startHelper(['port-forward', String(process.pid), target, ...specs], ['pipe', 'pipe', 'pipe', fds[0]!, fds[1]!]);
  } catch (error) {
    throw new SystemError('ERR_PORT_FORWARD', `rootless ports: cannot start the forwarder in the namespace of pid ${helperPid}: ${(error as Error).message}`, { cause: error });
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  proc.child.stdin!.on('error', () => {});
  const line = await firstLine(proc);
  const words = line?.split(' ') ?? [];
  if (words[0] === 'ready' && words.length === ports.length + 1) {
    const bound = ports.map((p, i) => ({ ...p, host: Number(words[i + 1]) }));
    let stopping: Promise<void> | undefined;
    return {
      pid: proc.pid,
      ports: bound,
      stop: () => {
        stopping ??= (async () => {
          proc.child.stdin!.end();
          const timer = setTimeout(() => void proc.stop(), 2000);
          await proc.exited;
          clearTimeout(timer);
        })();
        return stopping;
      },
    };
  }
  await proc.stop();
  if (words[0] === 'err') {
    const [, errno, syscall, spec, ...message] = words;
    const index = specs.indexOf(spec ?? '');
    if (index >= 0) throw bindError(Number(errno), syscall ?? '-', index, ports[index]!, message.join(' '));
    throw new SystemError('ERR_PORT_FORWARD', `rootless ports: berth-helper port-forward: ${syscall} ${spec}: ${message.join(' ')}`);
  }
  throw new SystemError('ERR_PORT_FORWARD', `rootless ports: berth-helper port-forward did not start: ${line ?? (proc.stderr() || 'no message')}`);
}
