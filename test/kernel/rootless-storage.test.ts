/**
 * Storage drivers without root (issue 15): a real unprivileged user (test/helpers/rootless-user.ts)
 * opens a runtime with `storageDriver: 'vfs'`, pulls the fixture image from the test's loopback
 * registry and runs from it, `run()` and a detached container with exec. The copy of the image
 * is made inside the containers' user namespace, so a file of id 33 is 33 inside and the
 * subordinate range's 33rd id on the host; the container's root is no overlay mount (the test
 * fails if the overlay driver was used: `/` would be `overlay` in mountinfo). With /dev/fuse
 * closed to the user (0600, which the test sets and puts back: rootless-fuse.test.ts covers it
 * open), `fuse-overlayfs` is refused with a typed error naming why and the fix; the default is
 * overlay, tried inside a user namespace, and vfs where overlay refuses the state directory's
 * filesystem (an overlay the test mounts) and fuse-overlayfs cannot open its device. At the end nothing of the user is left: no process, no mount, no layer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountOverlayState, writeProbeImageTar } from '../helpers/overlay-state.js';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';
import { lastCase, ok, runUserCases, type Case } from '../helpers/case-report.js';
import { describeProcess, mountsOf } from '../helpers/leftovers.js';
import { registryToolsMissing, tempDir, type TestRegistry } from '../helpers/registry.js';
import { serveFixtureImage } from '../helpers/fixture-registry.js';

const skip = rootlessSkipReason() || registryToolsMissing() || false;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-storage-child.ts');

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let ref: string;
let fuseMode: number | undefined;

before(async () => {
  if (skip) return;
  // The cases below are those of a host whose /dev/fuse the user cannot open.
  if (existsSync('/dev/fuse')) {
    fuseMode = statSync('/dev/fuse').mode & 0o7777;
    chmodSync('/dev/fuse', 0o600);
  }
  work = tempDir('berth-rlstorage-');
  ({ registry, ref } = await serveFixtureImage(work.path));
});

after(async () => {
  if (fuseMode !== undefined) chmodSync('/dev/fuse', fuseMode);
  await registry?.stop();
  work?.remove();
});

describe('rootless storage drivers', { skip }, () => {
  let user: RootlessUser;
  let cases: Map<string, Case>;
  before(async () => {
    user = RootlessUser.create({ subids: true });
    cases = await runUserCases(user, CHILD, [ref, 'vfs', 'fuse-overlayfs', 'default'], { guardMs: 300_000 });
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

  test('storageDriver "fuse-overlayfs" without root and without access to /dev/fuse is refused at open, naming the option, why and the fix', () => {
    const c = cases.get('fuse-overlayfs')!;
    assert.equal(c.ok, false, JSON.stringify(c.result));
    assert.equal(c.error!.code, 'ERR_UNSUPPORTED');
    assert.equal(c.error!.option, 'storageDriver');
    assert.match(c.error!.message, /fuse-overlayfs/);
    assert.match(c.error!.message, /\/dev\/fuse/);
    assert.match(c.error!.message, /fix: /);
  });

  test('the default without root is kernel overlay (tried in a user namespace)', () => {
    assert.equal(ok(cases.get('default')).driver, 'overlay');
  });

  test('a state directory where kernel overlay refuses its upper dir: the probe chooses vfs, says why, and a run from an imported image works', async () => {
    const state = mountOverlayState(work.path, user);
    try {
      const root = state.root;
      const tar = writeProbeImageTar(join(work.path, 'probed.tar'), ['sh', 'stat', 'awk']);
      const r = await user.runNode(CHILD, [ref, 'probed'], { guardMs: 300_000, env: { BERTH_TEST_ROOT: root, BERTH_TEST_TAR: tar } });
      assert.equal(r.code, 0, r.stderr);
      const res = ok(lastCase(r.stdout));
      assert.equal(res.driver, 'vfs');
      const why = (res.status as Array<[string, string]>).map(([k, v]) => `${k}: ${v}`).join('\n');
      assert.match(why, /kernel overlay does not mount inside a user namespace/, why);
      assert.equal(res.run.exitCode, 0, res.run.stderr);
      const [owner, rootFs] = (res.run.stdout as string).trim().split('\n');
      assert.equal(owner, '33:33');
      // The vfs copy is bound as the root: its filesystem is the state directory's (overlay here), made by the test, not by berth.
      assert.equal(rootFs, 'overlay');
      // An image with whiteouts cannot be stored there without root: a typed refusal naming
      // the filesystem and the fix, and nothing half-written left.
      assert.ok(res.pullError, 'the pull of an image with whiteouts succeeded on an overlay-backed store');
      assert.equal(res.pullError.code, 'ERR_UNSUPPORTED', res.pullError.message);
      assert.match(res.pullError.message, /whiteouts are char devices 0\/0, which a user namespace cannot make on the state directory's filesystem \(overlayfs\); fix: /);
      assert.deepEqual({ tmp: res.tmp, layers: res.layers }, { tmp: [], layers: [] });
    } finally {
      state.unmount();
    }
  });

  test('nothing of the user is left: no process, no mount', () => {
    assert.deepEqual(user.processes().map(describeProcess), []);
    assert.deepEqual(mountsOf(user), []);
  });
});
