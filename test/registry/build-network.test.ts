/**
 * RUN's network: none unless asked; `network: 'bridge'` (or `'host'`) for the whole build, and
 * `RUN --network=none|host|default` per step. Creates a bridge: run under
 * `flock /tmp/berth-net-tests.lock`. No traffic leaves the host: the steps only list interfaces.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Runtime } from '../../lib/runtime.js';
import { registryToolsMissing, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { buildBaseImage, BASE_TAG } from '../helpers/build-base-image.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { removeRootNetworkObjects } from '../helpers/network-fixture.js';

const skip = registryToolsMissing() ?? kernelSkipReason();
let registry: TestRegistry;
let work: { path: string; remove: () => void };
let base: string;
let rt: Runtime;

before(async () => {
  if (skip) return;
  work = tempDir('berth-build-net-');
  registry = await startRegistry();
  await skopeoPush(await buildBaseImage(work.path), BASE_TAG, registry, 'fixtures/base:1');
  base = `${registry.host}/fixtures/base:1`;
  rt = await Runtime.open({ root: join(work.path, 'state') });
});

after(async () => {
  // The default bridge network outlives a build, as Docker's does; the test removes its kernel objects.
  if (rt) {
    for (const n of await rt.networks.list().catch(() => [])) await n.remove().catch(() => {});
    await removeRootNetworkObjects(rt.root);
  }
  await rt?.close();
  await registry?.stop();
  work?.remove();
});

async function interfaces(network: string | undefined, flag = ''): Promise<string> {
  const df = `FROM ${base}\nRUN ${flag} ls /sys/class/net > /ifaces\n`;
  const img = await rt.images.build({ context: work.path, dockerfile: { content: df }, noCache: true, ...(network ? { network } : {}) });
  return (await rt.run(img.id, ['cat', '/ifaces'])).stdout;
}

test('RUN has only loopback by default; network: bridge gives it an interface; --network=none overrides', { skip }, async () => {
  assert.equal(await interfaces(undefined), 'lo\n');
  assert.match(await interfaces('bridge'), /eth0/);
  assert.equal(await interfaces('bridge', '--network=none'), 'lo\n');
  assert.match(await interfaces(undefined, '--network=host'), /lo/);
});
