import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeRunOptions, type RunOptions } from '../../lib/launch/run-options.js';
import { ValidationError } from '../../lib/errors.js';
import { networkKind } from '../../lib/network/attach.js';
import { networkServiceOf } from '../../lib/network/network-options.js';
import { clashes, normalizeExposedPorts, normalizePorts } from '../../lib/network/ports.js';

const invalid = (options: unknown, option: string, re?: RegExp) =>
  assert.throws(
    () => normalizeRunOptions(options as RunOptions),
    (e: unknown) => e instanceof ValidationError && e.option === option && (!re || re.test(e.message)),
    `${JSON.stringify(options)} -> ${option}`,
  );

describe('ports', () => {
  it('without a network, put the container on the default bridge network (Docker\'s -p); none stays the default otherwise', () => {
    const published = normalizeRunOptions({ ports: ['8080'] });
    assert.equal(published.network, 'bridge');
    assert.equal(networkKind(published), 'bridge');
    assert.equal(normalizeRunOptions({ ports: [] }).network, undefined);
    assert.equal(networkKind(normalizeRunOptions({})), 'none');
    assert.equal(normalizeRunOptions({ network: 'mynet', ports: [80] }).network, 'mynet');
    assert.equal(normalizeRunOptions({ networks: ['mynet'], ports: [80] }).network, undefined);
  });

  it('accepts objects, numbers and Docker\'s -p syntax, with Docker\'s defaults but loopback', () => {
    assert.deepEqual(normalizePorts([8080, '80', '18080:80', '127.0.0.1:18081:81/udp', '127.0.0.1::82', { container: 83, host: 0, hostIp: '127.0.0.1', protocol: 'udp' }, { container: 84 }]), [
      { container: 8080, host: 0, hostIp: '127.0.0.1', protocol: 'tcp' },
      { container: 80, host: 0, hostIp: '127.0.0.1', protocol: 'tcp' },
      { container: 80, host: 18080, hostIp: '127.0.0.1', protocol: 'tcp' },
      { container: 81, host: 18081, hostIp: '127.0.0.1', protocol: 'udp' },
      { container: 82, host: 0, hostIp: '127.0.0.1', protocol: 'tcp' },
      { container: 83, host: 0, hostIp: '127.0.0.1', protocol: 'udp' },
      { container: 84, host: 0, hostIp: '127.0.0.1', protocol: 'tcp' },
    ]);
  });

  it('publishes on 127.0.0.1 unless hostIp says otherwise; 0.0.0.0 opts in to every address', () => {
    for (const spec of [80, '80', '18080:80', ':80', '18080:80/udp', { container: 80 }, { container: 80, hostIp: '' }]) {
      assert.equal(normalizePorts([spec])[0]!.hostIp, '127.0.0.1', JSON.stringify(spec));
    }
    assert.deepEqual(normalizePorts(['0.0.0.0:18080:80', '0.0.0.0::81/udp', { container: 82, hostIp: '0.0.0.0' }]).map((p) => p.hostIp), ['0.0.0.0', '0.0.0.0', '0.0.0.0']);
  });

  it('names the bad entry', () => {
    const bad = (ports: unknown[], option: string, re?: RegExp) =>
      assert.throws(() => normalizePorts(ports), (e: unknown) => e instanceof ValidationError && e.option === option && (!re || re.test(e.message)));
    bad([0], 'ports[0]');
    bad([70000], 'ports[0]');
    bad(['1:2:3:4'], 'ports[0]');
    bad(['8080/sctp'], 'ports[0]');
    bad(['8000-8010:8000-8010'], 'ports[0]', /ranges/);
    bad(['nothost:1:2'], 'ports[0]');
    bad([{ container: 80, host: 65536 }], 'ports[0].host');
    bad([{ container: 80, hostIp: '::1' }], 'ports[0].hostIp');
    bad([{ container: 80, proto: 'udp' }], 'ports[0].proto');
    bad(['18080:80', '127.0.0.1:18080:81'], 'ports[1]', /published twice/);
    bad(['0.0.0.0:18080:80', '18080:81'], 'ports[1]', /published twice/);
    bad([null], 'ports[0]');
  });

  it('a host port clashes on the same protocol when either side is 0.0.0.0 or the addresses match', () => {
    const p = (host: number, hostIp: string, protocol: 'tcp' | 'udp' = 'tcp') => ({ host, hostIp, protocol });
    assert.ok(clashes(p(80, '0.0.0.0'), p(80, '127.0.0.1')));
    assert.ok(clashes(p(80, '127.0.0.1'), p(80, '127.0.0.1')));
    assert.ok(!clashes(p(80, '127.0.0.1'), p(80, '127.0.0.2')));
    assert.ok(!clashes(p(80, '0.0.0.0'), p(80, '0.0.0.0', 'udp')));
    assert.ok(!clashes(p(80, '0.0.0.0'), p(81, '0.0.0.0')));
  });

  it('exposed ports', () => {
    assert.deepEqual(normalizeExposedPorts([80, '53/udp', '443']), [
      { port: 80, protocol: 'tcp' },
      { port: 53, protocol: 'udp' },
      { port: 443, protocol: 'tcp' },
    ]);
    assert.throws(() => normalizeExposedPorts(['x']), ValidationError);
  });
});

