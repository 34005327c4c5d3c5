/**
 * A rootless launch's user-mode network plan (lib/network/usermode-attach.ts): which launches
 * get one, the stack chosen by name, the refusals, /etc files, and the command line a detached
 * container's monitor completes with PID 1's pid. No stack runs here (planning starts nothing).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { monitorArgs } from '../../lib/launch/detached.js';
import { pastaArgs } from '../../lib/network/usermode-args.js';
import { HOST_LOOPBACK_NAME, monitorStackPlan, planUserModeNetwork, wantsUserModeNetwork } from '../../lib/network/usermode-attach.js';
import { isBerthError } from '../../lib/errors.js';

// The tools are given (the refusal without them is a case below); the tun probe is the real
// one, which root passes whatever the device's mode.
const tools = { pasta: '/usr/bin/pasta', slirp4netns: '/usr/bin/slirp4netns' };

describe('wantsUserModeNetwork', () => {
  it('bridge-kind networks do; none, host and container: do not', () => {
    assert.equal(wantsUserModeNetwork({ network: 'bridge' }), true);
    assert.equal(wantsUserModeNetwork({ network: 'pasta' }), true);
    assert.equal(wantsUserModeNetwork({ network: 'none' }), false);
    assert.equal(wantsUserModeNetwork({ network: 'host' }), false);
    assert.equal(wantsUserModeNetwork({ network: 'container:web' }), false);
    assert.equal(wantsUserModeNetwork({}), false);
  });
});

describe('planUserModeNetwork', () => {
  it('picks the stack the network names, and the DNS forwarder of that stack', async () => {
    const pasta = await planUserModeNetwork({ launchId: 'a'.repeat(64), options: { network: 'bridge' }, tools });
    assert.equal(pasta.plan.stack, 'pasta');
    assert.match(pasta.files.resolvConf, /^nameserver 169\.254\.1\.1$/m);
    assert.equal(pasta.hostname, 'a'.repeat(12));
    const slirp = await planUserModeNetwork({ launchId: 'b'.repeat(64), options: { network: 'slirp4netns' }, tools });
    assert.equal(slirp.plan.stack, 'slirp4netns');
    assert.match(slirp.files.resolvConf, /^nameserver 10\.0\.2\.3$/m);
    assert.doesNotMatch(slirp.files.hosts, new RegExp(HOST_LOOPBACK_NAME));
    const loop = await planUserModeNetwork({ launchId: 'c'.repeat(64), options: { network: 'slirp4netns', hostLoopback: true }, tools });
    assert.match(loop.files.hosts, /^10\.0\.2\.2\thost\.containers\.internal$/m);
  });

  it('refuses without a stack (naming the package), user networks, and ports off the loopback', async () => {
    await assert.rejects(planUserModeNetwork({ launchId: 'x', options: { network: 'bridge' }, tools: { pasta: null, slirp4netns: null } }), (e: Error) => isBerthError(e) && e.name === 'UnsupportedError' && /apt-get install passt/.test(e.message));
    await assert.rejects(planUserModeNetwork({ launchId: 'x', options: { network: 'backend' }, tools }), (e: Error) => e.name === 'UnsupportedError' && /"backend"/.test(e.message));
    await assert.rejects(planUserModeNetwork({ launchId: 'x', options: { network: 'bridge', networks: [{ network: 'a', aliases: [] }] }, tools }), (e: Error) => e.name === 'UnsupportedError');
    await assert.rejects(planUserModeNetwork({ launchId: 'x', options: { network: 'bridge', ports: [{ container: 80, host: 0, hostIp: '0.0.0.0', protocol: 'tcp' }] }, tools }), (e: Error) => e.name === 'ValidationError' && /ports\[0\]\.hostIp/.test((e as Error & { option?: string }).option ?? e.message));
  });
});

describe('monitorStackPlan', () => {
  it("gives the monitor the stack's command line with {pid} for PID 1, and slirp4netns's port requests", () => {
    const ports = [{ container: 80, host: 18080, hostIp: '127.0.0.1', protocol: 'tcp' as const }];
    const pasta = monitorStackPlan({ stack: 'pasta', path: '/usr/bin/pasta', ports, hostLoopback: false }, 'f'.repeat(64));
    assert.equal(pasta.argv[0], '/usr/bin/pasta');
    assert.equal(pasta.argv.at(-1), '{pid}');
    assert.ok(pasta.argv.includes('--no-map-gw'));
    assert.ok(pasta.scratch.endsWith(`berth-usermode-c-${'f'.repeat(12)}`));
    assert.deepEqual(pasta.hostfwd, []);
    const slirp = monitorStackPlan({ stack: 'slirp4netns', path: '/usr/bin/slirp4netns', ports, hostLoopback: false }, 'e'.repeat(64));
    assert.ok(slirp.argv.includes('--disable-host-loopback'));
    assert.equal(slirp.hostfwd.length, 1);
    assert.equal(JSON.parse(slirp.hostfwd[0]!).arguments.host_port, 18080);
    const args = monitorArgs({ stateDir: '/s', cgroupPaths: [], userModeStack: slirp });
    assert.deepEqual(args.slice(args.indexOf('--net-stack'), args.indexOf('--net-stack') + 4), ['--net-stack', 'slirp4netns', '--net-scratch', slirp.scratch]);
    assert.equal(args.filter((a) => a === '--net-arg').length, slirp.argv.length);
  });

  it("pasta forwards DNS to the host's resolver at the address resolv.conf names", () => {
    const args = pastaArgs({ pid: 1, ports: [], pidFile: 'p' });
    assert.equal(args[args.indexOf('--dns-forward') + 1], '169.254.1.1');
  });
});
