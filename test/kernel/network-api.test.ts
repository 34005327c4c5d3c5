/**
 * `rt.networks` on the real kernel: create/get/list/inspect/remove/prune, events, typed errors
 * for bad input, static addresses and ranges, several networks per container, the default
 * `bridge` network, `host: 0` port choice, and connect/disconnect of a running container.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { ConflictError, NotFoundError, ValidationError, isBerthError } from '../../lib/index.js';
import { parseRouteTable } from '../../lib/network/ipam.js';
import { overlaps, parseSubnet } from '../../lib/network/cidr.js';
import type { ConnectableContainer, NetworkEndpointEvent } from '../../lib/network/network.js';
import { background, eventually, networkSandbox, networkSkipReason, sh, tcpRead, testSubnet, type NetworkSandbox } from '../helpers/network-fixture.js';

const skip = networkSkipReason();

const isErr = (cls: new (...a: never[]) => Error, pattern?: RegExp) => (e: unknown) => isBerthError(e) && e instanceof cls && (!pattern || pattern.test(e.message));

describe('rt.networks', { skip }, () => {
  let box: NetworkSandbox;
  before(() => {
    box = networkSandbox();
  });
  after(async () => {
    await box.cleanup();
  });

  test('create: a bridge with the gateway address; inspect in Docker\'s shape; create event', async () => {
    const seen: string[] = [];
    box.svc.on('create', (n) => seen.push(n.name));
    const net = await box.svc.create({ name: 'api-one', subnet: testSubnet(20), gateway: '10.231.20.254', labels: { team: 'a' } });
    const i = await net.inspect();
    assert.equal(i.Name, 'api-one');
    assert.equal(i.Id, net.id);
    assert.match(i.Id, /^[0-9a-f]{64}$/);
    assert.deepEqual(i.IPAM.Config, [{ Subnet: '10.231.20.0/24', Gateway: '10.231.20.254' }]);
    assert.equal(i.Driver, 'bridge');
    assert.equal(i.Internal, false);
    assert.deepEqual(i.Labels, { team: 'a' });
    assert.deepEqual(i.Containers, {});
    const bridge = i.Options['com.docker.network.bridge.name']!;
    assert.match(bridge, /^berth-[0-9a-f]{9}$/);
    assert.ok(existsSync(`/sys/class/net/${bridge}`));
    assert.deepEqual(seen, ['api-one']);
  });

  test('without a subnet, a free private range is chosen that overlaps no host route and no other network', async () => {
    const a = await box.svc.create({ name: 'auto-a' });
    const b = await box.svc.create({ name: 'auto-b' });
    const sa = parseSubnet((await a.inspect()).IPAM.Config[0]!.Subnet, 's');
    const sb = parseSubnet((await b.inspect()).IPAM.Config[0]!.Subnet, 's');
    assert.equal(overlaps(sa, sb), false);
    const foreign = parseRouteTable(readFileSync('/proc/net/route', 'utf8')).filter((r) => !r.iface.startsWith('berth-'));
    for (const r of foreign) assert.equal(overlaps(r.subnet, sa) || overlaps(r.subnet, sb), false, `overlaps ${r.iface}`);
    await a.remove();
    await b.remove();
  });

  test('bad input is refused with typed errors', async () => {
    await box.svc.create({ name: 'taken', subnet: testSubnet(21) });
    await assert.rejects(box.svc.create({ name: 'taken', subnet: testSubnet(22) }), isErr(ConflictError, /already exists/));
    await assert.rejects(box.svc.create({ name: 'overlap', subnet: '10.231.21.128/25' }), isErr(ConflictError, /overlaps network "taken"/));
    await assert.rejects(box.svc.create({ name: 'cidr', subnet: '10.231.300.0/24' }), isErr(ValidationError, /invalid CIDR/));
    await assert.rejects(box.svc.create({ name: 'cidr2', subnet: '10.231.23.0' }), isErr(ValidationError, /invalid CIDR/));
    await assert.rejects(box.svc.create({ name: 'hostbits', subnet: '10.231.23.5/24' }), isErr(ValidationError, /should be "10.231.23.0\/24"/));
    await assert.rejects(box.svc.create({ name: 'gw', subnet: testSubnet(23), gateway: '10.231.99.1' }), isErr(ValidationError, /outside the subnet/));
    await assert.rejects(box.svc.create({ name: 'rng', subnet: testSubnet(23), ipRange: '10.231.24.0/25' }), isErr(ValidationError, /not inside the subnet/));
    await assert.rejects(box.svc.create({ name: 'bridge' }), isErr(ValidationError, /pre-defined/));
    await assert.rejects(box.svc.create({ name: 'bad name!' }), isErr(ValidationError, /invalid network name/));
    await assert.rejects(box.svc.create({ name: 'mtu', mtu: 20 }), isErr(ValidationError, /mtu/));
    const hostRoute = parseRouteTable(readFileSync('/proc/net/route', 'utf8')).find((r) => !r.iface.startsWith('berth-'));
    if (hostRoute) {
      const s = `${[hostRoute.subnet.base >>> 24, (hostRoute.subnet.base >>> 16) & 255, (hostRoute.subnet.base >>> 8) & 255, hostRoute.subnet.base & 255].join('.')}/${hostRoute.subnet.prefix}`;
      await assert.rejects(box.svc.create({ name: 'onhost', subnet: s }), isErr(ConflictError, /host's route/));
    }
    await assert.rejects(box.svc.get('no-such-net'), isErr(NotFoundError));
    const net = await box.svc.get('taken');
    await assert.rejects(sh('true', { networks: [net, 'no-such-net'] }), isErr(NotFoundError, /no-such-net/));
    await assert.rejects(sh('true', { network: net, networks: [{ network: net, ip: '10.231.21.1' }] }), isErr(ValidationError));
    assert.equal((await box.svc.store.readEndpoints()).endpoints.length, 0, 'failed starts leave no lease');
    await net.remove();
  });

  test('get by name, id and id prefix; list with filters; remove emits destroy and deletes the bridge', async () => {
    const net = await box.svc.create({ name: 'lookup', subnet: testSubnet(25), labels: { env: 'test' } });
    assert.equal((await box.svc.get('lookup')).id, net.id);
    assert.equal((await box.svc.get(net.id)).name, 'lookup');
    assert.equal((await box.svc.get(net.id.slice(0, 10))).name, 'lookup');
    assert.deepEqual((await box.svc.list({ label: ['env=test'] })).map((n) => n.name), ['lookup']);
    assert.deepEqual((await box.svc.list({ label: ['env=prod'] })).map((n) => n.name), []);
    const bridge = (await net.inspect()).Options['com.docker.network.bridge.name']!;
    let destroyed = 0;
    net.on('destroy', () => destroyed++);
    await net.remove();
    assert.equal(destroyed, 1);
    assert.equal(existsSync(`/sys/class/net/${bridge}`), false);
    await assert.rejects(box.svc.get('lookup'), isErr(NotFoundError));
  });

  test('a network in use cannot be removed; prune keeps it and removes unused ones', async () => {
    const used = await box.svc.create({ name: 'in-use', subnet: testSubnet(26) });
    await box.svc.create({ name: 'unused', subnet: testSubnet(27) });
    const c = background('sleep 60', { network: used, hostname: 'holder' });
    try {
      await eventually(async () => Object.keys((await used.inspect()).Containers).length === 1);
      await assert.rejects(used.remove(), isErr(ConflictError, /active endpoints: holder/));
      const pruned = await box.svc.prune();
      assert.ok(pruned.NetworksDeleted.includes('unused'));
      assert.ok(!pruned.NetworksDeleted.includes('in-use'));
    } finally {
      await c.stop();
    }
    await used.remove();
  });

  test('static addresses, ipRange, several networks per container (one default route), inspect lists them', async () => {
    const a = await box.svc.create({ name: 'multi-a', subnet: testSubnet(28), ipRange: '10.231.28.128/25' });
    const b = await box.svc.create({ name: 'multi-b', subnet: testSubnet(29) });
    const r = await sh('ip -o -4 addr show; ip route', { networks: [a, { network: b, ip: '10.231.29.77', aliases: ['bee'] }] });
    assert.equal(r.exitCode, 0, r.stderr);
    const ip0 = /eth0\s+inet (10\.231\.28\.(\d+))\/24/.exec(r.stdout);
    assert.ok(ip0 && Number(ip0[2]) >= 128, `eth0 from the ipRange: ${r.stdout}`);
    assert.match(r.stdout, /eth1\s+inet 10\.231\.29\.77\/24/);
    assert.equal(r.stdout.match(/default via/g)?.length, 1);
    assert.match(r.stdout, /default via 10\.231\.28\.1 dev eth0/);

    const holder = background('sleep 60', { networks: [{ network: b, ip: '10.231.29.77' }] });
    try {
      await eventually(async () => Object.keys((await b.inspect()).Containers).length === 1);
      const c = Object.values((await b.inspect()).Containers)[0]!;
      assert.equal(c.IPv4Address, '10.231.29.77/24');
      await assert.rejects(sh('true', { networks: [{ network: b, ip: '10.231.29.77' }] }), isErr(ConflictError, /already in use/));
      await assert.rejects(sh('true', { networks: [{ network: b, ip: '10.231.29.1' }] }), isErr(ValidationError, /gateway/));
      await assert.rejects(sh('true', { networks: [{ network: b, ip: '10.231.30.1' }] }), isErr(ValidationError, /outside/));
    } finally {
      await holder.stop();
    }
  });

  test('the default "bridge" network: made on first use, host name servers, no names between containers', async () => {
    const bridge = await box.svc.get('bridge');
    const again = await box.svc.get('bridge');
    assert.equal(bridge.id, again.id);
    const other = background('sleep 60', { network: bridge, hostname: 'neighbour' });
    try {
      await eventually(async () => Object.keys((await bridge.inspect()).Containers).length === 1);
      const r = await sh('cat /etc/resolv.conf; grep -c neighbour /etc/hosts; ip route', { network: bridge, hostname: 'me' });
      const hostServers = readFileSync('/etc/resolv.conf', 'utf8').match(/^nameserver\s+(?!127\.)\S+/gm) ?? [];
      for (const s of hostServers) assert.ok(r.stdout.includes(s), `${s} in ${r.stdout}`);
      assert.match(r.stdout, /^0$/m, 'Docker\'s default bridge does not resolve container names');
      assert.match(r.stdout, /default via/);
    } finally {
      await other.stop();
    }
  });

  test('host: 0 publishes on a free port, reported in the container\'s network settings', async () => {
    const net = await box.svc.create({ name: 'anyport', subnet: testSubnet(31) });
    const web = background('mkdir /www && echo any-port > /www/index.html && exec httpd -f -p 8080 -h /www', { network: net, hostname: 'anyport', ports: [{ container: 8080, hostIp: '127.0.0.1' }] });
    try {
      const id = await eventually(async () => (await box.svc.store.readEndpoints()).endpoints.find((e) => e.hostname === 'anyport' && e.pid)?.containerId);
      assert.ok(id);
      const settings = await box.svc.settingsFor(id);
      const binding = settings.Ports['8080/tcp']?.[0];
      assert.ok(binding && Number(binding.HostPort) > 0, JSON.stringify(settings));
      assert.equal(binding.HostIp, '127.0.0.1');
      assert.equal(settings.Networks['anyport']?.Gateway, '10.231.31.1');
      assert.match(await tcpRead(Number(binding.HostPort), { send: 'GET / HTTP/1.0\r\n\r\n' }), /any-port/);
    } finally {
      await web.stop();
    }
  });

  test('connect and disconnect a running container: eth1 comes and goes, peers resolve its alias, events fire', async () => {
    const a = await box.svc.create({ name: 'conn-a', subnet: testSubnet(32) });
    const b = await box.svc.create({ name: 'conn-b', subnet: testSubnet(33) });
    // The container reports eth1 once it sees it (and marks /tmp/seen), then waits for it to go.
    const script =
      'for i in $(seq 100); do out=$(ip -o -4 addr show eth1 2>/dev/null) && echo "$out" | grep -q inet && { echo "$out"; touch /tmp/seen; break; }; sleep 0.1; done; ' +
      'for i in $(seq 100); do [ -e /sys/class/net/eth1 ] || break; sleep 0.1; done; [ -e /sys/class/net/eth1 ] && echo still-there || echo eth1-gone';
    const ac = new AbortController();
    const run = sh(script, { network: a, hostname: 'mover', signal: ac.signal, timeout: 30_000 });
    try {
      const ep = await eventually(async () => (await box.svc.store.readEndpoints()).endpoints.find((e) => e.hostname === 'mover' && e.pid));
      assert.ok(ep?.pid);
      const container: ConnectableContainer = {
        id: ep.containerId,
        name: 'mover',
        inspect: async () => ({ State: { Running: true, Pid: ep.pid!.pid }, Config: { Hostname: 'mover' } }),
      };
      const events: Array<[string, NetworkEndpointEvent]> = [];
      b.on('connect', (e) => events.push(['connect', e]));
      b.on('disconnect', (e) => events.push(['disconnect', e]));
      await b.connect(container, { aliases: ['late-alias'] });
      await assert.rejects(b.connect(container), isErr(ConflictError, /already connected/));
      const peer = await sh('nslookup late-alias 127.0.0.11', { network: b });
      assert.match(peer.stdout, /Address:\s*10\.231\.33\.\d+/);
      assert.ok(await eventually(() => existsSync(`/proc/${ep.pid!.pid}/root/tmp/seen`)), 'the container saw eth1');
      await b.disconnect(container);
      const r = await run;
      assert.match(r.stdout, /eth1\s+inet 10\.231\.33\.\d+\/24/);
      assert.match(r.stdout, /eth1-gone/);
      // (the peer that resolved the alias came and went too)
      assert.deepEqual(events.filter(([, e]) => e.name === 'mover').map(([k, e]) => [k, e.containerId]), [['connect', ep.containerId], ['disconnect', ep.containerId]]);
    } finally {
      ac.abort();
      await run.catch(() => {});
    }
  });
});
