/**
 * One conformance suite for every storage driver berth has, run on this machine against the
 * same image (the fixture: umoci-written whiteouts, a crafted layer with an opaque directory, a
 * hard link into a lower layer, xattrs, devices, type changes): the container's root is
 * `umoci unpack`'s tree, containers are copy-on-write and isolated from each other and from
 * the image, diff / commit / export see the same changes, a volume is filled from the image,
 * and removing everything leaves no mount, no directory and no copy behind.
 */
import assert from 'node:assert/strict';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { Runtime, type Container } from '../../lib/index.js';
import type { StorageDriverName } from '../../lib/storage/driver.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { buildFixtureImage, FIXTURE_TAG } from '../helpers/fixture-image.js';
import { STAGING_DIR } from '../../lib/launch/launcher.js';
import { mountLines } from '../helpers/leaks.js';
import { btrfsSkipReason, makeBtrfsLoop, type BtrfsLoop } from '../helpers/btrfs-loop.js';
import { registryToolsMissing, run, tempDir } from '../helpers/registry.js';
import { describeTree, diffTrees } from '../helpers/tree-compare.js';

const skip = kernelSkipReason() || registryToolsMissing() || false;
const DRIVERS: readonly StorageDriverName[] = ['overlay', 'fuse-overlayfs', 'vfs', 'btrfs'];

let work: { path: string; remove: () => void };
let layoutTar: string;
let umociRoot: string;
let mountsBefore: string[];

/**
 * Host mounts that berth could have left for this suite: on its state directories or berth's
 * staging directory. (Other programs on a shared host mount and unmount meanwhile: not ours.)
 */
function ourMounts(): string[] {
  return mountLines().filter((l) => l.includes(work.path) || l.includes(STAGING_DIR));
}

/** fuse-overlayfs processes serving a mount below `dir` (berth starts them with the mount point last). */
export function daemonsUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    } catch {
      continue;
    }
    if (argv[0]?.endsWith('fuse-overlayfs') && argv.some((a) => a.includes(dir))) pids.push(Number(name));
  }
  return pids;
}

before(async () => {
  if (skip) return;
  work = tempDir('berth-storage-conf-');
  mountsBefore = ourMounts();
  const layout = await buildFixtureImage(work.path);
  layoutTar = join(work.path, 'layout.tar');
  await run('tar', ['-cf', layoutTar, '-C', layout, '.']);
  await run('umoci', ['unpack', '--image', `${layout}:${FIXTURE_TAG}`, join(work.path, 'umoci-bundle')]);
  umociRoot = join(work.path, 'umoci-bundle', 'rootfs');
});

after(() => {
  work?.remove();
});

/** A container's output of `script` (it runs to its end). */
async function output(rt: Runtime, image: string, script: string): Promise<string> {
  const r = await rt.run(image, ['sh', '-c', script]);
  assert.equal(r.exitCode, 0, `${script}: ${r.stderr}`);
  return r.stdout;
}

