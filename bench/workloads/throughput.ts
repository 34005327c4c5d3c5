import type { BenchContext } from '../context.js';
import { throughput } from '../measure.js';
import type { WorkloadResult } from '../report.js';
import { startSubjects } from './start-latency.js';

/** Runs per second of `/bin/true` with 1 and 2 concurrent callers, one table per concurrency. */
export async function runsPerSecond(ctx: BenchContext): Promise<WorkloadResult[]> {
  const { throughputMs, throughputRounds } = ctx.settings;
  const out: WorkloadResult[] = [];
  for (const concurrency of [1, 2]) {
    ctx.log(`runs/s, ${concurrency} worker(s): ${throughputRounds} rounds of ${throughputMs} ms per tool, alternating`);
    const rows = await throughput(ctx.pick(startSubjects(ctx)), {
      concurrency,
      durationMs: throughputMs,
      maxRuns: 5000,
      rounds: throughputRounds,
      log: ctx.log,
    });
    out.push({
      id: `throughput-${concurrency}`,
      title: `Runs per second: \`/bin/true\`, ${concurrency} concurrent worker${concurrency > 1 ? 's' : ''}`,
      unit: 'runs/s',
      better: 'higher',
      rows,
      notes: [
        `Each sample: ${concurrency} worker(s) start runs back to back for ${throughputMs} ms (at most 5000 runs); rate = completed runs ÷ elapsed wall time. ${throughputRounds} samples per tool, alternating tools; with so few samples p99 is simply the largest one.`,
      ],
    });
  }
  return out;
}
