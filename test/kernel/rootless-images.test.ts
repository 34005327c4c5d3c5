/**
 * Images without root (issue 15): a real unprivileged user (test/helpers/rootless-user.ts)
 * pulls a multi-layer image from the test's loopback registry (Debian's docker-registry, fed
 * by skopeo from the umoci-built fixture of test/helpers/fixture-image.ts) and uses it: run,
 * spawn, a detached container with exec, stop, restart, logs and remove, unpack, import,
 * remove. The test (root) checks the files on the host too: a layer file owned by 33 in the
 * image is owned by the subordinate range's 33rd id, a setuid-root file is setuid *to the
 * user*, whiteouts and opaque directories are overlay's `userxattr` spelling. Attacks: a layer
 * with `..` names and one writing through a symlink to the user's own home, unpacked as the
 * user, write nothing outside the store. At the end nothing of the user is left: no process
 * (its uid or subordinate ids), no mount.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';
import { ok, runUserCases, type Case } from '../helpers/case-report.js';
import { leftAfter, mountsOf, unreaped } from '../helpers/leftovers.js';
import { registryToolsMissing, tempDir, type TestRegistry } from '../helpers/registry.js';
import { serveFixtureImage } from '../helpers/fixture-registry.js';
import { buildTar } from '../helpers/tar-builder.js';
import { xattrNames } from '../helpers/xattr-names.js';

const skip = rootlessSkipReason() || registryToolsMissing() || false;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-images-child.ts');

/** Every path below `dir` (not following symlinks). */
function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out.push(p);
    if (lstatSync(p).isDirectory()) walk(p, out);
  }
  return out;
}

/** The layer directory (of `layers`) that holds `rel`, top first, as overlay would find it. */
function inLayers(layers: string[], rel: string): string {
  for (const l of [...layers].reverse()) if (existsOrLink(join(l, rel))) return join(l, rel);
  throw new Error(`${rel} is in no layer`);
}

