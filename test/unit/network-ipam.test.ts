import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError, ValidationError } from '../../lib/errors.js';
import { contains, formatIpv4, formatSubnet, hostRange, overlaps, parseIpv4, parseSubnet, within } from '../../lib/network/cidr.js';
import { allocateAddress, defaultCandidates, parseRouteTable, planPool, type Pool } from '../../lib/network/ipam.js';

const ip = (s: string) => parseIpv4(s)!;
const sub = (s: string) => parseSubnet(s, 'subnet');

describe('CIDR', () => {
  it('parses and formats IPv4 addresses strictly', () => {
    assert.equal(ip('172.18.0.1'), 0xac120001);
    assert.equal(formatIpv4(0xac120001), '172.18.0.1');
    for (const bad of ['1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.-1', ' 1.2.3.4', '', 'a.b.c.d']) assert.equal(parseIpv4(bad), undefined, bad);
  });

  it('parses subnets and refuses host bits, bad prefixes and garbage with ValidationError', () => {
    assert.deepEqual(sub('10.0.0.0/8'), { base: 0x0a000000, prefix: 8 });
    assert.equal(formatSubnet(sub('192.168.16.0/20')), '192.168.16.0/20');
    assert.throws(() => sub('10.0.0.1/8'), (e: unknown) => e instanceof ValidationError && e.option === 'subnet' && /should be "10.0.0.0\/8"/.test(e.message));
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/x', '10.0.0/8', 42]) {
      assert.throws(() => parseSubnet(bad, 'subnet'), ValidationError, String(bad));
    }
  });

  it('containment, nesting, overlap and the host range', () => {
    assert.ok(contains(sub('10.1.0.0/16'), ip('10.1.255.255')));
    assert.ok(!contains(sub('10.1.0.0/16'), ip('10.2.0.0')));
    assert.ok(within(sub('10.1.2.0/24'), sub('10.1.0.0/16')));
    assert.ok(!within(sub('10.1.0.0/16'), sub('10.1.2.0/24')));
    assert.ok(overlaps(sub('10.1.0.0/16'), sub('10.1.200.0/24')));
    assert.ok(!overlaps(sub('10.1.0.0/24'), sub('10.1.1.0/24')));
    assert.deepEqual(hostRange(sub('10.1.2.0/24')), { first: ip('10.1.2.1'), last: ip('10.1.2.254') });
    assert.deepEqual(hostRange(sub('10.1.2.0/31')), { first: ip('10.1.2.0'), last: ip('10.1.2.1') });
  });
});

