/**
 * The rootless program of rootless-run-network.test.ts: runs as the unprivileged test user and
 * starts containers with a user-mode network (pasta or slirp4netns, per container), printing one
 * JSON line per case: `{ name, ok, result | error }`. The parent asserts; this only reports.
 * Usage: rootless-run-network-child.ts <case> [args...]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime, run, spawn } from '../../lib/index.js';
import { hostDefaultGateway } from '../../lib/network/usermode-network.js';
import { reportCases, type Cases } from '../helpers/case-report.js';
import { freePort, loopbackServer } from '../helpers/loopback.js';
import { scratchDirs, stackPids } from '../helpers/usermode-leftovers.js';
import { userBusyboxRootfs } from '../helpers/user-busybox-rootfs.js';

/** The user's busybox rootfs (container root owns it through the map) with a web root. */
function webRootfs(): string {
  const root = userBusyboxRootfs({ dirs: ['www'] });
  writeFileSync(join(root, 'www/index.html'), 'hello-from-the-container\n');
  return root;
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', (e) => resolve(`error:${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(`error:${(e as NodeJS.ErrnoException).code ?? e.message}`));
  });
}

/** Asks until the server answers; bounded (the server starts right after the container does). */
async function fetchUntilAnswered(port: number): Promise<string> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    last = await httpGet(port);
    if (!last.startsWith('error:')) return last;
    await sleep(50);
  }
  return last;
}

const [name, ...args] = process.argv.slice(2) as [string, ...string[]];
const rootfs = webRootfs();
const source = { rootfs };
const network = args[0] ?? 'bridge';

