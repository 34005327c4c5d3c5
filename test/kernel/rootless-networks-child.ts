/**
 * The rootless program of rootless-networks.test.ts: runs as the unprivileged test user, makes
 * user networks with `rt.networks.create()` and containers on them, and prints one JSON line
 * per case: `{ name, ok, result | error }`. The parent asserts; this only reports.
 * Usage: rootless-networks-child.ts <case>
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.js';
import { hostDefaultGateway } from '../../lib/network/usermode-network.js';
import { reportCases, type Cases } from '../helpers/case-report.js';
import { loopbackServer } from '../helpers/loopback.js';
import { isBerthHelper, isStack, liveProcesses, scratchDirs, type LiveProcess } from '../helpers/usermode-leftovers.js';
import { userBusyboxRootfs } from '../helpers/user-busybox-rootfs.js';

/** The user's busybox rootfs with a web root. */
function webRootfs(): string {
  const root = userBusyboxRootfs({ dirs: ['www'] });
  writeFileSync(join(root, 'www/index.html'), 'hello-from-web\n');
  return root;
}

/** This user's processes berth started for networks, by what they run. */
function networkProcesses(): { helpers: number[]; resolvers: number[]; stacks: number[] } {
  const live = liveProcesses();
  const pids = (keep: (p: LiveProcess) => boolean) => live.filter(keep).map((p) => p.pid);
  return { helpers: pids((p) => isBerthHelper(p, 'rootless-net')), resolvers: pids((p) => isBerthHelper(p, 'dns')), stacks: pids(isStack) };
}

/**
 * A python fetch of `url` through glibc (Debian's static busybox cannot look names up), tried
 * `tries` times a second apart: the server container may still be starting. Bounded.
 */
function fetchScript(url: string, tries: number): string {
  return [
    'import urllib.request,sys,time',
    `for i in range(${tries}):`,
    '  try:',
    `    print(urllib.request.urlopen("${url}", timeout=3).read().decode(), end=""); sys.exit(0)`,
    '  except Exception as e:',
    '    err = e',
    `    if i < ${tries - 1}: time.sleep(1)`,
    'print("error:", err); sys.exit(1)',
  ].join('\n');
}

const [name] = process.argv.slice(2) as [string];
const source = { rootfs: webRootfs() };
const hostTools = { host: true } as const;

