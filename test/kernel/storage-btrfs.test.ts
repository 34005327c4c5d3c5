/**
 * The btrfs storage driver beyond the conformance suite (storage-conformance.test.ts runs that
 * against btrfs too), on a loop-mounted btrfs of its own: an image is a chain of read-only
 * layer subvolumes and a container a writable snapshot of its top, each removed with what it
 * belongs to; a hostile container's btrfs ioctls reach no other subvolume and what they make
 * (nested, read-only subvolumes, a snapshot of itself, its own root made read-only) goes with
 * its removal; what a crashed process left is swept by the next one.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Runtime, type Container } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { btrfsSkipReason, makeBtrfsLoop, type BtrfsLoop } from '../helpers/btrfs-loop.js';
import { buildFixtureImage } from '../helpers/fixture-image.js';
import { mountLines } from '../helpers/leaks.js';
import { registryToolsMissing, run, tempDir } from '../helpers/registry.js';

const skip = kernelSkipReason() || registryToolsMissing() || btrfsSkipReason() || false;
const ATTACK_SOURCE = join(import.meta.dirname, '../fixtures/attacks/btrfs-subvolumes.c');
const CRASH_CHILD = join(import.meta.dirname, 'storage-btrfs-crash-child.ts');

describe('btrfs storage driver', { skip }, () => {
  let work: { path: string; remove: () => void };
  let loop: BtrfsLoop;
  let root: string;
  let rt: Runtime;
  let image: string;
  let layoutTar: string;
  let bin: string;
  const made: Container[] = [];

  const ours = (): string[] => loop.subvolumes().filter((p) => p.startsWith('state/'));
  const readonly = (p: string): boolean => execFileSync('btrfs', ['property', 'get', '-ts', join(loop.mountPoint, p), 'ro'], { encoding: 'utf8' }).trim() === 'ro=true';

  before(async () => {
    work = tempDir('berth-btrfs-');
    loop = makeBtrfsLoop();
    root = join(loop.mountPoint, 'state');
    const layout = await buildFixtureImage(work.path);
    layoutTar = join(work.path, 'layout.tar');
    await run('tar', ['-cf', layoutTar, '-C', layout, '.']);
    bin = mkdtempSync(join(tmpdir(), 'berth-btrfs-attack-'));
    execFileSync('gcc', ['-static', '-O2', '-o', join(bin, 'btrfs-subvolumes'), ATTACK_SOURCE]);
    rt = await Runtime.open({ root, storageDriver: 'btrfs' });
    image = (await rt.images.load(layoutTar))[0]!.id;
  });

  after(async () => {
    for (const c of made) await c.remove({ force: true }).catch(() => {});
    await rt?.close();
    loop?.remove();
    work?.remove();
    if (bin) rmSync(bin, { recursive: true, force: true });
  });

  it('makes an image a chain of read-only layer subvolumes and a container a writable snapshot; removal destroys each', async () => {
    const layers = (await rt.images.inspect(image)).RootFS.Layers.length;
    const c = await rt.containers.create({ image, cmd: ['sh', '-c', 'echo mine > /etc/motd-new'] });
    made.push(c);
    const chain = ours().filter((p) => /^state\/layers\/[0-9a-f]{64}\.btrfs$/.test(p));
    assert.equal(chain.length, layers, `one subvolume per layer: ${ours().join(', ')}`);
    assert.ok(chain.every(readonly), 'the layer subvolumes are read-only');
    const mine = `state/containers/${c.id}/upper`;
    assert.ok(ours().includes(mine));
    assert.equal(readonly(mine), false);
    const graph = (await c.inspect()).GraphDriver;
    assert.equal(graph.Name, 'btrfs');
    assert.equal(graph.Data!.Dir, join(loop.mountPoint, mine));
    assert.ok(chain.map((p) => join(loop.mountPoint, p)).includes(graph.Data!.ImageSubvolume!));
    await c.start();
    assert.equal((await c.wait()).exitCode, 0);
    // A second container shares the chain: no new layer subvolume, one more snapshot.
    const d = await rt.containers.create({ image, cmd: ['true'] });
    made.push(d);
    assert.equal(ours().length, layers + 2);
    await c.remove();
    assert.equal(ours().includes(mine), false, 'the container\'s subvolume is destroyed with it');
    assert.equal(existsSync(join(root, 'containers', c.id)), false);
    await d.remove();
    assert.equal(ours().length, layers, 'only the image\'s chain is left');
    await rt.images.remove(image, { force: true });
    assert.deepEqual(ours(), [], 'the image\'s removal destroys its layer subvolumes');
    image = (await rt.images.load(layoutTar))[0]!.id;
  });

  it('gives a { rootfs } container a subvolume holding a copy of the directory, and destroys it with the container', async () => {
    const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sh', '-c', 'echo hi > /x && rm /bin/cat'] });
    made.push(c);
    assert.ok(ours().includes(`state/containers/${c.id}/upper`));
    await c.start();
    assert.equal((await c.wait()).exitCode, 0);
    const changes = await c.diff();
    assert.ok(changes.some((x) => x.path === '/x' && x.kind === 'A') && changes.some((x) => x.path === '/bin/cat' && x.kind === 'D'), JSON.stringify(changes));
    assert.ok(existsSync(join(busyboxRootfs(), 'bin', 'cat')), 'the directory itself is untouched');
    await c.remove();
    made.pop();
    assert.ok(!ours().some((p) => p.startsWith(`state/containers/${c.id}`)));
  });

  it('builds an image\'s chain once when containers of it are created at the same time', async () => {
    await rt.images.remove(image, { force: true });
    assert.deepEqual(ours(), []);
    image = (await rt.images.load(layoutTar))[0]!.id;
    const layers = (await rt.images.inspect(image)).RootFS.Layers.length;
    // Each create builds the missing links; all but one publish finds EEXIST and keeps the other's.
    const cs = await Promise.all([0, 1, 2, 3].map(() => rt.containers.create({ image, cmd: ['cat', '/etc/passwd'] })));
    made.push(...cs);
    assert.equal(ours().filter((p) => p.startsWith('state/layers/')).length, layers, `one link per layer, no scratch left: ${ours().join(', ')}`);
    for (const c of cs) {
      await c.start();
      assert.equal((await c.wait()).exitCode, 0);
      await c.remove();
    }
    made.splice(made.length - cs.length);
    assert.equal(ours().length, layers);
  });

  it('attack: a container\'s btrfs ioctls reach no other subvolume, and what it makes goes with its removal', async () => {
    const other = await rt.containers.create({ image, cmd: ['sh', '-c', 'echo other-secret > /secret'] });
    made.push(other);
    await other.start();
    await other.wait();
    const hostile = await rt.containers.create({
      image,
      cmd: ['sh', '-c', '/attack/btrfs-subvolumes; cat /nested/data; ls /selfsnap/etc/passwd; grep -c other-secret /secret 2>&1; awk \'$5 == "/" { print "root " $4 }\' /proc/self/mountinfo'],
      mounts: [{ type: 'bind', source: bin, target: '/attack', readonly: true }],
    });
    made.push(hostile);
    await hostile.start();
    assert.equal((await hostile.wait()).exitCode, 0);
    const lines: string[] = [];
    for await (const l of hostile.logs()) lines.push(l.line);
    const out = lines.join('\n');
    // The two ways to see or name the filesystem's other subvolumes need CAP_SYS_ADMIN.
    assert.match(out, /^tree-search EPERM$/m, out);
    assert.match(out, /^ino-lookup EPERM$/m, out);
    // Its root is its own snapshot, nothing above it; the other container's file is not there.
    assert.match(out, new RegExp(`^root /state/containers/${hostile.id}/upper$`, 'm'), out);
    assert.match(out, /No such file|^0$/m);
    // What needs no capability, it did: the host must clean that up.
    assert.match(out, /^subvol-create ok$/m, out);
    assert.match(out, /^subvol-readonly ok$/m, out);
    assert.match(out, /^inside a nested subvolume$/m, out);
    const mine = ours().filter((p) => p.startsWith(`state/containers/${hostile.id}/`));
    assert.ok(mine.length >= 2, `the container made subvolumes of its own: ${mine.join(', ')}`);
    // diff and commit read through it (a nested subvolume is one more directory to them).
    const changes = await hostile.diff();
    assert.ok(changes.some((x) => x.path === '/nested' && x.kind === 'A'), JSON.stringify(changes));
    await hostile.remove();
    assert.deepEqual(ours().filter((p) => p.startsWith(`state/containers/${hostile.id}`)), [], 'every subvolume of the container is destroyed');
    assert.equal(existsSync(join(root, 'containers', hostile.id)), false);
    // The other container is untouched.
    assert.equal((await other.diff()).some((x) => x.path === '/secret'), true);
    await other.remove();
  });

  it('attack: read-only subvolumes a container makes in a volume go with the volume', async () => {
    const c = await rt.containers.create({
      image,
      cmd: ['/attack/btrfs-subvolumes', '/data'],
      mounts: [
        { type: 'bind', source: bin, target: '/attack', readonly: true },
        { type: 'volume', source: 'btrfs-attack', target: '/data' },
      ],
    });
    made.push(c);
    await c.start();
    assert.equal((await c.wait()).exitCode, 0);
    const lines: string[] = [];
    for await (const l of c.logs()) lines.push(l.line);
    assert.match(lines.join('\n'), /^subvol-readonly ok$/m, lines.join('\n'));
    const vol = await rt.volumes.get('btrfs-attack');
    const mountpoint = (await vol.inspect()).Mountpoint;
    assert.ok(ours().some((p) => join(loop.mountPoint, p) === join(mountpoint, 'nested')), `the container made a subvolume in its volume: ${ours().join(', ')}`);
    await c.remove();
    await vol.remove();
    assert.deepEqual(ours().filter((p) => p.startsWith('state/volumes/')), [], 'no subvolume of the volume is left');
    assert.equal(existsSync(mountpoint), false);
  });

  it('sweeps what a crashed process left: scratch links, half-made containers, runs, trials, orphan layer subvolumes', async () => {
    // A container creation builds the chain; its top is what the child snapshots.
    const c = await rt.containers.create({ image, cmd: ['true'] });
    const link = (await c.inspect()).GraphDriver.Data!.ImageSubvolume!;
    await c.remove();
    const before = ours();
    const child = await promisify(execFile)(process.execPath, ['--import', 'tsx', CRASH_CHILD, root, link]).then(
      () => assert.fail('the child was to kill itself'),
      (e: { signal?: string; stdout?: string }) => e,
    );
    assert.equal(child.signal, 'SIGKILL');
    assert.equal(child.stdout, 'ready\n');
    assert.equal(ours().length, before.length + 5, `the crash left five subvolumes: ${ours().join(', ')}`);
    await rt.close();
    rt = await Runtime.open({ root, storageDriver: 'btrfs' });
    // Runs sweep dead owners' run layers before making theirs.
    const r = await rt.run(image, ['sh', '-c', 'exit 0']);
    assert.equal(r.exitCode, 0);
    assert.deepEqual(ours().sort(), before.sort(), 'only the image\'s chain is left');
  });

  it('refuses storageDriver "btrfs" off btrfs with a typed error naming the fix', async () => {
    const elsewhere = tempDir('berth-btrfs-not-');
    try {
      await assert.rejects(Runtime.open({ root: join(elsewhere.path, 'state'), storageDriver: 'btrfs' }), (e: Error & { option?: string }) => {
        assert.equal(e.name, 'UnsupportedError');
        assert.equal(e.option, 'storageDriver');
        assert.match(e.message, /not btrfs.*fix: put the state directory on a btrfs filesystem/);
        return true;
      });
    } finally {
      elsewhere.remove();
    }
  });

  it('leaves no subvolume once everything is removed, and no mount or loop device once the fixture is gone', async () => {
    for (const c of made.splice(0)) await c.remove({ force: true }).catch(() => {});
    for (const img of await rt.images.list()) await rt.images.remove(img.id, { force: true });
    assert.deepEqual(ours(), []);
    await rt.close();
    loop.remove();
    assert.ok(!mountLines().some((l) => l.includes(loop.mountPoint)), 'the btrfs is unmounted');
    assert.ok(!execFileSync('losetup', ['-a'], { encoding: 'utf8' }).includes(`${loop.device}:`), `${loop.device} is detached`);
  });
});