const cases: Cases = {
  /** What the first instruction sees: its interface, route and resolv.conf are already there. */
  'first-instruction': async () => {
    const r = await run(source, ['sh', '-c', 'ip -4 -o addr show dev eth0; ip route show default; cat /etc/resolv.conf; cat /etc/hosts'], { network });
    return { r, stacksAfter: stackPids(), scratchAfter: scratchDirs() };
  },
  /** A server in the container answered on a published 127.0.0.1 port, then everything stopped. */
  serve: async () => {
    const host = await freePort();
    const sb = spawn(source, ['sh', '-c', 'echo up; exec httpd -f -p 8080 -h /www'], { network, ports: [`127.0.0.1:${host}:8080`] });
    sb.stderr?.resume();
    await sb.spawned;
    const stacksWhile = stackPids();
    const answer = await fetchUntilAnswered(host);
    sb.kill('SIGKILL');
    const exit = await sb.exited;
    return { answer, stacksWhile, exit: exit.exitCode, stacksAfter: stackPids(), scratchAfter: scratchDirs(), after: await httpGet(host) };
  },
  /** Outbound to this program's loopback server: only with hostLoopback. */
  outbound: async () => {
    const server = await loopbackServer();
    try {
      // Debian's busybox is static: its wget crashes on a lookup (no NSS in a static glibc).
      // The host's own tools (source `{ host: true }`) fetch instead; the name is looked up in
      // /etc/hosts through glibc, as any dynamically linked program does.
      const fetch = (url: string) => `import urllib.request,sys\ntry:\n  print(urllib.request.urlopen("${url}", timeout=3).read().decode(), end="")\nexcept Exception as e:\n  print("error:", e); sys.exit(1)`;
      const hostTools = { host: true } as const;
      const withLoopback = await run(hostTools, ['python3', '-c', fetch(`http://host.containers.internal:${server.port}/`)], { network, hostLoopback: true });
      // Without it the name is not there, and the address pasta or slirp4netns would use must not lead to the host's loopback.
      const gateway = network === 'slirp4netns' ? '10.0.2.2' : hostDefaultGateway()!;
      const without = await run(hostTools, ['sh', '-c', `grep -c host.containers.internal /etc/hosts; exec python3 -c '${fetch(`http://${gateway}:${server.port}/`)}'`], { network });
      const ownLoopback = await run(hostTools, ['python3', '-c', fetch(`http://127.0.0.1:${server.port}/`)], { network });
      return { withLoopback, without, ownLoopback, gateway };
    } finally {
      await server.close();
    }
  },
  /** A taken host port: ConflictError before the container starts. */
  conflict: async () => {
    const holder = createTcpServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as AddressInfo).port;
    try {
      await run(source, ['sh', '-c', 'echo ran'], { network, ports: [`127.0.0.1:${port}:80`] });
      return 'started';
    } finally {
      await new Promise<void>((r) => holder.close(() => r()));
    }
  },
  /** Any run with a network (the parent closes /dev/net/tun first). */
  'plain': () => run(source, ['true'], { network }),
  'wide-port': () => run(source, ['true'], { network, ports: ['0.0.0.0:0:80'] }),
  'user-network': () => run(source, ['true'], { network: 'backend' }),
  /** A long-running container with a published port; the parent SIGKILLs this program. */
  owned: async () => {
    const host = await freePort();
    const sb = spawn(source, ['sh', '-c', 'exec httpd -f -p 8080 -h /www'], { network, ports: [`127.0.0.1:${host}:8080`] });
    await sb.spawned;
    const answer = await fetchUntilAnswered(host);
    console.log(JSON.stringify({ name: 'owned', ok: true, result: { answer, stacks: stackPids(), container: sb.pid } }));
    await new Promise(() => {}); // until SIGKILLed
  },
  /** rt.containers with lifetime 'process' and a published port. */
  container: async () => {
    const rt = await Runtime.open();
    try {
      const host = await freePort();
      const c = await rt.containers.create({ image: source, cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], network, ports: [`127.0.0.1:${host}:8080`] });
      await c.start();
      const answer = await fetchUntilAnswered(host);
      const ports = (await c.inspect()).NetworkSettings.Ports;
      const stacksWhile = stackPids();
      await c.stop({ timeout: 1 });
      const stacksAfterStop = stackPids();
      await c.remove({ force: true });
      return { answer, ports, stacksWhile, stacksAfterStop, scratchAfter: scratchDirs() };
    } finally {
      await rt.close();
    }
  },
  /**
   * A detached container (its monitor runs the stack) with a restart policy: answered, PID 1
   * killed and restarted with a fresh stack, answered again; this program then exits, leaving
   * it running for `detached-check`.
   */
  detached: async () => {
    const rt = await Runtime.open();
    try {
      const host = await freePort();
      const c = await rt.containers.create({ name: `rl-detached-${network}`, image: source, cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], network, ports: [`127.0.0.1:${host}:8080`], lifetime: 'detached', restart: 'always' });
      await c.start();
      const answer = await fetchUntilAnswered(host);
      const first = await c.inspect();
      const stacksFirst = stackPids();
      const parentOfStack = stacksFirst.map((p) => Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1]));
      process.kill(first.State.Pid, 'SIGKILL');
      let again = first;
      for (let i = 0; i < 200 && (again.RestartCount === first.RestartCount || again.State.Status !== 'running'); i++) {
        await sleep(50);
        again = await c.inspect();
      }
      const answerAfterRestart = await fetchUntilAnswered(host);
      return { host, answer, ports: first.NetworkSettings.Ports, stacksFirst, parentOfStack, restartCount: again.RestartCount, stacksAfterRestart: stackPids(), answerAfterRestart };
    } finally {
      await rt.close();
    }
  },
  /** After the creating process exited: still answered; stop and remove leave no stack nor scratch dir. */
  'detached-check': async () => {
    const rt = await Runtime.open();
    try {
      const c = await rt.containers.get(`rl-detached-${network}`);
      const host = Number(args[1]);
      const answer = await fetchUntilAnswered(host);
      const stacksWhile = stackPids();
      await c.stop({ timeout: 1 });
      let stacksAfterStop = stackPids();
      for (let i = 0; i < 100 && stacksAfterStop.length > 0; i++) {
        await sleep(50);
        stacksAfterStop = stackPids();
      }
      await c.remove({ force: true });
      return { answer, stacksWhile, stacksAfterStop, scratchAfter: scratchDirs(), after: await httpGet(host) };
    } finally {
      await rt.close();
    }
  },
};

await reportCases(cases, [name]);