const cases: Cases = {
  shared: async () => {
    const rt = await Runtime.open();
    const server = await loopbackServer();
    try {
      await rt.networks.create({ name: 'front' });
      await rt.networks.create({ name: 'back' });
      await rt.networks.create({ name: 'sealed', internal: true });
      const web = rt.spawn(source, ['httpd', '-f', '-p', '8080', '-h', '/www'], { network: 'front', hostname: 'web' });
      web.stderr?.resume();
      await web.spawned;
      const front = await rt.networks.inspect('front');
      const webIp = Object.values(front.Containers)[0]!.IPv4Address.split('/')[0]!;
      const byName = await rt.run(hostTools, ['python3', '-c', fetchScript('http://web:8080/', 10)], { network: 'front' });
      const byIp = await rt.run(hostTools, ['python3', '-c', fetchScript(`http://${webIp}:8080/`, 10)], { network: 'front' });
      const during = networkProcesses();
      // Another network: neither the address nor the name leads to web.
      const otherByIp = await rt.run(hostTools, ['python3', '-c', fetchScript(`http://${webIp}:8080/`, 1)], { network: 'back' });
      const otherByName = await rt.run(hostTools, ['python3', '-c', fetchScript('http://web:8080/', 1)], { network: 'back' });
      let removeInUse: unknown = 'removed';
      try {
        await rt.networks.remove('front');
      } catch (error) {
        removeInUse = { name: (error as Error).name, message: (error as Error).message };
      }
      const withLoopback = await rt.run(hostTools, ['python3', '-c', fetchScript(`http://host.containers.internal:${server.port}/`, 1)], { network: 'front', hostLoopback: true });
      const gateway = hostDefaultGateway();
      // The attack on a grant: a neighbour with NET_ADMIN takes a granted container's address
      // (the victim answers no ARP, so the neighbour gets the replies) and sends from it.
      const victim = rt.spawn(source, ['sh', '-c', 'ip link set eth0 arp off && echo quiet && exec sleep 60'], { network: 'front', hostLoopback: true, capAdd: ['NET_ADMIN'] });
      victim.stderr?.resume();
      const quiet = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 30_000);
        victim.stdout!.once('data', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      const victimIp = Object.values((await rt.networks.inspect('front')).Containers)
        .map((c) => c.IPv4Address.split('/')[0]!)
        .find((ip) => ip !== webIp)!;
      const spoof = [
        'import socket,sys',
        'try:',
        `  s = socket.create_connection(("${gateway}", ${server.port}), timeout=3, source_address=("${victimIp}", 0))`,
        '  s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n"); print(s.recv(4096).decode().split("\\r\\n\\r\\n")[-1], end="")',
        'except Exception as e:',
        '  print("error:", e); sys.exit(1)',
      ].join('\n');
      const spoofed = await rt.run(hostTools, ['sh', '-c', `ip addr add ${victimIp}/32 dev eth0 && exec python3 -c '${spoof}'`], { network: 'front', capAdd: ['NET_ADMIN'] });
      victim.kill('SIGKILL');
      await victim.exited;
      const without = await rt.run(hostTools, ['python3', '-c', fetchScript(`http://${gateway}:${server.port}/`, 1)], { network: 'front' });
      const internal = await rt.run(hostTools, ['sh', '-c', `ip route; exec python3 -c '${fetchScript(`http://host.containers.internal:${server.port}/`, 1)}'`], { network: 'sealed', hostLoopback: true });
      // The attack: a container of the internal network that may change its routes adds the
      // default route it was not given; the packet filter must still keep it in.
      const sealedGateway = (await rt.networks.inspect('sealed')).IPAM.Config[0]!.Gateway;
      const internalAttack = await rt.run(
        hostTools,
        ['sh', '-c', `ip route add default via ${sealedGateway} && ip route show default && exec python3 -c '${fetchScript(`http://host.containers.internal:${server.port}/`, 1)}'`],
        { network: 'sealed', hostLoopback: true, capAdd: ['NET_ADMIN'] },
      );
      web.kill('SIGKILL');
      await web.exited;
      for (const n of ['front', 'back', 'sealed']) await rt.networks.remove(n);
      await rt.close();
      const after = networkProcesses();
      return { webIp, byName, byIp, during, otherByIp, otherByName, removeInUse, withLoopback, without, gateway, internal, internalAttack, quiet, victimIp, spoofed, after, scratchAfter: scratchDirs(), networksAfter: (await (await Runtime.open()).networks.list()).map((n) => n.name) };
    } finally {
      await server.close();
      await rt.close();
    }
  },
  /** A container on a user network, then this program is SIGKILLed by the parent. */
  owned: async () => {
    const rt = await Runtime.open();
    await rt.networks.create({ name: 'owned' });
    const web = rt.spawn(source, ['httpd', '-f', '-p', '8080', '-h', '/www'], { network: 'owned', hostname: 'web' });
    web.stderr?.resume();
    await web.spawned;
    const r = await rt.run(source, ['sh', '-c', 'nslookup web 127.0.0.11 >/dev/null && echo resolved'], { network: 'owned' });
    console.log(JSON.stringify({ name: 'owned', ok: true, result: { r, during: networkProcesses() } }));
    await new Promise(() => {}); // until SIGKILLed
  },
  /** rt.containers (lifetime process) by container name; a detached one refused with the reason. */
  containers: async () => {
    const rt = await Runtime.open();
    try {
      await rt.networks.create({ name: 'mesh' });
      await rt.networks.create({ name: 'mesh2' });
      // Two networks at once (the process's first launches, racing for the namespace helper).
      const [both, again] = await Promise.all([
        rt.run(source, ['sh', '-c', 'ip -4 -o addr show; ip route show default'], { networks: ['mesh', 'mesh2'] }),
        rt.run(source, ['true'], { network: 'mesh2' }),
      ]);
      const helpers = networkProcesses().helpers;
      const api = await rt.containers.create({ name: 'api', image: source, cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], network: 'mesh' });
      await api.start();
      const client = await rt.run(hostTools, ['python3', '-c', fetchScript('http://api:8080/', 10)], { network: 'mesh' });
      const settings = (await api.inspect()).NetworkSettings.Networks['mesh'];
      let connectRunning: unknown = 'connected';
      try {
        await rt.networks.connect('mesh2', api);
      } catch (error) {
        connectRunning = { name: (error as Error).name, message: (error as Error).message };
      }
      // Disconnected while it runs: its veth goes at once (its address no longer answers).
      await rt.networks.disconnect('mesh', api);
      const afterDisconnect = await rt.run(hostTools, ['python3', '-c', fetchScript(`http://${settings?.IPAddress}:8080/`, 1)], { network: 'mesh' });
      await rt.networks.remove('mesh2');
      let detached: unknown = 'started';
      const d = await rt.containers.create({ name: 'lasting', image: source, cmd: ['sleep', '30'], network: 'mesh', lifetime: 'detached' });
      try {
        await d.start();
      } catch (error) {
        detached = { name: (error as Error).name, message: (error as Error).message };
      }
      await d.remove({ force: true });
      await api.stop({ timeout: 1 });
      await api.remove({ force: true });
      await rt.networks.remove('mesh');
      return { client, ip: settings?.IPAddress, detached, connectRunning, afterDisconnect, both, again: again.exitCode, helpers };
    } finally {
      await rt.close();
    }
  },
};

await reportCases(cases, [name]);
