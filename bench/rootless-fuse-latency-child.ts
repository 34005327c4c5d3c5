/**
 * The user's side of bench/rootless-fuse-latency.ts: one Runtime per driver (state directories
 * under the user's home), `run({ rootfs }, ['true'])` alternating between them after a warm-up,
 * each timed from the call to the settled promise. Prints one JSON line: samples by driver.
 * Usage: rootless-fuse-latency-child.ts <rootfs dir> <runs>
 */
import { join } from 'node:path';
import { homedir } from 'node:os';
import { Runtime } from '../lib/index.js';

const [rootfs, runsText] = process.argv.slice(2) as [string, string];
const runs = Number(runsText);
const drivers = ['overlay', 'fuse-overlayfs', 'vfs'] as const;
const runtimes = await Promise.all(drivers.map((d) => Runtime.open({ storageDriver: d, root: join(homedir(), `state-${d}`) })));
const samples: Record<string, number[]> = Object.fromEntries(drivers.map((d) => [d, []]));
try {
  for (let i = -3; i < runs; i++) {
    for (const [n, rt] of runtimes.entries()) {
      const t = performance.now();
      const r = await rt.run({ rootfs }, ['true']);
      const ms = performance.now() - t;
      if (r.exitCode !== 0) throw new Error(`${drivers[n]}: exit ${r.exitCode}: ${r.stderr}`);
      if (i >= 0) samples[drivers[n]!]!.push(Math.round(ms * 10) / 10);
    }
  }
} finally {
  for (const rt of runtimes) await rt.close();
}
console.log(JSON.stringify(samples));
