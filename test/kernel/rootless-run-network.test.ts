/**
 * Per-container user-mode networking without root (issue 15): `run()`, `spawn()` and
 * `rt.containers` with `network: 'bridge' | 'pasta' | 'slirp4netns'` or `ports`, as a real
 * unprivileged user (test/helpers/rootless-user.ts) running rootless-run-network-child.ts.
 * The stack is up before the container's first instruction, a published port answers on
 * 127.0.0.1, the host's loopback is reached only with `hostLoopback`, and no stack process or
 * scratch dir outlives the container (nor its owner killed by SIGKILL).
 */
import assert from 'node:assert/strict';
import { chmodSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TUN_DEVICE } from '../../lib/network/usermode-stack.js';
import { RootlessUser } from '../helpers/rootless-user.js';
import { rootlessNetworkSkipReason } from '../helpers/rootless-network.js';
import { running, untilGone } from '../helpers/leftovers.js';
import { startOwner } from '../helpers/rootless-owner.js';
import { runUserCase, type Case } from '../helpers/case-report.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-run-network-child.ts');

const skip = rootlessNetworkSkipReason({ slirp4netns: true });

describe('rootless run() and containers with a user-mode network', { skip }, () => {
  let user: RootlessUser;
  before(() => {
    user = RootlessUser.create({ prefix: 'berth-rr', openDevices: [TUN_DEVICE] });
  });
  after(() => user?.remove());

  const child = (args: string[]): Promise<Case> => runUserCase(user, CHILD, args);

  for (const stack of ['pasta', 'slirp4netns'] as const) {
    it(`${stack}: the first instruction already has eth0, a default route and the stack's DNS forwarder`, async () => {
      const r = await child(['first-instruction', stack]);
      assert.ok(r.ok, JSON.stringify(r.error));
      const out: string = r.result.r.stdout;
      assert.equal(r.result.r.exitCode, 0, r.result.r.stderr);
      assert.match(out, /eth0\s+inet \d+\.\d+\.\d+\.\d+\//, 'no IPv4 address on eth0 at the first instruction');
      assert.match(out, /^default via \d+\.\d+\.\d+\.\d+/m, 'no default route at the first instruction');
      assert.match(out, new RegExp(`^nameserver ${stack === 'pasta' ? '169\\.254\\.1\\.1' : '10\\.0\\.2\\.3'}$`, 'm'));
      if (stack === 'slirp4netns') assert.match(out, /inet 10\.0\.2\.100\//);
      assert.doesNotMatch(out, /host\.containers\.internal/, 'hostLoopback is off by default');
      assert.deepEqual(r.result.stacksAfter, [], 'a stack outlived its container');
      assert.deepEqual(r.result.scratchAfter, [], 'a stack scratch dir outlived its container');
    });

    it(`${stack}: a server in the container answers on a published 127.0.0.1 port; stopped with the container`, async () => {
      const r = await child(['serve', stack]);
      assert.ok(r.ok, JSON.stringify(r.error));
      assert.equal(r.result.answer, 'hello-from-the-container\n');
      assert.equal(r.result.stacksWhile.length, 1, 'one stack per container');
      assert.deepEqual(r.result.stacksAfter, []);
      assert.deepEqual(r.result.scratchAfter, []);
      assert.match(r.result.after, /^error:ECONNREFUSED/, 'the published port still answered after the container ended');
    });

    it(`${stack}: the test's loopback server is reached only with hostLoopback`, async () => {
      const r = await child(['outbound', stack]);
      assert.ok(r.ok, JSON.stringify(r.error));
      assert.equal(r.result.withLoopback.exitCode, 0, r.result.withLoopback.stderr);
      assert.equal(r.result.withLoopback.stdout, 'hello-from-the-host-loopback');
      assert.match(r.result.without.stdout, /^0\n/, 'host.containers.internal is named without hostLoopback');
      assert.notEqual(r.result.without.exitCode, 0, `the gateway ${r.result.gateway} led to the host's loopback without hostLoopback`);
      assert.notEqual(r.result.ownLoopback.exitCode, 0, "the container's own 127.0.0.1 led to the host's loopback");
    });
  }

  it('a taken host port is a ConflictError before the container starts', async () => {
    const r = await child(['conflict', 'bridge']);
    assert.equal(r.ok, false, 'the container started on a taken port');
    assert.equal(r.error!.name, 'ConflictError');
    assert.match(r.error!.message, /127\.0\.0\.1:\d+\/tcp/);
  });

  it('refusals name what is wrong: a non-loopback host address, an unknown user network', async () => {
    const wide = await child(['wide-port', 'bridge']);
    assert.equal(wide.ok, false);
    assert.equal(wide.error!.name, 'ValidationError');
    assert.match(wide.error!.message, /loopback only/);
    const named = await child(['user-network']);
    assert.equal(named.ok, false);
    // User networks work without root now (rootless-networks.test.ts): an unknown one is not found.
    assert.equal(named.error!.name, 'NotFoundError');
    assert.match(named.error!.message, /network backend not found/);
  });

  it('rt.containers (lifetime process): the published port answers, inspect shows it, stop ends the stack', async () => {
    const r = await child(['container', 'bridge']);
    assert.ok(r.ok, JSON.stringify(r.error));
    assert.equal(r.result.answer, 'hello-from-the-container\n');
    const published = r.result.ports['8080/tcp'];
    assert.ok(Array.isArray(published) && published[0].HostIp === '127.0.0.1', `inspect Ports: ${JSON.stringify(r.result.ports)}`);
    assert.equal(r.result.stacksWhile.length, 1);
    assert.deepEqual(r.result.stacksAfterStop, []);
    assert.deepEqual(r.result.scratchAfter, []);
  });

  for (const stack of ['pasta', 'slirp4netns'] as const) {
    it(`${stack}: a detached container's stack is its monitor's, outlives Node, restarts fresh with PID 1, and stops with the container`, async () => {
      const r = await child(['detached', stack]);
      assert.ok(r.ok, JSON.stringify(r.error));
      assert.equal(r.result.answer, 'hello-from-the-container\n');
      assert.equal(r.result.ports['8080/tcp']?.[0]?.HostIp, '127.0.0.1', JSON.stringify(r.result.ports));
      assert.equal(r.result.stacksFirst.length, 1);
      assert.ok(r.result.restartCount >= 1, 'PID 1 was not restarted');
      assert.equal(r.result.stacksAfterRestart.length, 1, 'not exactly one stack after the restart');
      assert.notEqual(r.result.stacksAfterRestart[0], r.result.stacksFirst[0], 'the restart kept the old stack');
      assert.equal(r.result.answerAfterRestart, 'hello-from-the-container\n');
      // The creating Node process has exited: the monitor's stack still serves.
      const c = await child(['detached-check', stack, String(r.result.host)]);
      assert.ok(c.ok, JSON.stringify(c.error));
      assert.equal(c.result.answer, 'hello-from-the-container\n');
      assert.equal(c.result.stacksWhile.length, 1);
      assert.deepEqual(c.result.stacksAfterStop, [], 'the stack outlived the stopped container');
      assert.deepEqual(c.result.scratchAfter, [], 'the stack scratch dir outlived the container');
      assert.match(c.result.after, /^error:ECONNREFUSED/);
      const left = user.processes().filter(running);
      assert.deepEqual(left, [], 'a process of the test user outlived the removed container');
    });
  }

  it('the stack dies with its owner killed by SIGKILL', async () => {
    const owner = await startOwner(user, CHILD, ['owned', 'pasta']);
    const r = JSON.parse(owner.line) as Case;
    assert.equal(r.result.answer, 'hello-from-the-container\n');
    assert.equal(r.result.stacks.length, 1);
    await owner.kill();
    assert.deepEqual(await untilGone([...r.result.stacks, r.result.container]), [], 'the stack or the container outlived its owner');
  });

  it('a closed /dev/net/tun is refused with the fix', async () => {
    const mode = statSync(TUN_DEVICE).mode & 0o777;
    chmodSync(TUN_DEVICE, 0o600);
    try {
      const r = await child(['plain', 'bridge']);
      assert.equal(r.ok, false);
      assert.equal(r.error!.name, 'UnsupportedError');
      assert.match(r.error!.message, /chmod 0666 \/dev\/net\/tun/);
    } finally {
      chmodSync(TUN_DEVICE, mode);
    }
  });
});