/** Exports `c` and unpacks the tar with GNU tar (owners, modes, xattrs, devices) into `dir`. */
async function exportTo(c: Container, dir: string): Promise<string> {
  const tar = `${dir}.tar`;
  await pipeline(c.export(), createWriteStream(tar));
  mkdirSync(dir);
  await run('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tar, '-C', dir]);
  return tar;
}

async function runToEnd(c: Container): Promise<void> {
  await c.start();
  const exit = await c.wait();
  assert.equal(exit.exitCode, 0);
}

for (const driver of DRIVERS) {
  // btrfs runs on a loop-mounted btrfs of its own (the state directory must be on btrfs).
  const driverSkip = skip || (driver === 'btrfs' ? btrfsSkipReason() || false : false);
  describe(`storage driver ${driver}`, { skip: driverSkip }, () => {
    let root: string;
    let loop: BtrfsLoop | undefined;
    let rt: Runtime;
    let image: string;
    const made: Container[] = [];
    const create = async (cmd: string[], extra: Record<string, unknown> = {}) => {
      const c = await rt.containers.create({ image, cmd, ...extra });
      made.push(c);
      return c;
    };

    before(async () => {
      if (driver === 'btrfs') loop = makeBtrfsLoop();
      root = loop ? join(loop.mountPoint, 'state') : join(work.path, `state-${driver}`);
      rt = await Runtime.open({ root, storageDriver: driver });
      const [img] = await rt.images.load(layoutTar);
      image = img!.id;
    });

    after(async () => {
      for (const c of made) await c.remove({ force: true }).catch(() => {});
      await rt?.close();
      loop?.remove();
    });

    it('reports itself in rt.info() and inspect()', async () => {
      const info = await rt.info();
      assert.equal(info.Driver, driver);
      assert.match(info.Storage.reason, new RegExp(`^chosen \\(storageDriver "${driver}"\\)`));
      const c = await create(['true']);
      const graph = (await c.inspect()).GraphDriver;
      assert.equal(graph.Name, driver);
      const dir = graph.Data!.UpperDir ?? graph.Data!.Dir;
      if (driver === 'btrfs') assert.ok(loop!.subvolumes().includes(`state/containers/${c.id}/upper`), `the container's layer is a subvolume: ${loop!.subvolumes().join(', ')}`);
      assert.ok(dir !== undefined && existsSync(dir), `${driver}: the layer directory ${dir} exists`);
    });

    it('applies the layers (whiteouts, opaque dirs, hard links, xattrs, devices) as umoci unpack does', async () => {
      const c = await create(['true']);
      const dest = join(root, `export-fresh`);
      await exportTo(c, dest);
      assert.deepEqual(diffTrees(describeTree(dest), describeTree(umociRoot), [driver, 'umoci']), []);
      // And as the running container sees it through the driver's mount.
      const seen = await output(rt, image, 'ls /var/cache; ls /opt; cat /opt/dir; [ -e /etc/motd ] || echo no-motd; stat -c %i /usr/lib/a /usr/lib/b /usr/lib/c | sort -u | wc -l');
      assert.equal(seen, 'fresh\ndir\nthing\nnow a file\nno-motd\n1\n');
    });

    it('keeps containers copy-on-write: one container\'s writes reach neither the image nor another container', async () => {
      const layers = describeTree(join(root, 'layers'));
      const writer = await create(['sh', '-c', 'echo mine >> /etc/passwd && rm /bin/cat && echo x > /usr/lib/a']);
      const reader = await create(['sh', '-c', 'cat /etc/passwd /usr/lib/a /usr/lib/c']);
      await runToEnd(writer);
      await runToEnd(reader);
      const logs: string[] = [];
      for await (const line of reader.logs()) logs.push(JSON.stringify(line));
      assert.match(logs.join(''), /root:x:0:0.*shared inode.*shared inode/s, 'the reader read the image\'s files');
      assert.ok(!logs.join('').includes('mine'), 'the other container does not see the write');
      assert.deepEqual(diffTrees(describeTree(join(root, 'layers')), layers, ['after', 'before']), [], 'the image layers are untouched');
      assert.equal(await output(rt, image, 'cat /usr/lib/c; [ -e /bin/cat ] && echo has-cat'), 'shared inode\nhas-cat\n');
    });

    let changed: Container;
    it('reports a container\'s changes (docker diff) alike for every driver', async () => {
      changed = await create(['sh', '-c', 'echo new > /new && ln /new /new-link && rm /etc/group && echo x >> /etc/passwd && rm -r /var/cache && mkdir /srv/sub && echo s > /srv/sub/f']);
      await runToEnd(changed);
      assert.deepEqual(await changed.diff(), [
        { path: '/etc', kind: 'C' },
        { path: '/etc/group', kind: 'D' },
        { path: '/etc/passwd', kind: 'C' },
        { path: '/new', kind: 'A' },
        { path: '/new-link', kind: 'A' },
        { path: '/srv', kind: 'C' },
        { path: '/srv/sub', kind: 'A' },
        { path: '/srv/sub/f', kind: 'A' },
        { path: '/var', kind: 'C' },
        { path: '/var/cache', kind: 'D' },
      ]);
    });

    it('commits the changes into an image whose containers see them (deletions, hard links)', async () => {
      const committed = await changed.commit();
      const seen = await output(rt, committed, 'cat /new /srv/sub/f; [ -e /etc/group ] || echo no-group; [ -e /var/cache ] || echo no-cache; stat -c %i /new /new-link | sort -u | wc -l; tail -n1 /etc/passwd');
      assert.equal(seen, 'new\ns\nno-group\nno-cache\n1\nx\n');
    });

    it('exports the merged root with the changes', async () => {
      const dest = join(root, 'export-changed');
      await exportTo(changed, dest);
      const tree = describeTree(dest);
      assert.equal(tree.get('new')?.type, 'file');
      assert.deepEqual(tree.get('new')?.links, ['new', 'new-link']);
      assert.equal(tree.has('etc/group'), false);
      assert.equal(tree.has('var/cache'), false);
      assert.equal(tree.get('bin/busybox')?.type, 'file');
    });

    it('attack: symlinks a container plants never lead diff, commit or export to host files', async () => {
      // A container's layer is written by the container: a symlink to / or a directory swapped
      // for a symlink to /etc must be archived as a symlink, never followed on the host.
      const c = await create(['sh', '-c', 'ln -s / /hostroot && rm -r /srv && ln -s /etc /srv && ln -s /etc/shadow /usr/lib/shadow']);
      await runToEnd(c);
      const changes = await c.diff();
      assert.ok(!changes.some((x) => x.path.startsWith('/srv/') || x.path.startsWith('/hostroot/')), JSON.stringify(changes));
      const committed = await c.commit();
      assert.equal(await output(rt, committed, 'for l in /srv /hostroot /usr/lib/shadow; do readlink $l; done; [ -e /etc/shadow ] || echo no-shadow'), '/etc\n/\n/etc/shadow\nno-shadow\n');
      const dest = join(root, 'export-attack');
      const tar = await exportTo(c, dest);
      const names = (await run('tar', ['-tf', tar], { maxBuffer: 16 * 1024 * 1024 })).stdout.split('\n');
      assert.ok(!names.some((n) => /^(\.\/)?(srv|hostroot)\/./.test(n)), 'nothing is archived below the planted symlinks');
      assert.equal(describeTree(dest).get('srv')?.target, '/etc');
    });

    it('fills an empty volume from the image (copy-up)', async () => {
      const c = await create(['sh', '-c', 'ls /usr/lib'], { mounts: [{ type: 'volume', source: `copyup-${driver}`, target: '/usr/lib' }] });
      await runToEnd(c);
      const vol = await rt.volumes.get(`copyup-${driver}`);
      assert.deepEqual(readdirSync((await vol.inspect()).Mountpoint).sort(), ['a', 'b', 'c']);
    });

    it('leaves nothing behind once its containers, runs and images are removed', async () => {
      await output(rt, image, 'echo run > /run-only');
      for (const c of made.splice(0)) await c.remove({ force: true, volumes: true });
      await (await rt.volumes.get(`copyup-${driver}`)).remove();
      // The names directory (one file per name) stays, empty.
      assert.deepEqual(readdirSync(join(root, 'containers')).filter((n) => n !== 'names.json' && n !== 'names'), []);
      if (existsSync(join(root, 'containers', 'names'))) assert.deepEqual(readdirSync(join(root, 'containers', 'names')), [], 'no name is left');
      assert.deepEqual(readdirSync(join(root, 'tmp')).filter((n) => n.startsWith('run-layer-')), [], 'no run copy is left');
      for (const img of await rt.images.list()) await rt.images.remove(img.id, { force: true });
      assert.deepEqual(readdirSync(join(root, 'layers')).filter((n) => /^[0-9a-f]{64}$/.test(n)), [], 'no layer is left');
      assert.deepEqual(ourMounts(), mountsBefore, 'no mount is left on the host');
      if (loop) assert.deepEqual(loop.subvolumes(), [], 'no subvolume is left (containers\' snapshots, runs\' snapshots, the image\'s layer chain)');
      assert.deepEqual(daemonsUnder(root), [], 'no fuse-overlayfs daemon is left');
    });
  });
}
