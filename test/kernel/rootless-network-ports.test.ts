/**
 * Published ports of rootless containers on user networks (issue 15), as a real unprivileged
 * user (test/helpers/rootless-user.ts) running rootless-network-ports-child.ts: an httpd on a
 * user network answers on its published 127.0.0.1 port (spawn, run, rt.containers with
 * getMappedPort/port()/inspect/waitForHttp) and by name from a neighbour; 4 MiB echoed whole
 * through a half-closed connection; UDP too; a taken port
 * is a ConflictError, a non-loopback hostIp and an internal network are refused; the port is
 * free and nothing forwards after the container ends (and a later holder of its address is not
 * reached through it) and after the owner's SIGKILL.
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
import { bindable } from '../helpers/loopback.js';
import { ok, type Case } from '../helpers/case-report.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-network-ports-child.ts');

const skip = rootlessNetworkSkipReason({ nft: true, python3: 'the UDP echo server' });

describe('rootless user networks: published ports', { skip }, () => {
  let user: RootlessUser;
  before(() => {
    user = RootlessUser.create({ prefix: 'berth-rp', openDevices: [TUN_DEVICE] });
  });
  after(() => user?.remove());

  async function runCase(name: string): Promise<any> {
    const r0 = await user.runNode(CHILD, [name], { guardMs: 300_000 });
    const line = r0.stdout.trim().split('\n').pop()!;
    assert.ok(line.startsWith('{'), `no report (exit ${r0.code}): ${r0.stderr}`);
    return { ...ok(JSON.parse(line) as Case), exitCode: r0.code };
  }

  it('spawn() and run(): the published port answers, a neighbour reaches it by name, taken ports and bad options are refused, nothing is left after the end', async () => {
    const x = await runCase('spawned');
    assert.equal(x.published.body, 'hello-from-web\n', `published port: ${JSON.stringify(x.published)}`);
    assert.equal(x.byName.stdout, 'hello-from-web\n', `by name: ${JSON.stringify(x.byName)}`);
    assert.equal(x.during.length, 1, 'one forwarder for the publishing container');
    assert.equal(x.taken.name, 'ConflictError', JSON.stringify(x.taken));
    assert.match(x.taken.message, new RegExp(`127\\.0\\.0\\.1:${x.port}/tcp`));
    assert.equal(x.heldByHost.name, 'ConflictError', JSON.stringify(x.heldByHost));
    assert.equal(x.everywhere.name, 'ValidationError', JSON.stringify(x.everywhere));
    assert.match(x.everywhere.message, /127\.0\.0\.0\/8/);
    assert.equal(x.internal.name, 'ValidationError', JSON.stringify(x.internal));
    assert.match(x.internal.message, /internal/);
    assert.equal(x.afterEnd.get.error, 'ECONNREFUSED', `the port still answered after the container ended: ${JSON.stringify(x.afterEnd.get)}`);
    assert.equal(x.afterEnd.bindable, true, 'the host port is still held after the container ended');
    assert.deepEqual(x.afterEnd.forwarders, []);
    assert.equal(x.squatterUp, 'hello-from-web\n', 'the later holder of the address did not start');
    assert.equal(x.throughOld.error, 'ECONNREFUSED', `the old host port led to the address's next holder: ${JSON.stringify(x.throughOld)}`);
    assert.equal(x.duringRun.body, 'hello-from-web\n', `run(): ${JSON.stringify(x.duringRun)} (exit ${x.ran})`);
    assert.equal(x.ran, 0, 'the run did not see its request');
    assert.deepEqual(x.afterRun, { bindable: true, forwarders: [] });
    assert.deepEqual(x.stream, { same: true, bytes: 4 << 20 }, '4 MiB did not come back whole through the published port');
    assert.equal(x.udp, 'PING', 'the UDP echo did not answer through the published port');
    assert.deepEqual(x.forwardersAfter, []);
    assert.equal(x.exitCode, 0, 'the program did not exit after rt.close()');
  });

  it("rt.containers (lifetime 'process'): getMappedPort, port(), inspect and waitForHttp report the binding; free after stop()", async () => {
    const x = await runCase('containers');
    assert.ok(Number.isInteger(x.mapped) && x.mapped > 0, JSON.stringify(x));
    assert.equal(x.host, '127.0.0.1');
    assert.deepEqual(x.ports['8080/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(x.mapped) }]);
    assert.deepEqual(x.bindings, [{ hostIp: '127.0.0.1', hostPort: x.mapped }]);
    assert.match(x.ip ?? '', /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(x.waited, 'hello-from-web\n');
    assert.equal(x.published.body, 'hello-from-web\n');
    assert.equal(x.afterStop.get.error, 'ECONNREFUSED', JSON.stringify(x.afterStop));
    assert.equal(x.afterStop.bindable, true);
    assert.deepEqual(x.afterStop.forwarders, []);
    assert.equal(x.afterStop.ports['8080/tcp'], undefined, 'a stopped container still reports a binding');
    assert.equal(x.exitCode, 0, 'the program did not exit after rt.close()');
  });

  it("the owner killed by SIGKILL takes the forwarder along; the port is free again", async () => {
    const owner = await startOwner(user, CHILD, ['owned']);
    const r = JSON.parse(owner.line) as Case;
    assert.ok(r.ok, JSON.stringify(r.error));
    assert.equal(r.result.published.body, 'hello-from-web\n', JSON.stringify(r.result.published));
    assert.equal(r.result.forwarders.length, 1);
    assert.equal(await bindable(r.result.port), false, 'the published port is not held while the owner lives');
    await owner.kill();
    // Zombies count too: nothing of the user may be left in /proc.
    assert.deepEqual(await leftAfter(user, 10_000, present), [], 'a process of the user outlived its owner');
    assert.equal(await bindable(r.result.port), true, 'the published port is still held after the owner died');
  });
});
