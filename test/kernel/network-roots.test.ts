/**
 * Network state belongs to its runtime's root: two runtimes with different roots use the same
 * network names ('mynet', the default 'bridge') with containers on each at once; both work,
 * their host-global kernel objects (bridges, nftables tables, subnets) do not collide, removing
 * one root's networks leaves the other's intact, and nothing is read or written under the
 * default root /var/lib/berth. The scenario runs in a child process in its own mount namespace
 * where /var/lib is an empty tmpfs, so that this holds even while other processes on the host
 * use /var/lib/berth.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { overlaps, parseSubnet } from '../../lib/network/cidr.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { networkSandbox, networkSkipReason, removeRootNetworkObjects } from '../helpers/network-fixture.js';

const skip = networkSkipReason();
const here = dirname(fileURLToPath(import.meta.url));
const execFileP = promisify(execFile);

const inside = (cidr: string, address: string) => {
  const net = parseSubnet(cidr, 'subnet');
  return overlaps(net, parseSubnet(`${address.split('/')[0]}/32`, 'address'));
};

describe('network state per runtime root', { skip }, () => {
  let rootA: string;
  let rootB: string;
  before(() => {
    rootA = mkdtempSync(join(tmpdir(), 'berth-root-a-'));
    rootB = mkdtempSync(join(tmpdir(), 'berth-root-b-'));
  });
  after(async () => {
    for (const root of [rootA, rootB]) {
      await removeRootNetworkObjects(root);
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('two roots, same network names, both work; removing one leaves the other; nothing under /var/lib/berth', async () => {
    const script = `mount -t tmpfs berth-test /var/lib && exec "$0" --import tsx "$@"`;
    const { stdout } = await execFileP('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, process.execPath, join(here, 'network-roots-child.ts'), rootA, rootB, busyboxRootfs()], { timeout: 240_000 });
    const facts = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, Record<string, unknown>> & { varLib: string[]; plainRun: string };

    const { mynet, bridge, mynetBridges, runOnMynet, runOnBridge } = facts;
    assert.equal(overlaps(parseSubnet(mynet.a as string, 's'), parseSubnet(mynet.b as string, 's')), false, `mynet subnets ${mynet.a} and ${mynet.b} overlap`);
    assert.equal(overlaps(parseSubnet(bridge.a as string, 's'), parseSubnet(bridge.b as string, 's')), false, `bridge subnets ${bridge.a} and ${bridge.b} overlap`);
    assert.notEqual(mynetBridges.a, mynetBridges.b);
    assert.ok(inside(mynet.a as string, runOnMynet.a as string), `A's container on mynet got ${runOnMynet.a}`);
    assert.ok(inside(mynet.b as string, runOnMynet.b as string), `B's container on mynet got ${runOnMynet.b}`);
    assert.ok(inside(bridge.a as string, runOnBridge.a as string), `A's container on bridge got ${runOnBridge.a}`);
    assert.ok(inside(bridge.b as string, runOnBridge.b as string), `B's container on bridge got ${runOnBridge.b}`);
    assert.deepEqual(facts.tables, { a: true, b: true, differ: true });
    assert.deepEqual(facts.served, { a: 'from-a\n', b: 'from-b\n' });

    const afterA = facts.afterRemovingA;
    assert.deepEqual(afterA.aLinks, [], 'A\'s bridges and veths are gone');
    assert.equal(afterA.bTable, true, 'B\'s rules stay');
    assert.deepEqual(afterA.bNetworks, ['bridge', 'mynet']);
    assert.ok((afterA.bLinks as number) >= 2, 'B\'s bridges stay');
    assert.equal(afterA.bServes, 'from-b\n');
    assert.ok(inside(mynet.b as string, afterA.bRun as string));

    assert.equal(facts.plainRun, 'plain\n');
    assert.deepEqual(facts.varLib, [], 'nothing was created under /var/lib (no /var/lib/berth)');
  });

  test('roots choosing subnets at the same moment never pick overlapping ones (host routes are shared)', async () => {
    const boxes = [networkSandbox(), networkSandbox(), networkSandbox()];
    try {
      const made = await Promise.all(boxes.flatMap((box, i) => [0, 1].map((n) => box.svc.create({ name: `race-${i}-${n}` }))));
      const subnets = await Promise.all(made.map(async (net) => ({ name: net.name, subnet: parseSubnet((await net.inspect()).IPAM.Config[0]!.Subnet, 's') })));
      for (let i = 0; i < subnets.length; i++) {
        for (let j = i + 1; j < subnets.length; j++) {
          assert.equal(overlaps(subnets[i]!.subnet, subnets[j]!.subnet), false, `${subnets[i]!.name} and ${subnets[j]!.name} overlap`);
        }
      }
    } finally {
      for (const box of boxes) await box.cleanup();
    }
  });

  test('top-level run(): no runtime without names; ports alone use the default runtime\'s bridge', async () => {
    // A network namespace of its own too: the default runtime's bridge and rules stay inside it.
    const script = `mount -t tmpfs berth-test /var/lib && ip link set lo up && exec "$0" --import tsx "$@"`;
    const { stdout } = await execFileP('unshare', ['--mount', '--net', '--propagation', 'private', 'sh', '-c', script, process.execPath, join(here, 'network-default-root-child.ts'), busyboxRootfs()], { timeout: 240_000 });
    const facts = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown> & { published: { exitCode: number; eth0: string; stderr: string } };
    assert.equal(facts.plain, 'done\n', 'a plain run has no eth0');
    assert.equal(facts.defaultRootAfterPlain, false, 'a plain run() opened no runtime');
    assert.equal(facts.published.exitCode, 0, facts.published.stderr);
    assert.match(facts.published.eth0, /^\d+\.\d+\.\d+\.\d+\/\d+$/, 'ports put the run on a bridge network');
    assert.equal(facts.defaultRootAfterPorts, true);
    assert.deepEqual(facts.defaultNetworks, ['bridge']);
  });
});