describe('subnet planning', () => {
  const routes = parseRouteTable(
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n' +
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' +
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
      'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n',
  );

  it('reads /proc/net/route without the default route', () => {
    assert.deepEqual(
      routes.map((r) => [r.iface, formatSubnet(r.subnet)]),
      [
        ['eth0', '192.0.2.0/24'],
        ['docker0', '172.17.0.0/16'],
      ],
    );
  });

  it('picks the first default pool free of host routes and other networks', () => {
    const p = planPool({}, { taken: [{ name: 'a', subnet: sub('172.18.0.0/16') }], routes });
    assert.equal(formatSubnet(p.subnet), '172.19.0.0/16');
    assert.equal(formatIpv4(p.gateway), '172.19.0.1');
    const only192 = planPool({}, { taken: defaultCandidates().slice(0, 15).map((s, i) => ({ name: `n${i}`, subnet: s })), routes });
    assert.equal(formatSubnet(only192.subnet), '192.168.0.0/20');
    assert.throws(() => planPool({}, { taken: [], routes, candidates: [sub('192.0.2.0/24')] }), ConflictError);
  });

  it('a route through one of our own bridges does not count against it', () => {
    const p = planPool({}, { taken: [], routes, ownBridges: new Set(['docker0']) });
    assert.equal(formatSubnet(p.subnet), '172.17.0.0/16');
  });

  it('validates a given subnet, gateway and range', () => {
    const p = planPool({ subnet: '10.9.0.0/24', gateway: '10.9.0.254', ipRange: '10.9.0.128/25' }, { taken: [], routes });
    assert.equal(formatIpv4(p.gateway), '10.9.0.254');
    assert.equal(formatSubnet(p.ipRange!), '10.9.0.128/25');
    const err = (req: Parameters<typeof planPool>[0], cls: Function, option?: string, re?: RegExp) =>
      assert.throws(() => planPool(req, { taken: [{ name: 'other', subnet: sub('10.8.0.0/16') }], routes }), (e: unknown) => e instanceof cls && (!option || (e as ValidationError).option === option) && (!re || re.test((e as Error).message)));
    err({ subnet: '10.8.1.0/24' }, ConflictError, undefined, /overlaps network "other"/);
    err({ subnet: '192.0.2.128/25' }, ConflictError, undefined, /host's route 192.0.2.0\/24 on eth0/);
    err({ subnet: '10.9.0.0/24', gateway: '10.9.1.1' }, ValidationError, 'gateway', /outside/);
    err({ subnet: '10.9.0.0/24', gateway: '10.9.0.255' }, ValidationError, 'gateway', /broadcast/);
    err({ subnet: '10.9.0.0/24', gateway: 'nope' }, ValidationError, 'gateway');
    err({ subnet: '10.9.0.0/24', ipRange: '10.9.1.0/25' }, ValidationError, 'ipRange');
    err({ subnet: '10.9.0.0/31' }, ValidationError, 'subnet', /too small/);
    err({ gateway: '10.9.0.1' }, ValidationError, 'gateway', /needs "subnet"/);
  });
});

describe('address allocation', () => {
  const pool: Pool = { subnet: sub('10.5.0.0/29'), gateway: ip('10.5.0.1') };

  it('hands out addresses in order after the last one, skipping the gateway and used ones, wrapping around', () => {
    const used = new Set<number>();
    const got: string[] = [];
    let cursor: number | undefined;
    for (let i = 0; i < 5; i++) {
      const a = allocateAddress(pool, used, cursor);
      used.add(a);
      cursor = a;
      got.push(formatIpv4(a));
    }
    assert.deepEqual(got, ['10.5.0.2', '10.5.0.3', '10.5.0.4', '10.5.0.5', '10.5.0.6']);
    assert.throws(() => allocateAddress(pool, used, cursor), (e: unknown) => e instanceof ConflictError && /no free address/.test((e as Error).message));
    used.delete(ip('10.5.0.3'));
    used.delete(ip('10.5.0.6'));
    // After .6 comes .3 (wrapped), not the just-released .6 again.
    assert.equal(formatIpv4(allocateAddress(pool, used, ip('10.5.0.6'))), '10.5.0.3');
  });

  it('stays inside ipRange', () => {
    const ranged: Pool = { subnet: sub('10.6.0.0/24'), gateway: ip('10.6.0.1'), ipRange: sub('10.6.0.64/30') };
    assert.equal(formatIpv4(allocateAddress(ranged, new Set())), '10.6.0.64');
    assert.equal(formatIpv4(allocateAddress(ranged, new Set([ip('10.6.0.64')]), ip('10.6.0.67'))), '10.6.0.65');
  });

  it('checks a requested static address', () => {
    const used = new Set([ip('10.5.0.2')]);
    assert.equal(formatIpv4(allocateAddress(pool, used, undefined, '10.5.0.6')), '10.5.0.6');
    assert.throws(() => allocateAddress(pool, used, undefined, '10.5.0.2'), ConflictError);
    assert.throws(() => allocateAddress(pool, used, undefined, '10.5.0.1'), (e: unknown) => e instanceof ValidationError && /gateway/.test((e as Error).message));
    assert.throws(() => allocateAddress(pool, used, undefined, '10.5.0.7'), (e: unknown) => e instanceof ValidationError && /broadcast/.test((e as Error).message));
    assert.throws(() => allocateAddress(pool, used, undefined, '10.5.1.2'), (e: unknown) => e instanceof ValidationError && /outside/.test((e as Error).message));
    assert.throws(() => allocateAddress(pool, used, undefined, 'x'), ValidationError);
  });
});
