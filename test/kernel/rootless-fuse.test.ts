/**
 * fuse-overlayfs without root (issue 15): a real unprivileged user (test/helpers/rootless-user.ts)
 * runs containers whose root is served by a fuse-overlayfs daemon inside its held user
 * namespace and handed to the launch as a detached mount (docs/design/rootless.md,
 * "fuse-overlayfs without root"). The user needs /dev/fuse, which distributions make 0666
 * (udev); this VM has no udev and leaves it 0600, so the test gives it the usual mode while it
 * runs and puts the original back (and the refusal with 0600 is tested too).
 *
 * Covered: `storageDriver: 'fuse-overlayfs'` for run() (image owners through the map, a file
 * written and read, a write as 33), spawn() (the container cannot see or kill the daemon: the
 * daemon is in no pid or mount namespace of the container and the root is still served after
 * the container's kill -9 of everything it can see), rt.containers with lifetime 'process' (the
 * layer kept across two starts), 'detached' refused typed; the probe choosing fuse-overlayfs on
 * a state directory where kernel overlay refuses its upper dir (an overlay the test mounts) and
 * rt.info() saying why; nothing left after rt.close() and after the owner's SIGKILL (process,
 * mount, layer or scratch directory).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountOverlayState, writeProbeImageTar } from '../helpers/overlay-state.js';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';
import { ok, parseCases as parse, type Case } from '../helpers/case-report.js';
import { leftAfter, running } from '../helpers/leftovers.js';
import { startOwner } from '../helpers/rootless-owner.js';
import { registryToolsMissing, tempDir, type TestRegistry } from '../helpers/registry.js';
import { serveFixtureImage } from '../helpers/fixture-registry.js';
import { findTool } from '../../lib/host/tools.js';

const skip = rootlessSkipReason() || registryToolsMissing() || (findTool('fuse-overlayfs') ? false : 'fuse-overlayfs is not installed (apt-get install fuse-overlayfs)');
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-fuse-child.ts');

/** Every fuse mount of any mount namespace of the user's processes, and the host's own. */
function fuseMounts(pids: number[]): string[] {
  const out = new Set<string>();
  for (const pid of ['self', ...pids.map(String)]) {
    try {
      for (const l of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) if (/ - fuse/.test(l)) out.add(l);
    } catch {
      // gone
    }
  }
  return [...out];
}

/** Directories named like a layer's or a probe's scratch anywhere under `dir`. */
function scratchLeft(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      if (n.startsWith('.storage-probe-') || n === 'merged' || n === 'merged.log') out.push(join(d, n));
      if (depth < 4) walk(join(d, n), depth + 1);
    }
  };
  walk(dir, 0);
  return out;
}

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let ref: string;
let fuseMode: number;

before(async () => {
  if (skip) return;
  fuseMode = statSync('/dev/fuse').mode & 0o7777;
  work = tempDir('berth-rlfuse-');
  ({ registry, ref } = await serveFixtureImage(work.path));
});

after(async () => {
  if (fuseMode !== undefined) chmodSync('/dev/fuse', fuseMode);
  await registry?.stop();
  work?.remove();
});

