/**
 * Bridge networks on the real kernel, observed from inside containers: the interface the
 * native core builds, names between peers, isolation between networks, internal networks,
 * published TCP and UDP ports answered on 127.0.0.1, `container:` mode, and that nothing is
 * left behind. Every address contacted is 127.0.0.1 or a container these tests started.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { run, AbortError, ConflictError, Runtime, isBerthError } from '../../lib/index.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { background, eventually, freePort, hasRulesTable, linksOf, networkSandbox, networkSkipReason, sh, tcpRead, testSubnet, udpAsk, type NetworkSandbox } from '../helpers/network-fixture.js';

const skip = networkSkipReason();

/** An httpd serving `text` at / on port 8080 (stopped by the test's AbortSignal). */
const httpd = (text: string) => `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 8080 -h /www`;

/** Retries a command in the container until it succeeds (bounded), then prints its output. */
const retry = (cmd: string, times = 50) => `for i in $(seq ${times}); do out=$(${cmd} 2>/dev/null) && [ -n "$out" ] && { echo "$out"; break; }; sleep 0.1; done; [ -n "$out" ]`;

/**
 * An HTTP GET with busybox nc, printing the body (busybox's own wget crashes in a minimal
 * rootfs without /etc/nsswitch.conf).
 */
const get = (host: string, port = 8080) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${host} ${port} | tail -n 1`;

describe('bridge networks', { skip }, () => {
  let box: NetworkSandbox;
  before(() => {
    box = networkSandbox();
  });
  after(async () => {
    await box.cleanup();
  });

  test('eth0 gets an address, the default route and the MTU; /etc files are generated', async () => {
    const net = await box.svc.create({ name: 'plain', subnet: testSubnet(1), mtu: 1400 });
    const r = await sh(
      'ip -o -4 addr show eth0; ip route; cat /sys/class/net/eth0/mtu; cat /etc/hostname; grep -E "web|gw|db" /etc/hosts; cat /etc/resolv.conf; ping -c1 -W2 gw >/dev/null && echo gw-ok',
      // busybox 1.35's ping needs a raw socket (it never tries ICMP datagram sockets).
      { network: net, hostname: 'web', dns: ['10.231.1.53'], extraHosts: ['gw:host-gateway', 'db:10.231.1.99'], capAdd: ['NET_RAW'] },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /eth0\s+inet 10\.231\.1\.\d+\/24/);
    assert.match(r.stdout, /default via 10\.231\.1\.1 dev eth0/);
    assert.match(r.stdout, /^1400$/m);
    assert.match(r.stdout, /^web$/m);
    assert.match(r.stdout, /^10\.231\.1\.\d+\tweb$/m);
    assert.match(r.stdout, /^10\.231\.1\.1\tgw$/m);
    assert.match(r.stdout, /^10\.231\.1\.99\tdb$/m);
    // On a user network the container asks the network's resolver, which forwards to `dns`.
    assert.match(r.stdout, /^nameserver 127\.0\.0\.11$/m);
    assert.doesNotMatch(r.stdout, /10\.231\.1\.53/);
    assert.match(r.stdout, /gw-ok/);
  });

  test('two containers on a user network reach each other by hostname and alias', async () => {
    const net = await box.svc.create({ name: 'talk', subnet: testSubnet(2) });
    const web = background(httpd('hello-from-web'), { networks: [{ network: net, aliases: ['frontend'] }], hostname: 'web' });
    try {
      const client = await sh(`${retry(get('web'))} && ${get('frontend')}`, { network: net, hostname: 'client' });
      assert.equal(client.exitCode, 0, client.stderr);
      assert.equal(client.stdout, 'hello-from-web\nhello-from-web\n');
      const inspect = await net.inspect();
      const names = Object.values(inspect.Containers).map((c) => c.Name);
      assert.deepEqual(names, ['web'], 'only the server is still running');
    } finally {
      await web.stop();
    }
  });

  test('a running container resolves peers that join later (the network\'s resolver, no file rewrite)', async () => {
    const net = await box.svc.create({ name: 'late', subnet: testSubnet(3) });
    const first = background(`${retry("nslookup second 127.0.0.11 | grep -A1 'Name:.*second' | grep Address", 100)} && sleep 30`, { network: net, hostname: 'first' });
    try {
      // second stays a moment: first polls the resolver and must catch second while it is on
      // the network.
      const second = await sh(`${retry("nslookup first 127.0.0.11 | grep -A1 'Name:.*first' | grep Address")} && grep -c first /etc/hosts; sleep 2`, { network: net, hostname: 'second' });
      assert.equal(second.exitCode, 0, second.stderr);
      assert.match(second.stdout, /Address:\s*10\.231\.3\.\d+/);
      assert.match(second.stdout, /^0$/m, 'the peer is not written into /etc/hosts');
    } finally {
      await first.stop();
    }
  });

  test('containers on different networks cannot reach each other', async () => {
    const a = await box.svc.create({ name: 'iso-a', subnet: testSubnet(4) });
    const b = await box.svc.create({ name: 'iso-b', subnet: testSubnet(5) });
    const web = background(httpd('secret'), { network: a, hostname: 'iso-web' });
    try {
      const ip = await eventually(async () => Object.values((await a.inspect()).Containers)[0]?.IPv4Address.split('/')[0]);
      assert.ok(ip, 'the server has an address');
      // Same network: reachable (proves the server is up); other network: not, by address or name.
      const same = await sh(retry(get(ip)), { network: a });
      assert.equal(same.stdout, 'secret\n');
      const other = await sh(`${get(ip)}; grep -w iso-web /etc/hosts || echo no-name`, { network: b });
      assert.doesNotMatch(other.stdout, /REACHED|secret/);
      assert.match(other.stdout, /no-name/);
    } finally {
      await web.stop();
    }
  });

  test('an internal network has no default route, but its containers reach each other', async () => {
    const net = await box.svc.create({ name: 'inside', subnet: testSubnet(6), internal: true });
    const web = background(httpd('internal-ok'), { network: net, hostname: 'iweb' });
    try {
      const r = await sh(`ip route; ${retry(get('iweb'))}`, { network: net });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /default/);
      assert.match(r.stdout, /internal-ok/);
      assert.equal((await net.inspect()).Internal, true);
    } finally {
      await web.stop();
    }
  });

  test('a published TCP port answers on 127.0.0.1 from the host; its rule goes with the container', async () => {
    const net = await box.svc.create({ name: 'pub', subnet: testSubnet(7) });
    const port = await freePort();
    const web = background(httpd('published-tcp'), { network: net, ports: [{ container: 8080, host: port, hostIp: '127.0.0.1' }] });
    try {
      const reply = await tcpRead(port, { send: 'GET / HTTP/1.0\r\n\r\n' });
      assert.match(reply, /published-tcp/);
    } finally {
      await web.stop();
    }
    await assert.rejects(tcpRead(port, { attempts: 1 }), 'nothing answers once the container is gone');
  });

  test('hairpin: containers reach a port published on 0.0.0.0 through the host\'s addresses, itself included', async () => {
    const net = await box.svc.create({ name: 'hair', subnet: testSubnet(11) });
    const other = await box.svc.create({ name: 'hair-other', subnet: testSubnet(12) });
    const port = await freePort();
    // The server also fetches its own published port through its gateway (self-hairpin).
    const web = background(`mkdir -p /www && echo hairpin-ok > /www/index.html && httpd -p 8080 -h /www && { ${retry(get('10.231.11.1', port))}; } > /tmp/self; exec sleep 60`, {
      network: net,
      // The host's bridge addresses are not loopback: only an all-addresses publication reaches them.
      ports: [{ container: 8080, host: port, hostIp: '0.0.0.0' }],
    });
    try {
      const same = await sh(retry(get('10.231.11.1', port)), { network: net });
      assert.equal(same.stdout, 'hairpin-ok\n', same.stderr);
      // From another network, through that network's own gateway address (a host address).
      const cross = await sh(retry(get('10.231.12.1', port)), { network: other });
      assert.equal(cross.stdout, 'hairpin-ok\n', cross.stderr);
      const id = (await box.svc.store.readEndpoints()).endpoints.find((e) => e.ports.some((p) => p.host === port))!;
      assert.equal(await eventually(() => { try { return readFileSync(`/proc/${id.pid!.pid}/root/tmp/self`, 'utf8'); } catch { return ''; } }), 'hairpin-ok\n');
    } finally {
      await web.stop();
    }
  });

  test('a published UDP port answers on 127.0.0.1 (Docker port syntax)', async () => {
    const net = await box.svc.create({ name: 'pubudp', subnet: testSubnet(8) });
    const port = await freePort();
    // busybox has no UDP server: run node from the host's /usr inside the sandbox.
    const ac = new AbortController();
    const echo = "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('pong:'+m,r.port,r.address));s.bind(5353);";
    const server = run({ host: true }, [process.execPath, '-e', echo], { network: net, ports: [`127.0.0.1:${port}:5353/udp`], signal: ac.signal }).catch((e: unknown) => e);
    try {
      assert.equal(await udpAsk(port, 'ping'), 'pong:ping');
    } finally {
      ac.abort();
      const end = await server;
      assert.ok(end instanceof AbortError, `the server ended by itself: ${JSON.stringify(end)}`);
    }
  });

  test('route_localnet does not open the host\'s loopback to containers (CVE-2020-8558 class)', async () => {
    const net = await box.svc.create({ name: 'localnet', subnet: testSubnet(13) });
    let hits = 0;
    // Listens on every address, contacted only at 127.0.0.9 (loopback).
    const server = createServer((s) => {
      hits++;
      s.end('host-loopback-service\n');
    });
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    const port = (server.address() as { port: number }).port;
    try {
      // Privileged, so it can route 127.0.0.9 through its gateway as an attacker would craft it.
      const r = await sh(
        `sysctl -w net.ipv4.conf.eth0.route_localnet=1 >/dev/null && ip route add 127.0.0.9/32 via 10.231.13.1 dev eth0 && echo x | nc -w 2 127.0.0.9 ${port}; echo done`,
        { network: net, privileged: true },
      );
      assert.match(r.stdout, /done/, r.stderr);
      assert.doesNotMatch(r.stdout, /host-loopback-service/);
      assert.equal(hits, 0);
    } finally {
      server.close();
    }
  });

  test('a host port already in use fails the start with a ConflictError; the container never runs', async () => {
    const net = await box.svc.create({ name: 'busy', subnet: testSubnet(9) });
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as { port: number }).port;
    try {
      const before = (await net.inspect()).Containers;
      await assert.rejects(
        sh('echo ran', { network: net, ports: [{ container: 80, host: port, hostIp: '127.0.0.1' }] }),
        (e: unknown) => isBerthError(e) && e instanceof ConflictError && /already in use/.test(e.message),
      );
      assert.deepEqual((await net.inspect()).Containers, before);
      const { endpoints } = await box.svc.store.read();
      assert.equal(endpoints.endpoints.filter((e) => e.networkId === net.id).length, 0, 'no lease is left');
    } finally {
      holder.close();
    }
  });

  test('container:<name> shares the other container\'s network namespace and localhost', async () => {
    const net = await box.svc.create({ name: 'pod', subnet: testSubnet(10) });
    const web = background(`mkdir -p /www && echo pod-local > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www`, { network: net, hostname: 'podmain' });
    try {
      await eventually(async () => Object.keys((await net.inspect()).Containers).length === 1);
      const { endpoints } = await box.svc.store.read();
      const id = endpoints.endpoints.find((e) => e.hostname === 'podmain')!.containerId;
      // A container name resolves in a runtime: this state directory's, a second set of services
      // over it beside the sandbox's own network service.
      const rt = await Runtime.open({ root: box.root });
      const side = await rt.run({ rootfs: busyboxRootfs() }, ['sh', '-c', `${retry(get('127.0.0.1'))} && ip -o -4 addr show eth0`], { network: `container:${id}` });
      assert.equal(side.exitCode, 0, side.stderr);
      assert.match(side.stdout, /^pod-local\n/);
      assert.match(side.stdout, /inet 10\.231\.10\.\d+/, 'the same eth0 as the pod main container');
    } finally {
      await web.stop();
    }
  });

  test('after all runs ended and networks are removed, no link, rule or lease of this root remains', async () => {
    for (const n of await box.svc.list()) await n.remove();
    assert.deepEqual(await eventually(async () => (await linksOf(box.svc)).length === 0 || (await linksOf(box.svc)), 10_000), true);
    assert.equal(hasRulesTable(box.svc), false);
    assert.equal((await box.svc.store.readEndpoints()).endpoints.length, 0);
  });
});
