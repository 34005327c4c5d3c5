/**
 * `ready: { port }` of a prewarmed pool: the main process is ready once a TCP socket listens on
 * that port in its sandbox's network namespace. As the containers' `waitForPort` does, the
 * listening sockets are read from `/proc/<pid>/net/tcp{,6}` of the sandbox's PID 1, which lists
 * its network namespace's sockets: no client in the image, no exec, no connection (a socket in
 * state LISTEN accepts connections: the kernel completes handshakes from its backlog).
 * @module
 */
import { listeningInodes } from '../network/listening-sockets.js';

/** Whether a TCP socket listens on `port` in the network namespace of `pid`. */
export function listensOn(pid: number, port: number): boolean {
  return listeningInodes(pid, port).size > 0;
}
