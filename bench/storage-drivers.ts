/**
 * Container create + start + exit + remove, per storage driver, from a busybox rootfs (the
 * shape the vfs fallback pays for: a copy per container). Not one of `npm run bench`'s
 * workloads; run it by hand (root, quiet machine) when a driver changes:
 *
 *   node --import tsx bench/storage-drivers.ts [runs=9]
 *
 * Prints the median milliseconds of each phase per driver (overlay, fuse-overlayfs when
 * installed with /dev/fuse, vfs) and each one's ratio to overlay.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../lib/index.js';
import type { StorageDriverName } from '../lib/storage/driver.js';
import { makeBusyboxRootfs, makeTempDir } from './fixtures.js';

const runs = Number(process.argv[2] ?? 9);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(driver: StorageDriverName, rootfs: string, dir: string): Promise<{ create: number; start: number; remove: number }> {
  const rt = await Runtime.open({ root: join(dir, `state-${driver}`), storageDriver: driver });
  const create: number[] = [];
  const start: number[] = [];
  const remove: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      let t = performance.now();
      const c = await rt.containers.create({ image: { rootfs }, cmd: ['true'] });
      create.push(performance.now() - t);
      t = performance.now();
      await c.start();
      await c.wait();
      start.push(performance.now() - t);
      t = performance.now();
      await c.remove();
      remove.push(performance.now() - t);
    }
  } finally {
    await rt.close();
  }
  return { create: median(create), start: median(start), remove: median(remove) };
}

const dir = makeTempDir();
try {
  const rootfs = join(dir, 'rootfs');
  makeBusyboxRootfs(rootfs);
  const results = new Map<StorageDriverName, { create: number; start: number; remove: number }>();
  const drivers: StorageDriverName[] = ['overlay', ...(existsSync('/dev/fuse') && existsSync('/usr/bin/fuse-overlayfs') ? ['fuse-overlayfs' as const] : []), 'vfs'];
  for (const driver of drivers) results.set(driver, await measure(driver, rootfs, dir));
  const o = results.get('overlay')!;
  const others = drivers.filter((d) => d !== 'overlay');
  console.log(`| phase (median of ${runs}, ms) | ${drivers.join(' | ')} | ${others.map((d) => `${d}/overlay`).join(' | ')} |`);
  console.log(`| --- |${' --- |'.repeat(drivers.length + others.length)}`);
  for (const k of ['create', 'start', 'remove'] as const) {
    const cells = drivers.map((d) => results.get(d)![k].toFixed(1));
    const ratios = others.map((d) => (results.get(d)![k] / o[k]).toFixed(2));
    console.log(`| ${k} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
