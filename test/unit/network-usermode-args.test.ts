/**
 * The user-mode stacks' command lines: published ports, and the flags that keep a rootless
 * container away from the host's loopback unless asked.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pastaArgs, slirpAddHostFwd, slirpArgs, SLIRP_ADDRESSES } from '../../lib/network/usermode-args.js';
import type { PublishedPort } from '../../lib/network/types.js';

const web: PublishedPort = { container: 80, host: 18080, hostIp: '127.0.0.1', protocol: 'tcp' };
const dns: PublishedPort = { container: 53, host: 15353, hostIp: '0.0.0.0', protocol: 'udp' };

/** The values that follow each occurrence of `flag`. */
function values(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

describe('pastaArgs', () => {
  it('publishes each port with its address, tcp and udp apart, and targets the pid last', () => {
    const args = pastaArgs({ pid: 4242, ports: [web, dns], pidFile: '/tmp/x/pid' });
    assert.deepEqual(values(args, '--tcp-ports'), ['127.0.0.1/18080:80']);
    assert.deepEqual(values(args, '--udp-ports'), ['15353:53']);
    assert.equal(args[args.length - 1], '4242');
    assert.deepEqual(values(args, '--pid'), ['/tmp/x/pid']);
    assert.ok(args.includes('--foreground') && args.includes('--config-net'));
  });

  it("without ports publishes none (pasta's default 'auto' would publish whatever the container binds)", () => {
    const args = pastaArgs({ pid: 1, ports: [], pidFile: 'p' });
    assert.deepEqual(values(args, '--tcp-ports'), ['none']);
    assert.deepEqual(values(args, '--udp-ports'), ['none']);
  });

  it("never forwards the host's loopback ports into the namespace", () => {
    for (const hostLoopback of [false, true]) {
      const args = pastaArgs({ pid: 1, ports: [web], pidFile: 'p', hostLoopback });
      assert.deepEqual(values(args, '--tcp-ns'), ['none']);
      assert.deepEqual(values(args, '--udp-ns'), ['none']);
    }
  });

  it("maps the gateway to the host's loopback only when asked", () => {
    assert.ok(pastaArgs({ pid: 1, ports: [], pidFile: 'p' }).includes('--no-map-gw'));
    assert.ok(!pastaArgs({ pid: 1, ports: [], pidFile: 'p', hostLoopback: true }).includes('--no-map-gw'));
  });
});

describe('slirpArgs', () => {
  it("disables the host loopback unless asked, and names the interface eth0", () => {
    const args = slirpArgs({ pid: 7, apiSocket: '/tmp/s' });
    assert.ok(args.includes('--disable-host-loopback'));
    assert.ok(!slirpArgs({ pid: 7, apiSocket: '/tmp/s', hostLoopback: true }).includes('--disable-host-loopback'));
    assert.deepEqual(args.slice(-2), ['7', 'eth0']);
    assert.ok(args.includes('--ready-fd=3') && args.includes('--exit-fd=4'));
  });

  it('asks the API for one forward per port, to the configured guest address', () => {
    const req = JSON.parse(slirpAddHostFwd(dns)) as { execute: string; arguments: Record<string, unknown> };
    assert.equal(req.execute, 'add_hostfwd');
    assert.deepEqual(req.arguments, { proto: 'udp', host_addr: '0.0.0.0', host_port: 15353, guest_addr: SLIRP_ADDRESSES.address, guest_port: 53 });
  });
});
