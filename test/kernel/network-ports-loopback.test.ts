/**
 * Published ports default to the host's loopback: a port published without `hostIp` must not
 * be reachable through any other address of the host. The "outside" is a network namespace
 * this suite creates, joined to the host by a veth pair on 10.231.75.0/30; it connects to the
 * host's end of that pair, as a machine on a network the host is on would. `hostIp: '0.0.0.0'`
 * opts in and is reached the same way. Traffic goes only to 127.0.0.1, to that veth pair and to
 * the suite's containers; the namespace and the veth are removed afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { native } from '../../lib/native.js';
import { nftTableName } from '../../lib/network/firewall-rules.js';
import { Runtime } from '../../lib/runtime.js';
import { BUSYBOX, busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';
import { freePort, networkSkipReason, tcpRead, testSubnet } from '../helpers/network-fixture.js';

const skip = networkSkipReason();
const GET = 'GET / HTTP/1.0\r\n\r\n';
const webScript = (text: string) => `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 8080 -h /www`;

const tag = `${process.pid % 100000}`;
const ns = `berth-pl${tag}`;
const hostEnd = `bpl${tag}h`;
const HOST_ADDR = '10.231.75.1';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

/** One HTTP GET from the outside namespace to HOST_ADDR:port; the reply ('' when refused or silent). */
function getFromOutside(port: number): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, BUSYBOX, 'nc', '-w', '2', HOST_ADDR, String(port)], { input: GET, encoding: 'utf8', timeout: 10_000 });
  return r.stdout ?? '';
}

describe('published ports are on 127.0.0.1 unless hostIp says otherwise', { skip }, () => {
  let f: Fixture;
  const rules = () => spawnSync('nft', ['list', 'table', 'ip', nftTableName(f.rt.networks.tag)], { encoding: 'utf8' }).stdout;

  before(async () => {
    busyboxRootfs();
    f = await openFixture('berth-plnet-');
    ip('netns', 'add', ns);
    ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `${HOST_ADDR}/30`, 'dev', hostEnd);
    ip('link', 'set', hostEnd, 'up');
    ip('-n', ns, 'addr', 'add', '10.231.75.2/30', 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  });
  after(async () => {
    spawnSync('ip', ['link', 'del', hostEnd], { stdio: 'ignore' });
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    const rt = await Runtime.open({ root: f.root }).catch(() => f.rt);
    for (const s of await rt.containers.list({ all: true }).catch(() => [])) await (await rt.containers.get(s.Id)).remove({ force: true }).catch(() => {});
    for (let attempt = 0; attempt < 50; attempt++) {
      const nets = await rt.networks.list().catch(() => []);
      if (nets.length === 0) break;
      for (const n of nets) await n.remove().catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
    const mark = `berth:${rt.networks.tag}:`;
    for (const l of await native().netListLinks()) if (l.alias.startsWith(mark)) await native().netDeleteLink(l.name).catch(() => false);
    spawnSync('nft', ['delete', 'table', 'ip', nftTableName(rt.networks.tag)], { stdio: 'ignore' });
    await f.cleanup();
  });

  test('without hostIp: reachable on 127.0.0.1 only, never through another address of the host', async () => {
    const net = await f.rt.networks.create({ name: 'pl', subnet: testSubnet(74) });
    const port = await freePort();
    const web = await f.sh(webScript('loopback-only'), { network: net, ports: [{ container: 8080, host: port }] });
    await web.start();
    assert.match(await tcpRead(port, { send: GET }), /loopback-only/, 'the host reaches it on 127.0.0.1');
    // The server is up (above), so silence from outside is the rule, not a slow start.
    assert.doesNotMatch(getFromOutside(port), /loopback-only/, `reachable from another network through ${HOST_ADDR}`);
    assert.deepEqual(await web.port(8080), [{ hostIp: '127.0.0.1', hostPort: port }]);
    assert.deepEqual((await web.inspect()).NetworkSettings.Ports['8080/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(port) }]);
    const dnat = rules().split('\n').find((l) => l.includes(`dport ${port} `)) ?? '';
    assert.match(dnat, /^\s*ip daddr 127\.0\.0\.1 .*dnat to /, 'the DNAT matches 127.0.0.1 only');
    await web.stop({ timeout: 0 });
  });

  test("Docker's string syntax without an address is loopback too; '0.0.0.0:…' opts in", async () => {
    const net = await f.rt.networks.create({ name: 'pl-str', subnet: testSubnet(76) });
    const [quiet, open] = [await freePort(), await freePort()];
    const web = await f.sh(webScript('by-string'), { network: net, ports: [`${quiet}:8080`, `0.0.0.0:${open}:8080`] });
    await web.start();
    assert.match(await tcpRead(open, { send: GET }), /by-string/);
    assert.match(getFromOutside(open), /by-string/, 'hostIp 0.0.0.0 is reachable from outside');
    assert.doesNotMatch(getFromOutside(quiet), /by-string/, `reachable from another network through ${HOST_ADDR}`);
    assert.deepEqual(await web.port(8080), [{ hostIp: '127.0.0.1', hostPort: quiet }, { hostIp: '0.0.0.0', hostPort: open }]);
    await web.stop({ timeout: 0 });
  });

  test("hostIp '0.0.0.0' opts in to every address of the host", async () => {
    const net = await f.rt.networks.create({ name: 'pl-all', subnet: testSubnet(77) });
    const port = await freePort();
    const web = await f.sh(webScript('every-address'), { network: net, ports: [{ container: 8080, host: port, hostIp: '0.0.0.0' }] });
    await web.start();
    assert.deepEqual(await web.port(8080), [{ hostIp: '0.0.0.0', hostPort: port }]);
    assert.match(await tcpRead(port, { send: GET }), /every-address/);
    assert.match(getFromOutside(port), /every-address/, `reachable from another network through ${HOST_ADDR}`);
    await web.stop({ timeout: 0 });
  });
});
