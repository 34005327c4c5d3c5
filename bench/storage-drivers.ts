/**
 * Container create + start + exit + remove, per storage driver, from a busybox image imported
 * into the store (the shape the vfs fallback pays for: a copy per container; btrfs: a snapshot).
 * Not one of `npm run bench`'s workloads; run it by hand (root, quiet machine) when a driver
 * changes:
 *
 *   node --import tsx bench/storage-drivers.ts [runs=9] [btrfs dir]
 *
 * With a directory on btrfs (a loop-mounted `mkfs.btrfs` image will do), every driver's state
 * directory is made there, so the three are compared on the same filesystem; without one,
 * overlay and vfs run in a temp directory. The first btrfs container of the image also builds
 * its layer chain: that one is printed on its own, the medians are of the rest.
 * fuse-overlayfs runs too when installed with /dev/fuse.
 * Prints the median milliseconds of each phase per driver and each one's ratio to overlay.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../lib/index.js';
import type { StorageDriverName } from '../lib/storage/driver.js';
import { makeBusyboxRootfs, makeTempDir } from './fixtures.js';

const runs = Number(process.argv[2] ?? 9);
const btrfsDir = process.argv[3];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Phases = { create: number; start: number; remove: number; first: number };

async function measure(driver: StorageDriverName, rootfsTar: string, dir: string): Promise<Phases> {
  const rt = await Runtime.open({ root: join(dir, `state-${driver}`), storageDriver: driver });
  const create: number[] = [];
  const start: number[] = [];
  const remove: number[] = [];
  try {
    const image = (await rt.images.import(rootfsTar)).id;
    for (let i = 0; i <= runs; i++) {
      let t = performance.now();
      const c = await rt.containers.create({ image, cmd: ['true'] });
      create.push(performance.now() - t);
      t = performance.now();
      await c.start();
      await c.wait();
      start.push(performance.now() - t);
      t = performance.now();
      await c.remove();
      remove.push(performance.now() - t);
    }
    for (const img of await rt.images.list()) await rt.images.remove(img.id, { force: true });
  } finally {
    await rt.close();
  }
  const first = create.shift()!;
  start.shift();
  remove.shift();
  return { create: median(create), start: median(start), remove: median(remove), first };
}

const dir = makeTempDir();
const stateDir = btrfsDir ? mkdtempSync(join(btrfsDir, 'berth-bench-')) : dir;
try {
  const rootfs = join(dir, 'rootfs');
  makeBusyboxRootfs(rootfs);
  const tar = join(dir, 'rootfs.tar');
  execFileSync('tar', ['-cf', tar, '-C', rootfs, '.']);
  const fuse = existsSync('/dev/fuse') && existsSync('/usr/bin/fuse-overlayfs');
  const drivers: StorageDriverName[] = ['overlay', ...(fuse ? ['fuse-overlayfs' as const] : []), 'vfs', ...(btrfsDir ? ['btrfs' as const] : [])];
  const results = new Map<StorageDriverName, Phases>();
  for (const driver of drivers) results.set(driver, await measure(driver, tar, stateDir));
  const o = results.get('overlay')!;
  console.log(`| phase (median of ${runs}, ms) | ${drivers.join(' | ')} | ${drivers.slice(1).map((d) => `${d}/overlay`).join(' | ')} |`);
  console.log(`| --- | ${drivers.map(() => '---').join(' | ')} | ${drivers.slice(1).map(() => '---').join(' | ')} |`);
  for (const k of ['create', 'start', 'remove'] as const) {
    console.log(`| ${k} | ${drivers.map((d) => results.get(d)![k].toFixed(1)).join(' | ')} | ${drivers.slice(1).map((d) => (results.get(d)![k] / o[k]).toFixed(2)).join(' | ')} |`);
  }
  console.log(`first create of the image (btrfs: builds the layer chain): ${drivers.map((d) => `${d} ${results.get(d)!.first.toFixed(1)} ms`).join(', ')}`);
} finally {
  if (btrfsDir) rmSync(stateDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