function existsOrLink(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let ref: string;

function runCases(user: RootlessUser, names: string[]): Promise<Map<string, Case>> {
  return runUserCases(user, CHILD, [ref, join(work.path, 'attack'), ...names], { guardMs: 300_000 });
}

function writeAttackTars(dir: string, victim: string): void {
  writeFileSync(join(dir, 'dotdot.tar'), buildTar([
    { name: 'ok', content: 'fine\n' },
    { name: '../../../../../../..' + victim + '/dotdot-pwned', content: 'pwned\n' },
  ]));
  writeFileSync(join(dir, 'symlink.tar'), buildTar([
    { name: 'escape', type: 'symlink', linkname: victim },
    { name: 'escape/symlink-pwned', content: 'pwned\n' },
  ]));
  writeFileSync(join(dir, 'ok.tar'), buildTar([
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    { name: 'data/', type: 'dir', mode: 0o700, uid: 33, gid: 33 },
    { name: 'data/by-33', content: 'x', uid: 33, gid: 33 },
  ]));
}

before(async () => {
  if (skip) return;
  work = tempDir('berth-rlimg-');
  chmodSync(work.path, 0o755); // the user reads the attack tarballs from here
  mkdirSync(join(work.path, 'attack'), { mode: 0o755 });
  ({ registry, ref } = await serveFixtureImage(work.path));
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

describe('rootless images: a user with newuidmap and a subordinate range', { skip }, () => {
  let user: RootlessUser;
  let cases: Map<string, Case>;
  let victim: string;
  before(async () => {
    user = RootlessUser.create({ subids: true });
    victim = join(user.home, 'victim');
    mkdirSync(victim);
    chownSync(victim, user.uid, user.gid);
    writeAttackTars(join(work.path, 'attack'), victim);
    cases = await runCases(user, ['pull', 'run-image', 'run-as-33', 'spawn', 'detached', 'unpack', 'import-attack-dotdot', 'import-attack-symlink', 'import-ok', 'info']);
  });
  after(() => user?.remove());

  test('pull as the user: the store is under ~/.local/share/berth and nothing is left in tmp/', () => {
    const r = ok(cases.get('pull'));
    assert.equal(r.root, join(user.home, '.local/share/berth'));
    assert.equal(r.layers.length, 3);
    assert.deepEqual(r.tmp, []);
  });

  test("layer files keep the image's owners through the id map: 33 is the range's 33rd id, root is the user", () => {
    const layers: string[] = ok(cases.get('pull')).layers;
    const sub = (id: number) => user.subuid!.start + id - 1;
    const owned = lstatSync(inLayers(layers, 'srv/owned'));
    assert.equal(`${owned.uid}:${owned.gid}`, `${sub(33)}:${user.subgid!.start + 32}`);
    assert.equal(owned.mode & 0o7777, 0o640);
    const secret = lstatSync(inLayers(layers, 'home/user/secret'));
    assert.equal(secret.uid, sub(1000));
    // A setuid-root file keeps its bit, and is setuid to the user: no privilege beyond it.
    const passwd = lstatSync(inLayers(layers, 'usr/bin/passwd'));
    assert.equal(passwd.mode & 0o7777, 0o4755);
    assert.equal(passwd.uid, user.uid);
    const busybox = lstatSync(inLayers(layers, 'bin/busybox'));
    assert.equal(`${busybox.uid}:${busybox.gid}`, `${user.uid}:${user.gid}`);
  });

  test("whiteouts are 0/0 devices, opaque dirs carry user.overlay.opaque (userxattr's spelling), devices became whiteouts", () => {
    const layers: string[] = ok(cases.get('pull')).layers;
    const top = layers[2]!;
    const wh = lstatSync(join(top, 'etc/hostname'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'etc/hostname is a whiteout in layer 3');
    const names = xattrNames(top, 'var/cache');
    assert.ok(names.includes('user.overlay.opaque'), names.join(','));
    assert.ok(!names.includes('trusted.overlay.opaque'));
    const dev = lstatSync(join(layers[0]!, 'dev/loop7'));
    assert.ok(dev.isCharacterDevice() && dev.rdev === 0, 'a block device of the image is not made on the host');
  });

  test('run(imageRef): owners, modes, hard links, whiteouts and opaque dirs as the image says, in a subordinate map', () => {
    const r = ok(cases.get('run-image'));
    assert.equal(r.exitCode, 0, r.stderr);
    const [stats, cache, gone, content, map] = (r.stdout as string).split('---\n');
    assert.match(stats!, /^\/srv 33:33 3775 directory$/m);
    assert.match(stats!, /^\/srv\/owned 33:33 640 regular file$/m);
    assert.match(stats!, /^\/usr\/bin\/passwd 0:0 4755 regular file$/m);
    assert.match(stats!, /^\/usr\/bin\/wall 0:5 2755 regular file$/m);
    assert.match(stats!, /^\/home\/user\/secret 1000:1000 600 regular file$/m);
    assert.equal(cache, 'fresh\n');
    assert.match(gone!, /\/etc\/motd: No such file/);
    assert.match(gone!, /\/usr\/share\/doc: No such file/);
    assert.equal(content, 'shared inode\nnow a file\nyes\n');
    assert.match(map!, new RegExp(`^\\s*1\\s+${user.subuid!.start}\\s+65535$`, 'm'));
  });

  test('a container user 33 reads its 0640 file and writes into its setgid dir; spawn() streams from the image', () => {
    const r = ok(cases.get('run-as-33'));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, '33\nwww33:33\n');
    assert.equal(r.procSelfOwner, r.nodeUid, "Node's own /proc files still belong to its user after launching user 33 (dumpable restored)");
    const s = ok(cases.get('spawn'));
    assert.equal(s.exit.exitCode, 0);
    assert.equal(s.stdout, 'www0\n');
  });

  test('a detached container from the image: exec (root and 33), stop, restart keeps its layer, logs, remove', () => {
    const r = ok(cases.get('detached'));
    assert.equal(r.exec1.exitCode, 0, r.exec1.stderr);
    // Made by root in the setgid directory of 33: the group is inherited.
    assert.equal(r.exec1.stdout, 'www33:33\n0:33\n');
    assert.equal(r.asWww.stdout, '33\n');
    assert.equal(r.afterStop, 'exited');
    assert.equal(r.afterRestart.stdout, 'x\n');
    assert.deepEqual(r.logs, ['started\n', 'started\n']);
    assert.ok(r.upper.startsWith(join(user.home, '.local/share/berth/containers/')));
    assert.equal(existsOrLink(r.upper), false, 'remove left the container layer');
  });

  test("images.unpack as the user: a flattened tree with the image's owners through the map", () => {
    const { dest } = ok(cases.get('unpack'));
    assert.equal(lstatSync(join(dest, 'srv/owned')).uid, user.subuid!.start + 32);
    assert.equal(lstatSync(join(dest, 'usr/bin/passwd')).mode & 0o7777, 0o4755);
    assert.equal(existsOrLink(join(dest, 'etc/motd')), false);
    assert.deepEqual(readdirSync(join(dest, 'var/cache')), ['fresh']);
  });

  test('attack: a layer with ".." names or a write through a symlink, unpacked as the user, is refused and writes nothing outside', () => {
    for (const name of ['import-attack-dotdot', 'import-attack-symlink']) {
      const c = cases.get(name)!;
      assert.equal(c.ok, false, JSON.stringify(c.result));
      assert.equal(c.error!.code, 'ERR_UNSAFE_LAYER_ENTRY', c.error!.message);
    }
    assert.deepEqual(readdirSync(victim), []);
    assert.deepEqual(readdirSync(join(user.home, '.local/share/berth/tmp')), []);
  });

  test('images.import as the user: a file of 33 in the tarball is 33 in the container', () => {
    const r = ok(cases.get('import-ok'));
    assert.equal(r.run.exitCode, 0, r.run.stderr);
    assert.equal(r.run.stdout, '33:33\n');
  });

  test('rt.info(): overlay, subordinate mapping', () => {
    assert.deepEqual(ok(cases.get('info')), { Driver: 'overlay', IdMapping: 'subordinate' });
  });

  test('rt.images.remove as the user leaves no layer, blob or temp dir, although layer files belong to other ids', async () => {
    const more = await runCases(user, ['remove']);
    assert.deepEqual(ok(more.get('remove')), { layers: [], tmp: [], blobs: [] });
    // Nothing of a subordinate id is left anywhere in the store.
    const left = walk(join(user.home, '.local/share/berth')).filter((p) => lstatSync(p).uid !== user.uid);
    assert.deepEqual(left, []);
  });

  test('nothing of the user is left: no process (its uid or subordinate ids), no host mount', async () => {
    assert.deepEqual(await leftAfter(user, 10_000, unreaped), []);
    assert.deepEqual(mountsOf(user), []);
  });
});

describe('rootless images: a user without a subordinate range (single-id map)', { skip }, () => {
  let user: RootlessUser;
  let cases: Map<string, Case>;
  before(async () => {
    user = RootlessUser.create({ subids: false });
    cases = await runCases(user, ['pull', 'remove']);
  });
  after(() => user?.remove());

  test("a layer file owned by another id is refused naming the entry, its owner and the fix (no ignore_chown_errors squash)", () => {
    const c = cases.get('pull')!;
    assert.equal(c.ok, false, JSON.stringify(c.result));
    assert.equal(c.error!.code, 'ERR_UNSUPPORTED');
    assert.match(c.error!.message, /is owned by \d+:\d+, which cannot exist without root: only root exists in a single-id map/);
    assert.match(c.error!.message, /usermod --add-subuids/);
  });

  test('the refused pull leaves no layer and no temp dir', () => {
    const r = ok(cases.get('remove'));
    assert.deepEqual(r.layers, []);
    assert.deepEqual(r.tmp, []);
  });

  test('nothing of the user is left', async () => {
    assert.deepEqual(await leftAfter(user, 10_000, unreaped), []);
    assert.deepEqual(mountsOf(user), []);
  });
});
