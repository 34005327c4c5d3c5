/**
 * Containers on networks, on the real kernel: names on a user network, published ports and
 * `port()`, `container:` mode, `connect`/`disconnect` of running and stopped containers, a
 * detached container whose exit is seen by a later `Runtime.open()`, and a SIGKILLed owner.
 * Traffic goes only to 127.0.0.1 and to containers these tests start, on subnets of
 * 10.231.60-69.0/24.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConflictError, isBerthError } from '../../lib/errors.js';
import { native } from '../../lib/native.js';
import { nftTableName } from '../../lib/network/firewall-rules.js';
import { Runtime } from '../../lib/runtime.js';
import type { Container } from '../../lib/containers/container.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { eventually, openFixture, procStat, type Fixture } from '../helpers/containers-fixture.js';
import { freePort, linksOf, networkSkipReason, tcpRead, testSubnet } from '../helpers/network-fixture.js';
import { startNodeChild, type NodeChild } from '../helpers/node-child.js';

const skip = networkSkipReason();
const here = fileURLToPath(new URL('.', import.meta.url));
const GET = 'GET / HTTP/1.0\r\n\r\n';
const isErr = (cls: new (...a: never[]) => Error, pattern?: RegExp) => (e: unknown) => isBerthError(e) && e instanceof cls && (!pattern || pattern.test(e.message));

/** A busybox web server on :8080 serving `text`. */
const webScript = (text: string) => `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 8080 -h /www`;

function child(args: string[]): NodeChild {
  return startNodeChild(join(here, 'containers-network-child.ts'), args);
}

