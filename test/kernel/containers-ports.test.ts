/**
 * Published ports of `rt.containers`, as a testcontainers-style harness uses them: `ports`
 * alone puts the container on the default `bridge` network (Docker's `-p`), `getHost()` and
 * `getMappedPort()` say where to connect (typed errors naming the port otherwise), and
 * `containers.list()` carries Docker's `Ports` and `NetworkSettings`. Traffic goes to
 * 127.0.0.1 only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, NotFoundError, ValidationError, isBerthError } from '../../lib/errors.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';
import { networkSkipReason, tcpRead } from '../helpers/network-fixture.js';

const skip = networkSkipReason();
const isErr = (cls: new (...a: never[]) => Error, re: RegExp) => (e: unknown) => isBerthError(e) && e instanceof cls && re.test(e.message);

describe('containers: published ports', { skip }, () => {
  let f: Fixture;
  before(async () => {
    f = await openFixture();
  });
  after(async () => {
    await f.removeContainersAndNetworks();
    await f.cleanup();
  });

  test('ports without network: the default bridge network; getHost():getMappedPort() reaches the container', async () => {
    const c = await f.sh('while :; do echo pong | nc -l -p 8080; done', { ports: ['8080', '127.0.0.1::9090/udp'] });
    assert.equal((await c.inspect()).HostConfig.NetworkMode, 'bridge');
    await c.start();
    await c.waitForPort(8080, { timeout: 30_000 });
    const info = await c.inspect();
    assert.match(info.NetworkSettings.Networks['bridge']!.IPAddress, /^\d+\.\d+\.\d+\.\d+$/);
    // Synchronous, as testcontainers' getMappedPort(): usable in a template string.
    const port = c.getMappedPort(8080);
    assert.equal(typeof port, 'number');
    assert.equal(port, Number(info.NetworkSettings.Ports['8080/tcp']![0]!.HostPort));
    assert.equal(c.getMappedPort('8080/tcp'), port);
    assert.equal(typeof c.getMappedPort(9090, 'udp'), 'number');
    assert.equal(c.getHost(), '127.0.0.1');
    assert.equal(c.getHost(8080), '127.0.0.1');
    assert.equal(await tcpRead(port), 'pong\n');
    // Another object of the same container, from get(), sees the same mapping.
    assert.equal((await f.rt.containers.get(c.id)).getMappedPort(8080), port);

    assert.throws(() => c.getMappedPort(8081), isErr(NotFoundError, /does not publish port 8081\/tcp \(published: 8080\/tcp, 9090\/udp\)/));
    assert.throws(() => c.getMappedPort(9090), isErr(NotFoundError, /port 9090\/tcp/));
    assert.throws(() => c.getMappedPort('http'), (e: unknown) => isBerthError(e) && e instanceof ValidationError && e.option === 'port');
    await c.stop({ timeout: 200 });
    assert.throws(() => c.getMappedPort(8080), isErr(ConflictError, /not running.*8080\/tcp/));
  });

  test('a container that publishes nothing: getMappedPort names the port and says none is published', async () => {
    const c = await f.sh('sleep 30');
    await c.start();
    assert.throws(() => c.getMappedPort(80), isErr(NotFoundError, /does not publish port 80\/tcp \(it publishes no port/));
    assert.equal(c.getHost(), '127.0.0.1');
    await c.kill();
  });

  test('network none stays the default without ports; explicit none with ports is an error naming the option', async () => {
    const c = await f.sh('true');
    assert.equal((await c.inspect()).HostConfig.NetworkMode, 'none');
    await assert.rejects(f.sh('true', { network: 'none', ports: [80] }), (e: unknown) => isBerthError(e) && e instanceof ValidationError && e.option === 'ports' && /network is "none"/.test(e.message));
  });

  test('list(): Ports and NetworkSettings in docker ps\'s shape', async () => {
    const net = await f.rt.networks.create({ name: 'ps-net' });
    const web = await f.sh('nc -l -p 80; sleep 30', { name: 'ps-web', network: 'ps-net', ports: ['80', { container: 443, host: 0, hostIp: '0.0.0.0' }], exposedPorts: [5000] });
    const idle = await f.sh('sleep 30', { name: 'ps-idle' });
    await web.start();
    await idle.start();
    const rows = await f.rt.containers.list();
    const row = rows.find((r) => r.Id === web.id)!;
    const p80 = await web.getMappedPort(80);
    const p443 = await web.getMappedPort(443);
    assert.deepEqual(row.Ports, [
      { IP: '127.0.0.1', PrivatePort: 80, PublicPort: p80, Type: 'tcp' },
      { IP: '0.0.0.0', PrivatePort: 443, PublicPort: p443, Type: 'tcp' },
      { PrivatePort: 5000, Type: 'tcp' },
    ]);
    assert.equal(await web.getHost(443), '127.0.0.1');
    assert.deepEqual(row.HostConfig, { NetworkMode: 'ps-net' });
    const ep = row.NetworkSettings.Networks['ps-net']!;
    const inspected = (await web.inspect()).NetworkSettings.Networks['ps-net']!;
    assert.equal(ep.NetworkID, net.id);
    assert.equal(ep.IPAddress, inspected.IPAddress);
    assert.match(ep.IPAddress, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(ep.MacAddress, inspected.MacAddress);
    const idleRow = rows.find((r) => r.Id === idle.id)!;
    assert.deepEqual(idleRow.Ports, []);
    assert.deepEqual(Object.keys(idleRow.NetworkSettings.Networks), ['none']);
    assert.deepEqual(idleRow.HostConfig, { NetworkMode: 'none' });

    await web.kill();
    const stopped = (await f.rt.containers.list({ all: true })).find((r) => r.Id === web.id)!;
    assert.deepEqual(stopped.Ports, [], 'docker ps shows no ports for a stopped container');
    assert.equal(stopped.NetworkSettings.Networks['ps-net']!.IPAddress, '');
    await idle.kill();
  });
});
