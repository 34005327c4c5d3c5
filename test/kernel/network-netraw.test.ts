/**
 * CAP_NET_RAW is not a default capability: a default container cannot open packet or raw IP
 * sockets (with them it forges ARP replies and router advertisements to its neighbours and the
 * host), yet ICMP echo still works through unprivileged datagram sockets, which
 * `net.ipv4.ping_group_range` allows in the container's own network namespace only.
 * `capAdd: ['NET_RAW']` restores raw sockets. Traffic goes to 127.0.0.1 and to the gateway
 * of a network these tests create.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { RunOptions } from '../../lib/index.js';
import { networkSandbox, networkSkipReason, sh, testSubnet, type NetworkSandbox } from '../helpers/network-fixture.js';
import { rawToolDir, rawToolSkipReason } from '../helpers/network-raw-tool.js';

const skip = networkSkipReason() || rawToolSkipReason();

const withTool = (options: RunOptions = {}): RunOptions => ({ ...options, mounts: [{ type: 'bind', source: rawToolDir(), target: '/t', readonly: true }] });
const hostRange = () => readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8');

/** What a container can open, whether it pings, and the ping_group_range it sees. */
async function probe(options: RunOptions, target = '127.0.0.1') {
  const r = await sh(`/t/rawnet sockets; /t/rawnet ping ${target}; echo ping=$?; cat /proc/sys/net/ipv4/ping_group_range`, withTool(options));
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout;
}

describe('CAP_NET_RAW is off by default; ping still works', { skip }, () => {
  let box: NetworkSandbox;
  let hostBefore: string;
  before(() => {
    box = networkSandbox();
    hostBefore = hostRange();
  });
  after(async () => {
    await box.cleanup();
  });

  test('a default container can open neither a packet nor a raw IP socket, but pings 127.0.0.1', async () => {
    const out = await probe({});
    assert.match(out, /^packet=EPERM raw=EPERM icmp-dgram=ok$/m, 'raw sockets must be refused');
    assert.match(out, /^reply from 127\.0\.0\.1\nping=0$/m);
    assert.match(out, /^0\t2147483647$/m);
  });

  test('any user may ping (the range covers every group)', async () => {
    const out = await probe({ user: '1000:1000' });
    assert.match(out, /^packet=EPERM raw=EPERM icmp-dgram=ok$/m);
    assert.match(out, /^ping=0$/m);
  });

  test("capAdd ['NET_RAW'] restores raw sockets, and busybox's raw-socket ping", async () => {
    const out = await probe({ capAdd: ['NET_RAW'] });
    assert.match(out, /^packet=ok raw=ok icmp-dgram=ok$/m);
    const r = await sh('ping -c1 -W2 127.0.0.1 >/dev/null && echo busybox-ping-ok', { capAdd: ['NET_RAW'] });
    assert.match(r.stdout, /busybox-ping-ok/, r.stderr);
  });

  test('on a bridge network: no raw sockets, the gateway answers a datagram ping', async () => {
    const net = await box.svc.create({ name: 'netraw', subnet: testSubnet(72) });
    const out = await probe({ network: net }, '10.231.72.1');
    assert.match(out, /^packet=EPERM raw=EPERM icmp-dgram=ok$/m);
    assert.match(out, /^reply from 10\.231\.72\.1\nping=0$/m);
    assert.match(out, /^0\t2147483647$/m);
  });

  test('in a user namespace the range is the mapped groups, and ping works', async () => {
    const out = await probe({ userns: 'auto' });
    assert.match(out, /^packet=EPERM raw=EPERM icmp-dgram=ok$/m);
    assert.match(out, /^ping=0$/m);
    assert.match(out, /^0\t65535$/m);
  });

  test('the host\'s own ping_group_range is never touched, network "host" included', async () => {
    const r = await sh('cat /proc/sys/net/ipv4/ping_group_range', { network: 'host' });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, hostBefore, 'host networking sees the host value');
    assert.equal(hostRange(), hostBefore);
  });
});
