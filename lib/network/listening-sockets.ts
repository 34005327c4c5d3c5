/**
 * TCP sockets listening in a network namespace, read from `/proc/<pid>/net/tcp{,6}` of a
 * process in it (that file lists the namespace's sockets): no client in the image, no exec, no
 * connection. Used by the containers' `waitForPort` and by prewarmed pools' `ready: { port }`.
 * @module
 */
import { readFileSync } from 'node:fs';

/** TCP state LISTEN in /proc/net/tcp. */
const LISTEN = '0A';

/** Inodes of the sockets listening on `port` in the network namespace of `pid`. */
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
      if (localPort === port && f[3] === LISTEN) inodes.add(f[9]!);
    }
  }
  return inodes;
}
