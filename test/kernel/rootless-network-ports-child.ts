/**
 * The rootless program of rootless-network-ports.test.ts: runs as the unprivileged test user,
 * publishes ports of containers on user networks and prints one JSON line per case:
 * `{ name, ok, result | error }`. The parent asserts; this only reports.
 * Usage: rootless-network-ports-child.ts <case>
 */
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime } from '../../lib/index.js';
import { reportCases, type Cases } from '../helpers/case-report.js';
import { bindable, freePort } from '../helpers/loopback.js';
import { isBerthHelper, liveProcesses } from '../helpers/usermode-leftovers.js';
import { userBusyboxRootfs } from '../helpers/user-busybox-rootfs.js';

/** The user's busybox rootfs with a web root: an index and a CGI that ends the run() case's container once the host side reached it. */
function webRootfs(): string {
  const root = userBusyboxRootfs({ dirs: ['www/cgi-bin'] });
  writeFileSync(join(root, 'www/index.html'), 'hello-from-web\n');
  writeFileSync(join(root, 'www/cgi-bin/done'), '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho hello-from-run\ntouch /tmp/done\n', { mode: 0o755 });
  return root;
}

/** This user's port forwarders, by pid. */
function forwarders(): number[] {
  return liveProcesses().filter((p) => isBerthHelper(p, 'port-forward')).map((p) => p.pid);
}

/** One GET from the host side: `{ body }` or `{ error }` (a code such as ECONNREFUSED). */
function get(port: number, path = '/'): Promise<{ body?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ body }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

/** GET until a body comes back, `tries` times 200 ms apart (the server may still be starting). Bounded. */
async function getWhenUp(port: number, path = '/', tries = 50): Promise<{ body?: string; error?: string }> {
  let last: { body?: string; error?: string } = {};
  for (let i = 0; i < tries; i++) {
    last = await get(port, path);
    if (last.body !== undefined) return last;
    await sleep(200);
  }
  return last;
}

/** One UDP datagram to 127.0.0.1:port, its reply within 1 s, `tries` times. Bounded. */
async function udpExchange(port: number, text: string, tries = 30): Promise<string | undefined> {
  const s = createSocket('udp4');
  try {
    for (let i = 0; i < tries; i++) {
      const reply = new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 1000);
        s.once('message', (m) => {
          clearTimeout(timer);
          resolve(m.toString());
        });
      });
      s.send(text, port, '127.0.0.1');
      const r = await reply;
      if (r !== undefined) return r;
    }
    return undefined;
  } finally {
    s.close();
  }
}

/**
 * `payload` through 127.0.0.1:port, half-closed after it, and what comes back until the end:
 * `tries` attempts 300 ms apart (the server may still be starting). Bounded.
 */
async function echoed(port: number, payload: Buffer, tries = 30): Promise<{ same: boolean; bytes: number; error?: string }> {
  let last: { same: boolean; bytes: number; error?: string } = { same: false, bytes: 0 };
  for (let i = 0; i < tries; i++) {
    last = await new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const s = connect(port, '127.0.0.1', () => s.end(payload));
      s.setTimeout(10_000, () => s.destroy(new Error('timeout')));
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('error', (e: NodeJS.ErrnoException) => resolve({ same: false, bytes: 0, error: e.code ?? e.message }));
      s.on('end', () => {
        const got = Buffer.concat(chunks);
        resolve({ same: createHash('sha256').update(got).digest('hex') === createHash('sha256').update(payload).digest('hex'), bytes: got.length });
      });
    });
    // Refused or reset: the server is not listening yet. Anything else is the answer.
    if (last.bytes > 0 || (last.error !== 'ECONNREFUSED' && last.error !== 'ECONNRESET')) return last;
    await sleep(300);
  }
  return last;
}

function failure(error: unknown): { name: string; message: string } {
  return { name: (error as Error).name, message: (error as Error).message };
}

const [name] = process.argv.slice(2) as [string];
const source = { rootfs: webRootfs() };
const hostTools = { host: true } as const;
const UDP_ECHO = ['import socket', 's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)', "s.bind(('', 9000))", 'while True:', '  d, a = s.recvfrom(512)', '  s.sendto(d.upper(), a)'].join('\n');

const TCP_ECHO = [
  'import socket',
  's = socket.socket()',
  's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  "s.bind(('', 9001))",
  's.listen(4)',
  'while True:',
  '  c, _ = s.accept()',
  '  got = []',
  '  while True:',
  '    d = c.recv(65536)',
  '    if not d: break',
  '    got.append(d)',
  "  c.sendall(b''.join(got))",
  '  c.close()',
].join('\n');

