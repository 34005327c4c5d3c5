/**
 * What a round costs the machine, not only how long it takes: back-to-back `run()` rounds and
 * back-to-back pooled rounds (`acquire()` + `run(['/bin/true'])` + `release()`, `size: 4`), in
 * blocks that alternate, with the wall time and the CPU time per round of this process (user,
 * system: Node's threads, the spawn's CLONE_VM child until its exec) and of its reaped
 * children (the sandboxes' processes), from /proc/self/stat. Kernel worker threads (network
 * namespace cleanup, RCU) are not in it, so it is a lower bound of the machine's work.
 *
 *   node --import tsx bench/pool-cpu.ts [rounds=300] [blocks=2]
 *
 * Why it matters (docs/design/pools.md, "The refill beside the request"): in a back-to-back
 * loop each pooled round also prepares and destroys one replacement, so on a machine with N
 * CPUs a pooled round cannot be shorter than its CPU time / N.
 * @module
 */
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../lib/index.js';
import { makeBusyboxRootfs, makeTempDir } from './fixtures.js';

const rounds = Number(process.argv[2] ?? 300);
const blocks = Number(process.argv[3] ?? 2);
if (!(Number.isInteger(rounds) && rounds > 0 && rounds <= 100_000 && Number.isInteger(blocks) && blocks > 0 && blocks <= 100)) {
  throw new Error('usage: pool-cpu.ts [rounds 1..100000] [blocks 1..100]');
}

/** utime, stime, cutime, cstime of this process, in ms (clock ticks of 10 ms). */
function cpuMs(): number[] {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // Fields 14–17 of proc(5), counted from the state (field 3) at index 0.
  return [11, 12, 13, 14].map((i) => Number(fields[i]) * 10);
}

const dir = makeTempDir();
const rootfs = join(dir, 'rootfs');
makeBusyboxRootfs(rootfs);
const rt = await Runtime.open();
try {
  const pool = await rt.pool({ source: { rootfs }, size: 4 });
  const once = async (kind: string): Promise<void> => {
    if (kind === 'run') {
      await rt.run({ rootfs }, ['/bin/true']);
      return;
    }
    const sb = await pool.acquire();
    await sb.run(['/bin/true']);
    await sb.release();
  };
  console.log('kind  wall/round  CPU/round: self user  self sys  children user  children sys  total  (ms; load)');
  for (let b = 0; b < blocks; b++) {
    for (const kind of ['run', 'pool']) {
      for (let i = 0; i < 20; i++) await once(kind);
      const before = cpuMs();
      const t0 = performance.now();
      for (let i = 0; i < rounds; i++) await once(kind);
      const wall = (performance.now() - t0) / rounds;
      const per = cpuMs().map((v, i) => (v - before[i]!) / rounds);
      const total = per.reduce((a, v) => a + v, 0);
      console.log(`${kind.padEnd(5)} ${wall.toFixed(2).padStart(10)}  ${per.map((v) => v.toFixed(2).padStart(12)).join('')}  ${total.toFixed(2).padStart(6)}  (${loadavg()[0]!.toFixed(1)})`);
    }
  }
  await pool.close();
} finally {
  await rt.close();
  rmSync(dir, { recursive: true, force: true });
}
