/**
 * A pooled `/bin/true` before and after a change, in one process and the same minutes: this
 * checkout's `rt.pool()`, another checkout's (`--lib`, e.g. a `git archive` of the commit before,
 * with `build/` and `node_modules/` linked in), and this checkout's `rt.run()` back to back, one
 * round each in alternating order. On a shared machine the load moves between runs; within one
 * interleaved run the three rows share it, so their ratios are what to read.
 *
 *   node --import tsx bench/pool-compare.ts [rounds=100] [gapMs=0] --lib /path/to/before/lib
 *
 * Each pool has `size: 4` and refills in the background, as in the `pool` workload. Prints the
 * median and minimum of each row, the ratios to `run()` and the load average.
 * @module
 */
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxRootfs, makeTempDir } from './fixtures.js';

interface Sandbox {
  run(argv: string[]): Promise<{ exitCode: number }>;
  release(): Promise<void>;
}
interface Pool {
  acquire(): Promise<Sandbox>;
  close(): Promise<void>;
}
interface Rt {
  pool(o: object): Promise<Pool>;
  run(source: object, argv: string[]): Promise<{ exitCode: number }>;
  close(): Promise<void>;
}
type Lib = { Runtime: { open(): Promise<Rt> } };

const args = process.argv.slice(2);
const at = args.indexOf('--lib');
if (at < 0 || !args[at + 1]) throw new Error('usage: pool-compare.ts [rounds] [gapMs] --lib DIR (the other checkout\'s lib/)');
const otherLib = resolve(args.splice(at, 2)[1]!);
const rounds = Number(args[0] ?? 100);
const gap = Number(args[1] ?? 0);
if (!(rounds > 0 && rounds <= 10_000 && gap >= 0 && gap <= 10_000)) throw new Error('rounds 1..10000, gapMs 0..10000');

const thisLib = fileURLToPath(new URL('../lib/index.ts', import.meta.url));
const After = (await import(thisLib)) as Lib;
const Before = (await import(join(otherLib, 'index.ts'))) as Lib;
const dir = makeTempDir();
const rootfs = join(dir, 'rootfs');
makeBusyboxRootfs(rootfs);
const rtAfter = await After.Runtime.open();
const rtBefore = await Before.Runtime.open();
try {
  const pools: Record<string, Pool> = {
    after: await rtAfter.pool({ source: { rootfs }, size: 4 }),
    before: await rtBefore.pool({ source: { rootfs }, size: 4 }),
  };
  const times: Record<string, number[]> = { after: [], before: [], run: [] };
  const one = async (row: string): Promise<number> => {
    const t0 = performance.now();
    if (row === 'run') {
      const r = await rtAfter.run({ rootfs }, ['/bin/true']);
      if (r.exitCode !== 0) throw new Error(`run(): exit ${r.exitCode}`);
    } else {
      const sb = await pools[row]!.acquire();
      const r = await sb.run(['/bin/true']);
      await sb.release();
      if (r.exitCode !== 0) throw new Error(`${row}: exit ${r.exitCode}`);
    }
    return performance.now() - t0;
  };
  const load0 = loadavg()[0]!;
  for (let i = 0; i < 5; i++) for (const row of ['after', 'before', 'run']) await one(row);
  for (let i = 0; i < rounds; i++) {
    for (const row of i % 2 === 0 ? ['before', 'run', 'after'] : ['after', 'before', 'run']) {
      times[row]!.push(await one(row));
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
    }
  }
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const run = median(times.run!);
  for (const [row, v] of Object.entries(times)) {
    console.log(`${row.padEnd(6)} median ${median(v).toFixed(2)} ms  min ${Math.min(...v).toFixed(2)} ms  vs run() ${(median(v) / run).toFixed(2)}x`);
  }
  console.log(`load average ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}, ${rounds} rounds, gap ${gap} ms`);
  await pools.after!.close();
  await pools.before!.close();
} finally {
  await rtAfter.close();
  await rtBefore.close();
  rmSync(dir, { recursive: true, force: true });
}
