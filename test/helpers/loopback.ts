/**
 * Loopback sockets of a test process: a free port, whether a port can be bound, and an HTTP
 * server standing for "a service on the host's loopback" that containers must reach only when
 * allowed. Everything binds 127.0.0.1 only (the suites' network rule).
 * @module
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';

/** What {@link loopbackServer} answers: a container that prints it reached the host's loopback. */
export const HOST_LOOPBACK_BODY = 'hello-from-the-host-loopback';

/** A port that is free on 127.0.0.1 right now (the kernel's pick, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Whether this process can bind 127.0.0.1:port exclusively (nothing holds it). */
export function bindable(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** An HTTP server on 127.0.0.1 answering {@link HOST_LOOPBACK_BODY} to every request. */
export async function loopbackServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createHttpServer((_req, res) => res.end(HOST_LOOPBACK_BODY));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}