describe('containers on networks', { skip }, () => {
  let f: Fixture;
  const children: ChildProcess[] = [];
  const rules = () => spawnSync('nft', ['list', 'table', 'ip', nftTableName(f.rt.networks.tag)], { encoding: 'utf8' }).stdout;
  const endpointsOf = async (id: string) => (await f.rt.networks.store.readEndpoints()).endpoints.filter((e) => e.containerId === id);
  /** Runs a busybox script to its end in a container; its output. */
  const runOnce = async (script: string, options: Parameters<Fixture['sh']>[1] = {}) => {
    const c = await f.sh(script, options);
    await c.start();
    const exit = await c.wait();
    return { exit, out: await c.logs().text(), c };
  };

  before(async () => {
    busyboxRootfs();
    f = await openFixture('berth-ctnet-');
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const rt = await Runtime.open({ root: f.root }).catch(() => f.rt);
    for (const s of await rt.containers.list({ all: true }).catch(() => [])) await (await rt.containers.get(s.Id)).remove({ force: true, volumes: true }).catch(() => {});
    for (let attempt = 0; attempt < 50; attempt++) {
      const nets = await rt.networks.list().catch(() => []);
      if (nets.length === 0) break;
      for (const n of nets) await n.remove().catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
    await rt.networks.reconcile().catch(() => {});
    const mark = `berth:${rt.networks.tag}:`;
    for (const l of await native().netListLinks()) if (l.alias.startsWith(mark)) await native().netDeleteLink(l.name).catch(() => false);
    spawnSync('nft', ['delete', 'table', 'ip', nftTableName(rt.networks.tag)], { stdio: 'ignore' });
    await f.cleanup();
    rmSync(f.root, { recursive: true, force: true });
  });

  test('two containers on a user network reach each other by name, hostname and alias; inspect().NetworkSettings; peers resolve who comes and goes', async () => {
    const net = await f.rt.networks.create({ name: 'ct-names', subnet: testSubnet(60) });
    const server = await f.create(['nc', '-ll', '-p', '7000', '-e', 'echo', 'hello-from-server'], {
      name: 'server',
      hostname: 'srvhost',
      networks: [{ network: net, aliases: ['api'] }],
    });
    await server.start();
    await server.waitForPort(7000, { timeout: 5000 });

    const s = (await server.inspect()).NetworkSettings;
    const ep = s.Networks['ct-names'];
    assert.ok(ep, JSON.stringify(s));
    assert.match(ep.IPAddress, /^10\.231\.60\.\d+$/);
    assert.equal(ep.Gateway, '10.231.60.1');
    assert.equal(ep.IPPrefixLen, 24);
    assert.equal(ep.NetworkID, net.id);
    assert.match(ep.MacAddress, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.deepEqual(ep.Aliases, ['api']);
    assert.equal(s.IPAddress, '', 'the legacy fields belong to the default bridge network only');
    assert.equal((await server.inspect()).HostConfig.NetworkMode, 'ct-names');
    assert.ok((await net.inspect()).Containers[server.id]);

    const { exit, out } = await runOnce('for h in server srvhost api; do nc -w 2 $h 7000; done; nslookup server 127.0.0.11 | grep -A1 Name: | grep Address; echo; grep -cw server /etc/hosts || true', { network: 'ct-names' });
    assert.equal(exit.exitCode, 0, out);
    assert.equal(out.split('\n').filter((l) => l === 'hello-from-server').length, 3, out);
    assert.match(out, new RegExp(`Address:\\s*${ep.IPAddress.replace(/\./g, '\\.')}\n`), out);
    assert.match(out, /^0$/m, 'peers are answered by the resolver, not written into /etc/hosts');

    // A peer that comes and goes is answered by the server's resolver, then is not.
    const resolves = async (name: string) => /Name:\s*\S+\s*\nAddress:/.test((await server.exec(['nslookup', name, '127.0.0.11'])).stdout);
    const peer = await f.create(['sleep', '60'], { name: 'peer', network: net });
    await peer.start();
    assert.ok(await eventually(async () => resolves('peer'), 5000), 'the peer resolves');
    await peer.stop({ timeout: 0 });
    assert.deepEqual(await endpointsOf(peer.id), [], 'the stopped peer holds no lease');
    assert.ok(await eventually(async () => !(await resolves('peer')), 5000), 'the peer no longer resolves');

    await assert.rejects(net.remove(), isErr(ConflictError, /active endpoints: server/));
    await server.stop({ timeout: 0 });
    assert.deepEqual(await endpointsOf(server.id), []);
    assert.deepEqual((await server.inspect()).NetworkSettings.Networks['ct-names']?.IPAddress, '', 'a stopped container keeps its network, without an address');
    await net.remove();
  });

  test('a published port answers on 127.0.0.1 through port(); the rule goes at stop and comes back at start', async () => {
    const net = await f.rt.networks.create({ name: 'ct-ports', subnet: testSubnet(61) });
    const web = await f.sh(webScript('published-ok'), { network: net, ports: [{ container: 8080, hostIp: '127.0.0.1' }], exposedPorts: [9090] });
    await web.start();
    const [binding, ...more] = await web.port(8080);
    assert.ok(binding && more.length === 0, JSON.stringify(await web.port(8080)));
    assert.equal(binding.hostIp, '127.0.0.1');
    assert.ok(binding.hostPort > 0);
    assert.deepEqual(await web.port('8080/udp'), []);
    const info = await web.inspect();
    assert.deepEqual(info.NetworkSettings.Ports['8080/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(binding.hostPort) }]);
    assert.equal(info.NetworkSettings.Ports['9090/tcp'], null, 'exposed, not published');
    assert.deepEqual(info.Config.ExposedPorts, { '9090/tcp': {}, '8080/tcp': {} });
    assert.match(await tcpRead(binding.hostPort, { send: GET }), /published-ok/);

    await web.stop({ timeout: 0 });
    assert.deepEqual(await web.port(8080), []);
    assert.doesNotMatch(rules(), new RegExp(`dport ${binding.hostPort} `));

    // A fixed host port: refused while a host socket holds it, then published at each start.
    const port = await freePort();
    const fixed = await f.sh(webScript('fixed-ok'), { network: net, ports: [`127.0.0.1:${port}:8080`] });
    const holder = createServer().listen(port, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    try {
      await assert.rejects(fixed.start(), isErr(ConflictError, new RegExp(`${port}`)));
      assert.equal(await fixed.status(), 'created');
    } finally {
      await new Promise((r) => holder.close(r));
    }
    await fixed.start();
    assert.match(await tcpRead(port, { send: GET }), /fixed-ok/);
    await fixed.restart({ timeout: 0 });
    assert.deepEqual(await fixed.port(8080), [{ hostIp: '127.0.0.1', hostPort: port }]);
    assert.match(await tcpRead(port, { send: GET }), /fixed-ok/);
    await fixed.stop({ timeout: 0 });
    assert.doesNotMatch(rules(), new RegExp(`dport ${port} `));
  });

  test('network: "bridge", the default network: an address in Docker\'s legacy fields too', async () => {
    const c = await f.create(['sleep', '60'], { network: 'bridge' });
    await c.start();
    const s = (await c.inspect()).NetworkSettings;
    const ep = s.Networks['bridge'];
    assert.ok(ep?.IPAddress, JSON.stringify(s));
    assert.equal(s.IPAddress, ep.IPAddress);
    assert.equal(s.Gateway, ep.Gateway);
    assert.equal(s.MacAddress, ep.MacAddress);
    assert.match((await c.exec(['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout, new RegExp(`inet ${ep.IPAddress.replace(/\./g, '\\.')}/`));
    await c.remove({ force: true });
    assert.deepEqual(await endpointsOf(c.id), []);
  });

  test('container:<name|id> joins another container\'s network namespace', async () => {
    const net = await f.rt.networks.create({ name: 'ct-pod', subnet: testSubnet(62) });
    const holder = await f.create(['nc', '-ll', '-p', '7100', '-e', 'echo', 'pod-local'], { name: 'pod-holder', network: net });
    await holder.start();
    await holder.waitForPort(7100, { timeout: 5000 });
    const ip = (await holder.inspect()).NetworkSettings.Networks['ct-pod']!.IPAddress;
    for (const ref of ['pod-holder', holder.id.slice(0, 12)]) {
      const { exit, out, c } = await runOnce('nc -w 2 127.0.0.1 7100; ip -o -4 addr show eth0', { network: `container:${ref}` });
      assert.equal(exit.exitCode, 0, out);
      assert.match(out, /^pod-local$/m);
      assert.ok(out.includes(`inet ${ip}/24`), out);
      assert.equal((await c.inspect()).HostConfig.NetworkMode, `container:${ref}`);
    }
    // Detached: the namespace descriptor travels to the monitor, which launches the joiner.
    const joiner = await f.sh('nc -w 2 127.0.0.1 7100; ip -o -4 addr show eth0', { network: 'container:pod-holder', lifetime: 'detached' });
    await joiner.start();
    assert.equal((await joiner.wait()).exitCode, 0);
    const joined = await joiner.logs().text();
    assert.match(joined, /^pod-local$/m);
    assert.ok(joined.includes(`inet ${ip}/24`), joined);
    await holder.stop({ timeout: 0 });
    const late = await f.sh('true', { network: 'container:pod-holder' });
    await assert.rejects(late.start(), /not running/);
  });

  test('connect and disconnect, running and stopped (ConnectableContainer)', async () => {
    const a = await f.rt.networks.create({ name: 'ct-conn-a', subnet: testSubnet(63) });
    const b = await f.rt.networks.create({ name: 'ct-conn-b', subnet: testSubnet(64) });
    const eth1 = async (c: Container) => (await c.exec(['sh', '-c', 'ip -o -4 addr show eth1 2>/dev/null'])).stdout;
    const mover = await f.create(['sleep', '120'], { name: 'mover', network: a });
    await mover.start();

    await b.connect(mover, { aliases: ['moved'] });
    await assert.rejects(b.connect(mover), isErr(ConflictError, /already connected/));
    assert.match(await eth1(mover), /inet 10\.231\.64\.\d+\/24/);
    const settings = (await mover.inspect()).NetworkSettings.Networks;
    assert.deepEqual(Object.keys(settings).sort(), ['ct-conn-a', 'ct-conn-b']);
    assert.deepEqual(settings['ct-conn-b']!.Aliases, ['moved']);
    const peer = await runOnce('nslookup moved 127.0.0.11', { network: b });
    assert.ok(peer.out.includes(`Address: ${settings['ct-conn-b']!.IPAddress}`), peer.out);
    await assert.rejects(b.remove(), isErr(ConflictError));

    await b.disconnect(mover);
    assert.equal(await eventually(async () => (await eth1(mover)) === '', 5000), true, 'eth1 is gone');
    assert.equal((await mover.inspect()).NetworkSettings.Networks['ct-conn-b'], undefined);

    // Stopped: the connection is recorded, and made at every start until disconnected.
    await mover.stop({ timeout: 0 });
    await b.connect(mover, { aliases: ['later'] });
    assert.equal((await mover.inspect()).NetworkSettings.Networks['ct-conn-b']?.IPAddress, '');
    await mover.start();
    assert.match(await eth1(mover), /inet 10\.231\.64\.\d+\/24/);
    await mover.stop({ timeout: 0 });
    await b.disconnect(mover.name);
    await mover.start();
    assert.equal(await eth1(mover), '');
    await mover.remove({ force: true });
    assert.deepEqual(await endpointsOf(mover.id), []);
    await b.remove();

    const isolated = await f.create(['sleep', '1'], { network: 'none' });
    await assert.rejects(a.connect(isolated), isErr(ConflictError, /network mode "none"/));
  });

  test('a detached container on a bridge network: leased by its creator, reached by name, released when a later Runtime.open() sees its exit', async () => {
    const net = await f.rt.networks.create({ name: 'ct-detached', subnet: testSubnet(65) });
    const port = await freePort();
    const c = child(['detached', f.root, busyboxRootfs(), 'ct-detached', String(port), 'dweb']);
    children.push(c.proc);
    const { id, pid } = JSON.parse(await c.line) as { id: string; pid: number };
    assert.equal(await c.done, 0, 'the creator exited');
    assert.match(await tcpRead(port, { send: GET }), /served-by-dweb/);
    const dweb = await f.rt.containers.get(id);
    assert.deepEqual(await dweb.port(8080), [{ hostIp: '127.0.0.1', hostPort: port }]);
    const ip = (await dweb.inspect()).NetworkSettings.Networks['ct-detached']!.IPAddress;
    assert.match(ip, /^10\.231\.65\.\d+$/);
    const byName = await runOnce(`printf '${GET.replace(/\r\n/g, '\\r\\n')}' | nc -w 2 dweb 8080`, { network: net });
    assert.match(byName.out, /served-by-dweb/);

    // The container ends while no Node process watches it: its lease and rule stay recorded...
    const [ep] = await endpointsOf(id);
    assert.ok(ep);
    process.kill(pid, 'SIGKILL');
    const runFile = join(f.root, 'containers', id, 'run.json');
    assert.ok(await eventually(() => existsSync(runFile) && /"status":"exited"/.test(readFileSync(runFile, 'utf8')), 5000), 'the monitor recorded the exit');
    assert.equal((await endpointsOf(id)).length, 1);
    assert.match(rules(), new RegExp(`dport ${port} `));
    // ...until a runtime is opened: it records the exit and releases both.
    const rt2 = await Runtime.open({ root: f.root });
    assert.deepEqual(await endpointsOf(id), []);
    assert.doesNotMatch(rules(), new RegExp(`dport ${port} `));
    const state = (await (await rt2.containers.get(id)).inspect()).State;
    assert.equal(state.Status, 'exited');
    assert.equal(state.ExitCode, 137);
    assert.ok(await eventually(() => !existsSync(`/sys/class/net/${ep.hostIfname}`), 10_000), 'the veth went with the namespace');
  });

  test('a SIGKILLed owner: its container dies, and the next Runtime.open() releases the lease and the rule; the veth is gone', async () => {
    await f.rt.networks.create({ name: 'ct-crash', subnet: testSubnet(66) });
    const port = await freePort();
    const c = child(['owner', f.root, busyboxRootfs(), 'ct-crash', String(port), 'crashweb']);
    children.push(c.proc);
    const { id, pid } = JSON.parse(await c.line) as { id: string; pid: number };
    assert.match(await tcpRead(port, { send: GET }), /served-by-crashweb/);
    const [ep] = await endpointsOf(id);
    assert.ok(ep && existsSync(`/sys/class/net/${ep.hostIfname}`));

    c.proc.kill('SIGKILL');
    await c.done;
    assert.ok(await eventually(() => procStat(pid) === undefined, 5000), 'the container died with its owner');
    assert.ok(await eventually(() => !existsSync(`/sys/class/net/${ep.hostIfname}`), 10_000), 'the veth went with the namespace');
    const rt2 = await Runtime.open({ root: f.root });
    assert.deepEqual(await endpointsOf(id), []);
    assert.doesNotMatch(rules(), new RegExp(`dport ${port} `));
    const state = (await (await rt2.containers.get(id)).inspect()).State;
    assert.equal(state.ExitCode, 137);
    const links = await linksOf(f.rt.networks);
    assert.ok(!links.includes(ep.hostIfname), links.join(' '));
    assert.ok(!readFileSync('/proc/net/dev', 'utf8').includes(`${ep.hostIfname}:`));
  });
});
