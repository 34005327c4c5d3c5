/**
 * Warm pools (issue 18 §1): `pool.acquire()` + `sandbox.run(['/bin/true'])` + `release()` on a
 * pool of prepared sandboxes, beside berth's own back-to-back `run()` and crun, in one run.
 */
import { loadRuntime, NotAvailable } from '../berth.js';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import type { WorkloadResult } from '../report.js';
import type { Subject } from '../subject.js';
import { startSubjects } from './start-latency.js';

/** The slice of the pool API the benchmark calls, described structurally (see bench/berth.ts). */
interface PooledSandbox {
  run(argv: string[]): Promise<{ exitCode: number; stderr?: string }>;
  release(): Promise<void>;
}
interface Pool {
  acquire(): Promise<PooledSandbox>;
  close(): Promise<void>;
}
interface PoolRuntime {
  pool?(options: object): Promise<Pool>;
  close(): Promise<void>;
}

const POOL_SIZE = 4;

/** `acquire()` + `run(['/bin/true'])` + `release()` on a pool of `POOL_SIZE` (also the start-isolated workload's gapped row). */
export function berthPool(ctx: BenchContext): Subject {
  let rt: PoolRuntime | undefined;
  let pool: Pool | undefined;
  return {
    name: 'berth pool',
    describe: `\`pool.acquire()\` + \`sb.run(['/bin/true'])\` + \`sb.release()\` on \`rt.pool({ source: { rootfs }, size: ${POOL_SIZE} })\`: call to settled release`,
    prepare: async () => {
      const Runtime = await loadRuntime();
      rt = (await Runtime.open()) as PoolRuntime;
      if (typeof rt.pool !== 'function') throw new NotAvailable('berth has no rt.pool() yet');
      pool = await rt.pool({ source: { rootfs: ctx.fx.rootfs }, size: POOL_SIZE });
    },
    once: async () => {
      const t0 = process.hrtime.bigint();
      const sb = await pool!.acquire();
      const r = await sb.run(['/bin/true']);
      await sb.release();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${(r.stderr ?? '').trim()}`);
      return ms;
    },
    dispose: async () => {
      await pool?.close();
      await rt?.close();
    },
  };
}

export async function poolLatency(ctx: BenchContext): Promise<WorkloadResult> {
  const { runs, warmup } = ctx.settings;
  ctx.log(`pool: ${warmup} warm-up + ${runs} runs per tool, alternating`);
  const peers = startSubjects(ctx).filter((s) => s.name === 'berth rootfs' || s.name === 'crun' || s.name === 'bwrap');
  const subjects = ctx.pick([berthPool(ctx), ...peers]);
  const rows = await alternate(subjects, { runs, warmup, log: ctx.log });
  return {
    id: 'pool',
    title: "Pooled sandbox: acquire + run(['/bin/true']) + release vs a fresh start",
    unit: 'ms',
    better: 'lower',
    rows,
    baseline: 'berth rootfs',
    notes: [
      `The pool keeps ${POOL_SIZE} sandboxes prepared (cgroup, namespaces, rootfs overlay, PID 1 parked) and refills in the background, also while the other rows run; release() (kill, cgroup removal) is inside the timed call.`,
      'Ratios against `berth rootfs`: berth\'s own back-to-back `run()` in the same run.',
    ],
  };
}
