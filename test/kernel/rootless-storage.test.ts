/**
 * Storage drivers without root (issue 15): a real unprivileged user (test/helpers/rootless-user.ts)
 * opens a runtime with `storageDriver: 'vfs'`, pulls the fixture image from the test's loopback
 * registry and runs from it, `run()` and a detached container with exec. The copy of the image
 * is made inside the containers' user namespace, so a file of id 33 is 33 inside and the
 * subordinate range's 33rd id on the host; the container's root is no overlay mount (the test
 * fails if the overlay driver was used: `/` would be `overlay` in mountinfo). `fuse-overlayfs`
 * is refused without root with a typed error naming why and the fix; the default stays
 * overlay. At the end nothing of the user is left: no process, no mount, no layer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';
import { registryToolsMissing, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { buildFixtureImage, FIXTURE_TAG } from '../helpers/fixture-image.js';

const skip = rootlessSkipReason() || registryToolsMissing() || false;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-storage-child.ts');

interface Case {
  name: string;
  ok: boolean;
  result?: any;
  error?: { name: string; code?: string; option?: string; message: string };
}

function ok(c: Case | undefined): any {
  assert.ok(c, 'case did not report');
  assert.equal(c.ok, true, JSON.stringify(c.error));
  return c.result;
}

function describeProcess(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
  } catch {
    return `${pid} (gone)`;
  }
}

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let ref: string;

before(async () => {
  if (skip) return;
  work = tempDir('berth-rlstorage-');
  registry = await startRegistry();
  const layout = await buildFixtureImage(work.path);
  ref = `${registry.host}/fixtures/busybox:1`;
  await skopeoPush(layout, FIXTURE_TAG, registry, 'fixtures/busybox:1');
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

describe('rootless storage drivers', { skip }, () => {
  let user: RootlessUser;
  let cases: Map<string, Case>;
  before(async () => {
    user = RootlessUser.create({ subids: true });
    const r = await user.runNode(CHILD, [ref, 'vfs', 'fuse-overlayfs', 'default'], { guardMs: 300_000 });
    assert.equal(r.code, 0, `rootless child failed: ${r.stderr}`);
    cases = new Map(r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Case).map((c) => [c.name, c]));
  });
  after(() => user?.remove());

  test('storageDriver "vfs": rt.info() reports it; run() from a pulled image has its owners and no overlay root', () => {
    const r = ok(cases.get('vfs'));
    assert.equal(r.driver, 'vfs');
    assert.equal(r.run.exitCode, 0, r.run.stderr);
    const [owner, rootFs] = (r.run.stdout as string).trim().split('\n');
    assert.equal(owner, '33:33');
    assert.ok(rootFs !== undefined && rootFs !== 'overlay' && rootFs !== '', `the root is ${rootFs}`);
  });

  test('storageDriver "vfs": a detached container from the image, exec as root and as 33, GraphDriver vfs with its copy in the state dir', () => {
    const { detached } = ok(cases.get('vfs'));
    assert.equal(detached.exec.exitCode, 0, detached.exec.stderr);
    const [owner, rootFs, byRoot] = (detached.exec.stdout as string).trim().split('\n');
    assert.equal(owner, '33:33');
    assert.notEqual(rootFs, 'overlay');
    // Made by root in the setgid directory of 33: the group is inherited.
    assert.equal(byRoot, '0:33');
    assert.equal(detached.asWww.exitCode, 0, detached.asWww.stderr);
    assert.equal(detached.asWww.stdout, '33:33\n');
    assert.equal(detached.graphDriver.Name, 'vfs');
    assert.ok(detached.graphDriver.Data.Dir.startsWith(join(user.home, '.local/share/berth/containers/')), detached.graphDriver.Data.Dir);
    assert.equal(detached.graphDriver.Data.UpperDir, undefined);
  });

  test('storageDriver "vfs": the run layer, the container and the image leave nothing in the store', () => {
    const { left } = ok(cases.get('vfs'));
    // `containers/names/` is the name index, not a container.
    assert.deepEqual({ ...left, containers: left.containers.filter((n: string) => /^[0-9a-f]{64}$/.test(n)) }, { layers: [], tmp: [], containers: [] });
  });

  test('storageDriver "fuse-overlayfs" without root is refused at open, naming the option, why and the fix', () => {
    const c = cases.get('fuse-overlayfs')!;
    assert.equal(c.ok, false, JSON.stringify(c.result));
    assert.equal(c.error!.code, 'ERR_UNSUPPORTED');
    assert.equal(c.error!.option, 'storageDriver');
    assert.match(c.error!.message, /fuse-overlayfs/);
    assert.match(c.error!.message, /fix: /);
  });

  test('the default without root is kernel overlay', () => {
    assert.equal(ok(cases.get('default')).driver, 'overlay');
  });

  test('nothing of the user is left: no process, no mount', () => {
    assert.deepEqual(user.processes().map(describeProcess), []);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(` ${user.home}`) || l.includes(` ${user.runtimeDir}`));
    assert.deepEqual(mounts, []);
  });
});