const cases: Cases = {
  /** spawn() and run() on a user network with published ports, conflicts, the port after the end. */
  spawned: async () => {
    const rt = await Runtime.open();
    try {
      await rt.networks.create({ name: 'pub' });
      await rt.networks.create({ name: 'sealed', internal: true });
      const port = await freePort();
      const web = rt.spawn(source, ['httpd', '-f', '-p', '8080', '-h', '/www'], { network: 'pub', hostname: 'web', ports: [`127.0.0.1:${port}:8080`] });
      web.stderr?.resume();
      await web.spawned;
      const published = await getWhenUp(port);
      const webIp = Object.values((await rt.networks.inspect('pub')).Containers)[0]!.IPv4Address.split('/')[0]!;
      // A neighbour still reaches it by name, from inside the network.
      const byName = await rt.run(source, ['wget', '-q', '-O', '-', 'http://web:8080/'], { network: 'pub' });
      const during = forwarders();
      let taken: unknown = 'started';
      try {
        await rt.run(source, ['true'], { network: 'pub', ports: [{ container: 80, host: port }] });
      } catch (error) {
        taken = failure(error);
      }
      // A port a host process holds (not berth's): the same refusal.
      const holder = createServer();
      await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
      let heldByHost: unknown = 'started';
      try {
        await rt.run(source, ['true'], { network: 'pub', ports: [{ container: 80, host: (holder.address() as AddressInfo).port }] });
      } catch (error) {
        heldByHost = failure(error);
      }
      await new Promise((r) => holder.close(r));
      let everywhere: unknown = 'started';
      try {
        await rt.run(source, ['true'], { network: 'pub', ports: ['0.0.0.0:0:80'] });
      } catch (error) {
        everywhere = failure(error);
      }
      let internal: unknown = 'started';
      try {
        await rt.run(source, ['true'], { network: 'sealed', ports: [8080] });
      } catch (error) {
        internal = failure(error);
      }
      web.kill('SIGKILL');
      await web.exited;
      const afterEnd = { get: await get(port), bindable: await bindable(port), forwarders: forwarders() };
      // A later holder of web's address, listening on the same port, is not reached through
      // web's old host port.
      const squatter = rt.spawn(source, ['httpd', '-f', '-p', '8080', '-h', '/www'], { networks: [{ network: 'pub', ip: webIp }] });
      squatter.stderr?.resume();
      await squatter.spawned;
      const squatterUp = await rt.run(source, ['sh', '-c', `for i in $(seq 50); do wget -q -O - http://${webIp}:8080/ && exit 0; sleep 0.2; done; exit 1`], { network: 'pub' });
      const throughOld = await get(port);
      squatter.kill('SIGKILL');
      await squatter.exited;
      // run(): the port answers while the run lasts; a request to the CGI ends it (else
      // it gives up after 60 s: bounded).
      const runPort = await freePort();
      const [ran, duringRun] = await Promise.all([
        rt.run(source, ['sh', '-c', 'httpd -p 8080 -h /www; for i in $(seq 600); do [ -e /tmp/done ] && exit 0; sleep 0.1; done; exit 3'], { network: 'pub', ports: [{ container: 8080, host: runPort }] }),
        (async () => {
          const page = await getWhenUp(runPort);
          // Then the request that ends the run (its reply may be cut by the end it causes).
          await get(runPort, '/cgi-bin/done');
          return page;
        })(),
      ]);
      const afterRun = { bindable: await bindable(runPort), forwarders: forwarders() };
      // UDP: an echo server in a container, a datagram from the host side.
      const udpPort = await freePort();
      const echo = rt.spawn(hostTools, ['python3', '-c', UDP_ECHO], { network: 'pub', ports: [{ container: 9000, host: udpPort, protocol: 'udp' }] });
      echo.stderr?.resume();
      await echo.spawned;
      const udp = await udpExchange(udpPort, 'ping');
      echo.kill('SIGKILL');
      await echo.exited;
      // 4 MiB each way through one connection: partial writes, full buffers, the half-close
      // passed on to the container and its end back to the client.
      const tcpPort = await freePort();
      const tcpEcho = rt.spawn(hostTools, ['python3', '-c', TCP_ECHO], { network: 'pub', ports: [{ container: 9001, host: tcpPort }] });
      tcpEcho.stderr?.resume();
      await tcpEcho.spawned;
      const stream = await echoed(tcpPort, randomBytes(4 << 20));
      tcpEcho.kill('SIGKILL');
      await tcpEcho.exited;
      for (const n of ['pub', 'sealed']) await rt.networks.remove(n);
      await rt.close();
      return { stream, port, published, byName, during, taken, heldByHost, everywhere, internal, afterEnd, squatterUp: squatterUp.stdout, throughOld, ran: ran.exitCode, duringRun, afterRun, udp, forwardersAfter: forwarders() };
    } finally {
      await rt.close();
    }
  },
  /** rt.containers (lifetime 'process'): getMappedPort, port(), inspect, waitForHttp; free after stop. */
  containers: async () => {
    const rt = await Runtime.open();
    try {
      await rt.networks.create({ name: 'cpub' });
      const api = await rt.containers.create({ name: 'api', image: source, cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], network: 'cpub', ports: [8080] });
      await api.start();
      const mapped = api.getMappedPort(8080);
      const host = api.getHost(8080);
      const waited = await api.waitForHttp('/', { port: 8080, timeout: 30_000 });
      const settings = (await api.inspect()).NetworkSettings;
      const bindings = await api.port(8080);
      const published = await getWhenUp(mapped);
      await api.stop({ timeout: 1 });
      const afterStop = { get: await get(mapped), bindable: await bindable(mapped), forwarders: forwarders(), ports: (await api.inspect()).NetworkSettings.Ports };
      await api.remove({ force: true });
      await rt.networks.remove('cpub');
      return { mapped, host, waited: waited.body, ports: settings.Ports, ip: settings.Networks['cpub']?.IPAddress, bindings, published, afterStop };
    } finally {
      await rt.close();
    }
  },
  /** A published port, then this program is SIGKILLed by the parent. */
  owned: async () => {
    const rt = await Runtime.open();
    await rt.networks.create({ name: 'owned' });
    const port = await freePort();
    const web = rt.spawn(source, ['httpd', '-f', '-p', '8080', '-h', '/www'], { network: 'owned', ports: [{ container: 8080, host: port }] });
    web.stderr?.resume();
    await web.spawned;
    const published = await getWhenUp(port);
    console.log(JSON.stringify({ name: 'owned', ok: true, result: { port, published, forwarders: forwarders() } }));
    await new Promise(() => {}); // until SIGKILLed
  },
};

await reportCases(cases, [name]);
