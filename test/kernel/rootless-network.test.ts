/**
 * Rootless networking as a real unprivileged user (issue 15): a user namespace + network
 * namespace held by `berth-helper netns-hold`, served by pasta and by slirp4netns. Outbound to a
 * loopback HTTP server of the test (opt-in `hostLoopback`), a published port answered on
 * 127.0.0.1, the namespace's own loopback not leading to the host's, no user-mode helper left
 * after stop nor after the owner is SIGKILLed, and a typed error naming the package when no
 * stack is installed. The user and everything it runs are removed afterwards.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TUN_DEVICE } from '../../lib/network/usermode-stack.js';
import { RootlessUser } from '../helpers/rootless-user.js';
import { rootlessNetworkSkipReason } from '../helpers/rootless-network.js';
import { describeProcess, running, untilGone } from '../helpers/leftovers.js';
import { startOwner } from '../helpers/rootless-owner.js';
import { scratchDirs } from '../helpers/usermode-leftovers.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-network-child.ts');

function skipReason(): string | false {
  const base = rootlessNetworkSkipReason({ slirp4netns: true });
  if (base) return base;
  // The child runs these by absolute path.
  for (const tool of ['/usr/bin/nsenter', '/usr/bin/python3']) if (!existsSync(tool)) return `${tool} is missing`;
  return false;
}
const skip = skipReason();

describe('rootless user-mode networking', { skip }, () => {
  let user: RootlessUser;
  before(() => {
    user = RootlessUser.create({ prefix: 'berth-rn', openDevices: [TUN_DEVICE] });
  });
  after(() => user?.remove());

  async function child(args: string[]): Promise<Record<string, any>> {
    const r = await user.runNode(CHILD, args);
    assert.equal(r.code, 0, `child ${args.join(' ')} failed: ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]!) as Record<string, any>;
  }

  for (const stack of ['pasta', 'slirp4netns'] as const) {
    it(`${stack}: a published port answers on 127.0.0.1, the host's loopback is reachable when asked, the stack and holder end`, async () => {
      const r = await child(['serve', stack]);
      assert.equal(r['stack'], stack);
      assert.equal(r['published'], 'hello-from-the-namespace');
      assert.equal(r['port'].hostIp, '127.0.0.1');
      assert.notEqual(r['port'].host, 0);
      assert.equal(r['outbound'], 'hello-from-the-host-loopback', `outbound to the test's loopback server through ${r['hostAddress']}`);
      assert.equal(r['ownLoopback'], 'error:ECONNREFUSED', "the namespace's 127.0.0.1 reached the host's loopback server");
      assert.deepEqual(r['alive'], { stack: false, holder: false });
      const left = user.processes().filter(running).map(describeProcess);
      assert.deepEqual(left, [], 'a process of the test user outlived its owner');
    });
  }

  it('pasta, slirp4netns and their holders die with an owner killed by SIGKILL', async () => {
    const owner = await startOwner(user, CHILD, ['owned']);
    const pids = JSON.parse(owner.line) as number[];
    assert.equal(pids.filter(running).length, 4);
    await owner.kill();
    const left = (await untilGone(pids)).map(describeProcess);
    assert.deepEqual(left, [], 'left running after the owner died');
    // Nothing could remove slirp4netns's API socket directory: the next start sweeps it (below).
    assert.notDeepEqual(scratchDirs(user.runtimeDir), [], 'expected the killed owner to leave its slirp4netns scratch dir');
  });

  it("slirp4netns without hostLoopback: the gateway does not lead to the host's loopback; no stack installed: an UnsupportedError naming the package; a dead owner's scratch dirs swept", async () => {
    const r = await child(['no-host-loopback', 'slirp4netns']);
    assert.equal(r['hostAddress'], null);
    // slirp4netns answers "network unreachable" for its disabled host alias; the body would mean the attack worked.
    assert.match(r['viaGateway'], /^error:(ECONNREFUSED|ENETUNREACH|EHOSTUNREACH)$/, `the container reached a loopback-only server of the host: ${r['viaGateway']}`);
    const missing = r['missing'].error;
    assert.equal(missing.name, 'UnsupportedError');
    assert.equal(missing.code, 'ERR_UNSUPPORTED');
    assert.match(missing.message, /apt-get install passt/);
    // The SIGKILLed owner above could not remove its stacks' scratch directories; this start swept them.
    assert.deepEqual(scratchDirs(user.runtimeDir), [], 'scratch directories left in the runtime dir');
  });
});
