/**
 * IPv6 router advertisements from a container (the CVE-2020-13401 class): a container on a
 * bridge network that may forge frames (here it is given CAP_NET_RAW, which is not a default)
 * sends real RAs to ff02::1. Neither the host (the bridge, the container's host-side veth) nor
 * a neighbouring container may configure an address from them. A control first shows the same
 * RA does configure an address on a link with the kernel's default settings, so the attack is
 * real. Every address involved belongs to links and namespaces these tests create.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, type RunOptions } from '../../lib/index.js';
import { bridgeNameFor } from '../../lib/network/bridge-driver.js';
import { eventually, networkSandbox, networkSkipReason, sh, testSubnet, type NetworkSandbox } from '../helpers/network-fixture.js';
import { rawToolDir, rawToolSkipReason } from '../helpers/network-raw-tool.js';

const skip = networkSkipReason() || rawToolSkipReason();

/** The tool, bound read-only at /t in a container. */
const withTool = (options: RunOptions): RunOptions => ({ ...options, mounts: [{ type: 'bind', source: rawToolDir(), target: '/t', readonly: true }] });

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const sysctl = (ifname: string, key: string) => readFileSync(`/proc/sys/net/ipv6/conf/${ifname}/${key}`, 'utf8').trim();

describe('IPv6 router advertisements from a container', { skip }, () => {
  let box: NetworkSandbox;
  const tag = `${process.pid % 100000}`;
  const nsA = `berth-ra-a${tag}`;
  const nsB = `berth-ra-b${tag}`;
  before(() => {
    box = networkSandbox();
  });
  after(async () => {
    for (const ns of [nsA, nsB]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    await box.cleanup();
  });

  test('control: the forged RA gives an address to a link with the kernel\'s defaults', async () => {
    // Two namespaces of our own joined by a veth: nothing on the host is touched.
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    ip('link', 'add', `rta${tag}`, 'netns', nsA, 'type', 'veth', 'peer', 'name', `rtb${tag}`, 'netns', nsB);
    ip('-n', nsA, 'link', 'set', `rta${tag}`, 'up');
    ip('-n', nsB, 'link', 'set', `rtb${tag}`, 'up');
    // The receiver handles RAs once IPv6 is configured on it: its link-local address shows that.
    assert.ok(await eventually(() => /inet6 fe80::/.test(ip('-n', nsB, '-6', '-o', 'addr', 'show', 'dev', `rtb${tag}`)), 5000));
    const sent = spawnSync('ip', ['netns', 'exec', nsA, `${rawToolDir()}/rawnet`, 'ra', `rta${tag}`, '2001:db8:70::'], { encoding: 'utf8' });
    assert.equal(sent.status, 0, sent.stdout + sent.stderr);
    const got = await eventually(() => /inet6 2001:db8:70:0:/.test(ip('-n', nsB, '-6', '-o', 'addr', 'show', 'dev', `rtb${tag}`)), 3000);
    assert.ok(got, 'a default link configures an address from the RA: the forged RA is valid');
  });

  test('a container\'s RA configures nothing on the host\'s bridge, its veth, or a neighbour', async () => {
    const net = await box.svc.create({ name: 'ra', subnet: testSubnet(70) });
    const bridge = bridgeNameFor(net.id);
    const ac = new AbortController();
    // The neighbour also listens (NET_RAW for that only), to prove the RAs crossed the bridge,
    // which delivers them to the host's bridge device as it floods them to its ports.
    const victim = sh('/t/rawnet sniff eth0 10000 /tmp/ready > /tmp/seen; exec sleep 60', withTool({ network: net, hostname: 'victim', capAdd: ['NET_RAW'], signal: ac.signal })).catch((e: unknown) => e);
    try {
      const endpoint = await eventually(async () => (await box.svc.store.readEndpoints()).endpoints.find((e) => e.hostname === 'victim' && e.pid), 10_000);
      assert.ok(endpoint && endpoint.pid, 'the victim runs');
      const inRoot = (path: string) => () => { try { return readFileSync(`/proc/${endpoint.pid!.pid}/root${path}`, 'utf8'); } catch { return ''; } };
      assert.ok(existsSync(`/proc/${endpoint.pid.pid}`) && (await eventually(() => existsSync(`/proc/${endpoint.pid!.pid}/root/tmp/ready`), 10_000)), 'the neighbour listens');

      const attack = await sh('/t/rawnet ra eth0 2001:db8:71::', withTool({ network: net, capAdd: ['NET_RAW'] }));
      assert.equal(attack.exitCode, 0, attack.stdout + attack.stderr);
      assert.match(attack.stdout, /sent 3 router advertisements/);
      assert.match(await eventually(inRoot('/tmp/seen'), 12_000), /^seen [1-9]/, 'the RAs reached the neighbour through the bridge');
      // Receivers handle an RA as it arrives (the control shows it lands at once); a margin.
      await sleep(500);

      assert.doesNotMatch(ip('-6', '-o', 'addr', 'show', 'dev', bridge), /2001:db8:71:/, 'the bridge took an address from the RA');
      assert.equal(ip('-6', 'route', 'show', '2001:db8:71::/64'), '', 'the host routes the advertised prefix');
      assert.doesNotMatch(ip('-6', '-o', 'addr', 'show'), /2001:db8:71:/, 'a host link took an address from the RA');
      const victimNet = `--net=/proc/${endpoint.pid!.pid}/ns/net`;
      const inVictim = (...cmd: string[]) => execFileSync('nsenter', [victimNet, ...cmd], { encoding: 'utf8' });
      assert.doesNotMatch(inVictim('ip', '-6', '-o', 'addr', 'show'), /2001:db8:71:/, 'the neighbour took an address from the RA');

      // The line of defence itself, on every link the attack reaches.
      for (const link of [bridge, endpoint.hostIfname]) {
        assert.equal(sysctl(link, 'accept_ra'), '0', `${link} accept_ra`);
        assert.equal(sysctl(link, 'disable_ipv6'), '1', `${link} disable_ipv6`);
      }
      assert.equal(inVictim('cat', '/proc/sys/net/ipv6/conf/eth0/accept_ra').trim(), '0', 'the neighbour\'s eth0 accept_ra');
      assert.equal(inVictim('cat', '/proc/sys/net/ipv6/conf/eth0/disable_ipv6').trim(), '1', 'the neighbour\'s eth0 disable_ipv6');
      assert.match(inVictim('ip', '-6', '-o', 'addr', 'show', 'dev', 'lo'), /inet6 ::1\/128/, 'loopback keeps ::1');
    } finally {
      ac.abort();
      assert.ok((await victim) instanceof AbortError, 'the victim ended by itself');
    }
  });
});