describe('network options', () => {
  it('network: none is the default; the kinds follow the value', () => {
    assert.equal(networkKind(normalizeRunOptions({})), 'none');
    assert.equal(networkKind(normalizeRunOptions({ network: 'host' })), 'host');
    assert.equal(networkKind(normalizeRunOptions({ network: 'bridge' })), 'bridge');
    assert.equal(networkKind(normalizeRunOptions({ network: 'my-net' })), 'bridge');
    assert.equal(networkKind(normalizeRunOptions({ networks: ['a', 'b'] })), 'bridge');
    assert.equal(networkKind(normalizeRunOptions({ network: 'container:abc123' })), 'container');
  });

  it('a Network object becomes its name (options are stored as JSON) and names its runtime', () => {
    const service = { tag: 'x' };
    const net = { id: 'f'.repeat(64), name: 'objnet', service };
    const o = normalizeRunOptions({ network: net, networks: [{ network: net, aliases: ['a1'] }] });
    assert.equal(o.network, 'objnet');
    assert.deepEqual(o.networks, [{ network: 'objnet', aliases: ['a1'] }]);
    assert.equal(JSON.parse(JSON.stringify(o)).network, 'objnet');
    assert.equal(networkServiceOf({ network: net }), service);
    assert.equal(networkServiceOf({ network: 'by-name' }), undefined);
    assert.throws(() => networkServiceOf({ network: net, networks: [{ id: 'e'.repeat(64), name: 'b', service: {} } as never] }), ValidationError);
  });

  it('refuses contradictions and malformed values, naming the option', () => {
    invalid({ network: 'bad name' }, 'network');
    invalid({ network: 42 }, 'network');
    invalid({ network: 'container:' }, 'network');
    invalid({ network: 'host', networks: ['a'] }, 'networks');
    invalid({ network: 'none', networks: ['a'] }, 'networks');
    invalid({ network: 'container:x1', networks: ['a'] }, 'networks');
    invalid({ networks: ['none'] }, 'networks[0]');
    invalid({ networks: [{ network: 'a', ip: '10.0.0.300' }] }, 'networks[0].ip');
    invalid({ networks: [{ network: 'a', aliases: ['bad alias'] }] }, 'networks[0].aliases[0]');
    invalid({ networks: [{ network: 'a', alias: ['x'] }] }, 'networks[0].alias');
    invalid({ network: 'none', ports: [80] }, 'ports', /needs a bridge network.*network is "none"/);
    invalid({ networks: [], ports: [80] }, 'ports', /needs a bridge network/);
    invalid({ network: 'host', ports: [80] }, 'ports', /network is "host"/);
    invalid({ network: 'container:x1', ports: [80] }, 'ports');
    invalid({ network: 'container:x1', hostname: 'h' }, 'hostname', /conflicts/);
    invalid({ network: 'container:x1', dns: ['1.1.1.1'] }, 'dns', /conflicts/);
    invalid({ network: 'container:x1', userns: 'auto' }, 'network', /userns/);
    invalid({ dns: ['not-an-ip'] }, 'dns[0]');
    invalid({ extraHosts: ['nohost'] }, 'extraHosts[0]');
    invalid({ extraHosts: ['h:not-ip'] }, 'extraHosts[0]');
    invalid({ extraHosts: { 'bad host': '1.2.3.4' } }, 'extraHosts.bad host');
    invalid({ exposedPorts: [0] }, 'exposedPorts[0]');
    invalid({ extraHosts: ['gw:host-gateway'] }, 'extraHosts', /bridge network/);
  });

  it('extraHosts in every form, IPv6 and host-gateway included', () => {
    assert.deepEqual(normalizeRunOptions({ network: 'n', extraHosts: ['db:10.0.0.5', 'v6:fd00::1', 'gw:host-gateway'] }).extraHosts, [
      { host: 'db', ip: '10.0.0.5' },
      { host: 'v6', ip: 'fd00::1' },
      { host: 'gw', ip: 'host-gateway' },
    ]);
    assert.deepEqual(normalizeRunOptions({ extraHosts: { db: '10.0.0.5' } }).extraHosts, [{ host: 'db', ip: '10.0.0.5' }]);
    // Idempotent: normalized options normalize to themselves (containers store them).
    const once = normalizeRunOptions({ network: 'n', ports: ['127.0.0.1:1:2'], extraHosts: ['a:1.2.3.4'], exposedPorts: [80] });
    const twice = normalizeRunOptions(JSON.parse(JSON.stringify(once)) as RunOptions);
    assert.deepEqual(twice, once);
  });
});
