/**
 * Same-process A/B of two checkouts' `ImageService` (by hand, root; a registry serving the
 * bench's images, e.g. the one `bench/pull-profile.ts` starts):
 *
 *   TMPDIR=/mnt/X node --import tsx bench/pull-ab.ts 127.0.0.1:PORT PAIRS BEFORE_ROOT AFTER_ROOT IMAGE...
 *
 * Both checkouts' `lib/image/image-service.ts` are imported into this one process (each loads
 * its own addon from its own build/), then per image and pair, in alternating order: an
 * untimed `sync`, a pull into a fresh state dir, `sync`, `unpack()` into a fresh dir, both
 * removed after; the first pair is a warm-up and is dropped. Printed per image and side:
 * medians (upper, of an even count) of pull, unpack, their sum, the process's CPU during the
 * pull (and its system part) and the main thread's (from /proc/self/task/<pid>/stat, 10 ms
 * ticks), then every pull time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Service = { pull(ref: string): Promise<unknown>; unpack(ref: string, dir: string, opts: { devices: boolean }): Promise<unknown> };
const [addr, pairs, beforeRoot, afterRoot, ...images] = process.argv.slice(2);
if (!addr || !pairs || !beforeRoot || !afterRoot || images.length === 0) throw new Error('usage: pull-ab.ts REGISTRY PAIRS BEFORE_ROOT AFTER_ROOT IMAGE...');
const roots: Record<string, string> = { before: beforeRoot, after: afterRoot };
const services: Record<string, new (state: string) => Service> = {};
for (const [side, root] of Object.entries(roots)) services[side] = (await import(`${root}/lib/image/image-service.ts`)).ImageService;

const mainThreadCpu = (): number => {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const work = mkdtempSync(join(tmpdir(), 'pull-ab-'));
try {
  for (const image of images) {
    const ref = `${addr}/bench/${image}:1`;
    const res: Record<string, Record<string, number[]>> = {};
    for (let i = 0; i <= Number(pairs); i++) {
      for (const side of i % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
        const state = join(work, `${side}-${i}-s`);
        const dest = join(work, `${side}-${i}-d`);
        execFileSync('sync');
        const svc = new services[side]!(state);
        const c0 = process.cpuUsage();
        const m0 = mainThreadCpu();
        const t0 = performance.now();
        await svc.pull(ref);
        const pull = performance.now() - t0;
        const cpu = process.cpuUsage(c0);
        const main = mainThreadCpu() - m0;
        execFileSync('sync');
        const t1 = performance.now();
        await svc.unpack(ref, dest, { devices: true });
        const unpack = performance.now() - t1;
        rmSync(state, { recursive: true, force: true });
        rmSync(dest, { recursive: true, force: true });
        if (i === 0) continue;
        const r = (res[side] ??= { pull: [], unpack: [], total: [], cpu: [], sys: [], main: [] });
        r.pull!.push(pull);
        r.unpack!.push(unpack);
        r.total!.push(pull + unpack);
        r.cpu!.push((cpu.user + cpu.system) / 1000);
        r.sys!.push(cpu.system / 1000);
        r.main!.push(main);
      }
    }
    for (const side of ['before', 'after']) {
      const r = res[side]!;
      console.log(image, side, Object.entries(r).map(([k, v]) => `${k} ${median(v).toFixed(0)}`).join(' '), 'pulls', JSON.stringify(r.pull!.map(Math.round)));
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