describe('rootless fuse-overlayfs', { skip }, () => {
  let user: RootlessUser;
  before(() => {
    user = RootlessUser.create({ subids: true });
  });
  after(() => user?.remove());

  test('/dev/fuse closed to the user (0600): storageDriver "fuse-overlayfs" is refused at open, naming the device, its mode and the fix', async () => {
    chmodSync('/dev/fuse', 0o600);
    const r = await user.runNode(CHILD, [ref, 'refused']);
    assert.equal(r.code, 0, r.stderr);
    const c = parse(r.stdout).get('refused')!;
    assert.equal(c.ok, false, JSON.stringify(c.result));
    assert.equal(c.error!.code, 'ERR_UNSUPPORTED');
    assert.equal(c.error!.option, 'storageDriver');
    assert.match(c.error!.message, /\/dev\/fuse cannot be opened by this user \(EACCES/);
    assert.match(c.error!.message, /fix: as root: chmod 0666 \/dev\/fuse/);
  });

  describe('with /dev/fuse 0666 (the distributions\' mode)', () => {
    let cases: Map<string, Case>;
    before(async () => {
      chmodSync('/dev/fuse', 0o666);
      const r = await user.runNode(CHILD, [ref, 'explicit'], { guardMs: 300_000 });
      assert.equal(r.code, 0, `rootless child failed: ${r.stderr}`);
      cases = parse(r.stdout);
    });

    test('run(): the root is fuse-overlayfs, image files have the image\'s owners through the map, writes work (as root and as 33)', () => {
      const r = ok(cases.get('explicit'));
      assert.equal(r.driver, 'fuse-overlayfs');
      assert.equal(r.run.exitCode, 0, r.run.stderr);
      assert.deepEqual((r.run.stdout as string).trim().split('\n'), ['33:33', 'fuse.fuse-overlayfs', 'written']);
      assert.equal(r.asWww.exitCode, 0, r.asWww.stderr);
      assert.equal(r.asWww.stdout, '33:33\n');
    });

    test('spawn(): the daemon is in the container\'s user namespace but not its pid or mount namespace; the container neither sees nor kills it', () => {
      const { view } = ok(cases.get('explicit'));
      assert.equal(view.rootFs, 'fuse.fuse-overlayfs');
      assert.equal(view.daemons, 1, 'one daemon for the one running container');
      assert.equal(view.samePidns, false);
      assert.equal(view.sameMntns, false);
      assert.equal(view.sameUserns, true);
      // The container counted no fuse-overlayfs process, then killed all it could and still read its root.
      assert.deepEqual(view.attack.trim().split('\n'), ['0', 'root-still-served']);
    });

    test('rt.containers (lifetime "process"): the layer persists across starts; "detached" is refused typed', () => {
      const { containers, detached } = ok(cases.get('explicit'));
      assert.equal(containers.first.StatusCode ?? containers.first.exitCode ?? 0, 0);
      assert.equal(containers.log1, 'made\n');
      assert.equal(containers.log2, 'made\nkept\n');
      assert.equal(containers.graphDriver.Name, 'fuse-overlayfs');
      assert.equal(detached.code, 'ERR_UNSUPPORTED', JSON.stringify(detached));
      assert.equal(detached.option, 'lifetime');
      assert.match(detached.message, /fuse-overlayfs/);
    });

    test('nothing is left after the containers and rt.close(): no daemon, process, mount, layer or scratch directory', async () => {
      const r = ok(cases.get('explicit'));
      assert.equal(r.daemonsAfter, 0, 'a daemon outlived its container');
      assert.deepEqual(r.left.tmp, []);
      assert.deepEqual(r.left.containers, []);
      assert.deepEqual(await leftAfter(user, 10_000), []);
      assert.deepEqual(fuseMounts([]), []);
      assert.deepEqual(scratchLeft(user.home), []);
    });

    test('the owner killed by SIGKILL: its container, the daemon and its helper go, with their mount', async () => {
      const owner = await startOwner(user, CHILD, [ref, 'owned']);
      const r = ok(JSON.parse(owner.line) as Case);
      assert.equal(r.daemons.length, 1);
      assert.ok(running(r.container) && running(r.daemons[0]), 'container and daemon run while the owner does');
      const mountsBefore = fuseMounts(user.processes());
      assert.ok(mountsBefore.some((l) => l.includes('fuse-overlayfs')), 'the container\'s root is a fuse mount while it runs');
      await owner.kill();
      assert.deepEqual(await leftAfter(user, 15_000), []);
      assert.deepEqual(fuseMounts(user.processes()), []);
    });

    test('a state directory where kernel overlay refuses its upper dir: the probe chooses fuse-overlayfs and rt.info() says why', async () => {
      const state = mountOverlayState(work.path, user);
      try {
        const root = state.root;
        const tar = writeProbeImageTar(join(work.path, 'probed.tar'), ['sh', 'stat', 'awk', 'cat']);
        const r = await user.runNode(CHILD, [ref, 'probed'], { guardMs: 300_000, env: { BERTH_TEST_ROOT: root, BERTH_TEST_TAR: tar } });
        assert.equal(r.code, 0, r.stderr);
        const res = ok(parse(r.stdout).get('probed'));
        const why = (res.status as Array<[string, string]>).map(([k, v]) => `${k}: ${v}`).join('\n');
        assert.equal(res.driver, 'fuse-overlayfs', why);
        assert.match(why, /kernel overlay does not mount inside a user namespace/, why);
        assert.match(why, /fuse-overlayfs mounts with its upper dir on the state directory's filesystem \(overlayfs\) through \/dev\/fuse, inside this process's user namespace/, why);
        assert.equal(res.run.exitCode, 0, res.run.stderr);
        assert.deepEqual((res.run.stdout as string).trim().split('\n'), ['33:33', 'fuse.fuse-overlayfs', 'written']);
        assert.equal(res.daemonsAfter, 0);
        assert.deepEqual(scratchLeft(root), []);
      } finally {
        state.unmount();
      }
    });
  });
});
