/**
 * Rootless user networks (issue 15): `rt.networks.create()` and containers on them, as a real
 * unprivileged user (test/helpers/rootless-user.ts) running rootless-networks-child.ts. Two
 * containers on one network reach each other by address and by name; a container on another
 * network reaches neither (fails if networks shared one bridge, or without the forward rules);
 * an internal network has no way out; the host's loopback only with `hostLoopback`; a network
 * in use is not removed; nothing is left after `rt.close()` or after the owner's SIGKILL.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TUN_DEVICE } from '../../lib/network/usermode-stack.js';
import { RootlessUser } from '../helpers/rootless-user.js';
import { rootlessNetworkSkipReason } from '../helpers/rootless-network.js';
import { leftAfter, present } from '../helpers/leftovers.js';
import { startOwner } from '../helpers/rootless-owner.js';
import { lastCase, type Case } from '../helpers/case-report.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-networks-child.ts');

const skip = rootlessNetworkSkipReason({ nft: true, python3: 'the containers fetch through glibc' });

describe('rootless user networks (rt.networks.create)', { skip }, () => {
  let user: RootlessUser;
  before(() => {
    user = RootlessUser.create({ prefix: 'berth-rn', openDevices: [TUN_DEVICE] });
  });
  after(() => user?.remove());

  it('two containers reach each other by address and name; other networks, internal ones and the host loopback stay closed; nothing left after close', async () => {
    const r0 = await user.runNode(CHILD, ['shared'], { guardMs: 300_000 });
    assert.equal(r0.code, 0, r0.stderr);
    const r = lastCase(r0.stdout);
    assert.ok(r.ok, JSON.stringify(r.error));
    const x = r.result;
    assert.equal(x.byName.stdout, 'hello-from-web\n', `by name: ${JSON.stringify(x.byName)}`);
    assert.equal(x.byIp.stdout, 'hello-from-web\n', `by address: ${JSON.stringify(x.byIp)}`);
    assert.equal(x.during.helpers.length, 1, 'one namespace helper per process');
    assert.equal(x.during.stacks.length, 1, 'one stack for the namespace');
    assert.notEqual(x.otherByIp.exitCode, 0, `a container on another network reached ${x.webIp}: ${x.otherByIp.stdout}`);
    assert.notEqual(x.otherByName.exitCode, 0, `a container on another network resolved and reached "web": ${x.otherByName.stdout}`);
    assert.equal(x.removeInUse.name, 'ConflictError', JSON.stringify(x.removeInUse));
    assert.match(x.removeInUse.message, /active endpoints/);
    assert.equal(x.withLoopback.stdout, 'hello-from-the-host-loopback', `hostLoopback: ${JSON.stringify(x.withLoopback)}`);
    assert.ok(x.quiet, 'the victim did not start');
    assert.notEqual(x.spoofed.exitCode, 0, `a neighbour sending from the granted address ${x.victimIp} reached the host's loopback: ${x.spoofed.stdout}`);
    assert.match(x.spoofed.stdout, /^error:/, JSON.stringify(x.spoofed));
    assert.notEqual(x.without.exitCode, 0, `the stack's gateway ${x.gateway} led to the host's loopback without hostLoopback`);
    assert.notEqual(x.internal.exitCode, 0, `an internal network reached out: ${x.internal.stdout}`);
    assert.doesNotMatch(x.internal.stdout, /^default/m, 'an internal network has a default route');
    assert.match(x.internalAttack.stdout, /^default via/m, `the attack could not add its route: ${JSON.stringify(x.internalAttack)}`);
    assert.notEqual(x.internalAttack.exitCode, 0, `a container of an internal network got out by adding a default route: ${x.internalAttack.stdout}`);
    assert.deepEqual(x.after, { helpers: [], resolvers: [], stacks: [] }, 'a network process outlived rt.close()');
    assert.deepEqual(x.scratchAfter, []);
    assert.deepEqual(x.networksAfter, []);
  });

  it("rt.containers (lifetime 'process') resolve each other by container name; disconnect removes the veth at once; connecting a running one and a detached one are refused with the reason", async () => {
    const r0 = await user.runNode(CHILD, ['containers'], { guardMs: 300_000 });
    assert.equal(r0.code, 0, r0.stderr);
    const r = lastCase(r0.stdout);
    assert.ok(r.ok, JSON.stringify(r.error));
    assert.equal(r.result.client.stdout, 'hello-from-web\n', JSON.stringify(r.result.client));
    assert.match(r.result.ip ?? '', /^\d+\.\d+\.\d+\.\d+$/, 'inspect shows no address on the network');
    assert.equal(r.result.detached.name, 'UnsupportedError', JSON.stringify(r.result.detached));
    assert.match(r.result.detached.message, /lifetime: 'detached'/);
    assert.equal(r.result.connectRunning.name, 'UnsupportedError', JSON.stringify(r.result.connectRunning));
    assert.match(r.result.both.stdout, /eth0\s+inet \d/, JSON.stringify(r.result.both));
    assert.match(r.result.both.stdout, /eth1\s+inet \d/, JSON.stringify(r.result.both));
    assert.equal((r.result.both.stdout.match(/^default/gm) ?? []).length, 1, 'one default route, on the first network');
    assert.equal(r.result.again, 0);
    assert.equal(r.result.helpers.length, 1, 'launches at once started more than one namespace helper');
    assert.notEqual(r.result.afterDisconnect.exitCode, 0, `the disconnected container still answered at ${r.result.ip}`);
  });

  it('the owner killed by SIGKILL takes its namespace helper, resolver, stack and containers along', async () => {
    const owner = await startOwner(user, CHILD, ['owned']);
    const r = JSON.parse(owner.line) as Case;
    assert.ok(r.ok, JSON.stringify(r.error));
    assert.equal(r.result.r.stdout, 'resolved\n', JSON.stringify(r.result.r));
    assert.equal(r.result.during.helpers.length, 1);
    assert.equal(r.result.during.resolvers.length, 1);
    await owner.kill();
    // Zombies count too: nothing of the user may be left in /proc.
    assert.deepEqual(await leftAfter(user, 10_000, present), [], 'a process of the user outlived its owner');
  });
});
