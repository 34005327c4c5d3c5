/**
 * `ready: { port }` of a prewarmed pool: the main process is ready once a TCP socket listens on
 * that port in its sandbox's network namespace. As the containers' `waitForPort` does, the
 * listening sockets are read from `/proc/<pid>/net/tcp{,6}` of the sandbox's PID 1, which lists
 * its network namespace's sockets: no client in the image, no exec, no connection (a socket in
 * state LISTEN accepts connections: the kernel completes handshakes from its backlog).
 * @module
 */
import { readFileSync } from 'node:fs';

/** TCP state LISTEN in /proc/net/tcp. */
const LISTEN = '0A';

/** Whether a TCP socket listens on `port` in the network namespace of `pid`. */
export function listensOn(pid: number, port: number): boolean {
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      if (f[3] === LISTEN && Number.parseInt(f[1]!.split(':')[1] ?? '', 16) === port) return true;
    }
  }
  return false;
}
