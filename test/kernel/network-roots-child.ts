/**
 * Child of network-roots.test.ts, run in a mount namespace of its own where /var/lib is an
 * empty tmpfs: two runtimes with different roots use the same network names ('mynet', the
 * default 'bridge') at once. Prints one JSON line of facts; the parent asserts on them.
 * Usage: network-roots-child.ts <rootA> <rootB> <rootfs>
 */
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { run } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { nftTableName } from '../../lib/network/firewall-rules.js';
import { Runtime } from '../../lib/runtime.js';
import { tcpRead } from '../helpers/network-fixture.js';

const [rootA, rootB, rootfs] = process.argv.slice(2) as [string, string, string];
const image = { rootfs };
const facts: Record<string, unknown> = {};
const table = (rt: Runtime) => spawnSync('nft', ['list', 'table', 'ip', nftTableName(rt.networks.tag)], { stdio: 'ignore' }).status === 0;
const links = async (rt: Runtime) => (await native().netListLinks()).filter((l) => l.alias.startsWith(`berth:${rt.networks.tag}:`)).map((l) => l.name);
const eth0 = async (rt: Runtime, network: string) => {
  const r = await rt.run(image, ['sh', '-c', 'ip -4 -o addr show eth0 | awk \'{print $4}\''], { network });
  return r.exitCode === 0 ? r.stdout.trim() : `exit ${r.exitCode}: ${r.stderr}`;
};

const a = await Runtime.open({ root: rootA });
const b = await Runtime.open({ root: rootB });
try {
  const netA = await a.networks.create({ name: 'mynet' });
  const netB = await b.networks.create({ name: 'mynet' });
  facts.mynet = { a: (await netA.inspect()).IPAM.Config[0]!.Subnet, b: (await netB.inspect()).IPAM.Config[0]!.Subnet };
  facts.mynetBridges = { a: (await netA.inspect()).Options['com.docker.network.bridge.name'], b: (await netB.inspect()).Options['com.docker.network.bridge.name'] };
  facts.runOnMynet = { a: await eth0(a, 'mynet'), b: await eth0(b, 'mynet') };
  facts.runOnBridge = { a: await eth0(a, 'bridge'), b: await eth0(b, 'bridge') };
  facts.bridge = { a: (await a.networks.inspect('bridge')).IPAM.Config[0]!.Subnet, b: (await b.networks.inspect('bridge')).IPAM.Config[0]!.Subnet };
  facts.tables = { a: table(a), b: table(b), differ: a.networks.tag !== b.networks.tag };

  // A container on each root's default bridge (ports alone), both serving at once.
  const serve = (rt: Runtime, text: string) => rt.containers.create({ image, cmd: ['sh', '-c', `while :; do echo ${text} | nc -l -p 80; done`], ports: ['80'] });
  const webA = await serve(a, 'from-a');
  const webB = await serve(b, 'from-b');
  await webA.start();
  await webB.start();
  facts.served = { a: await tcpRead(webA.getMappedPort(80)), b: await tcpRead(webB.getMappedPort(80)) };

  // Removing everything of A leaves B whole.
  await webA.remove({ force: true });
  await netA.remove();
  await (await a.networks.get('bridge')).remove();
  facts.afterRemovingA = {
    aLinks: await links(a),
    aTable: table(a),
    bNetworks: (await b.networks.list()).map((n) => n.name).sort(),
    bLinks: (await links(b)).length,
    bTable: table(b),
    bServes: await tcpRead(webB.getMappedPort(80)),
    bRun: await eth0(b, 'mynet'),
  };
  await webB.remove({ force: true });
  await netB.remove();
  await (await b.networks.get('bridge')).remove();

  // run() with a rootfs and no names needs no runtime at all.
  facts.plainRun = (await run(image, ['sh', '-c', 'echo plain'])).stdout;
} finally {
  await a.close();
  await b.close();
}
// This namespace's /var/lib started empty: anything there was written by berth.
facts.varLib = readdirSync('/var/lib');
process.stdout.write(`${JSON.stringify(facts)}\n`);
