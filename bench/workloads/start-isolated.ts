/**
 * Isolated starts (issue 18 §3): a start that follows a quiet spell pays what a back-to-back one
 * does not. On cgroup v1 the `cgroup.procs` write that moves a new container into its cgroup
 * takes the kernel's threadgroup rwsem for writing, which waits for an RCU grace period unless
 * a migration happened recently. Each gapped row sleeps 200 ms before its timed start (the sleep
 * is not timed); the back-to-back row runs right after the previous subject of the rotation.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import type { WorkloadResult } from '../report.js';
import type { Subject } from '../subject.js';
import { berthPool } from './pool.js';
import { startSubjects } from './start-latency.js';

const GAP_MS = 200;

/** `subject` preceded by an untimed quiet spell of `GAP_MS`. */
function gapped(subject: Subject): Subject {
  return {
    ...subject,
    name: `${subject.name}, ${GAP_MS} ms gap`,
    describe: `${subject.describe}, after ${GAP_MS} ms without a start (not timed)`,
    once: async () => {
      await sleep(GAP_MS);
      return subject.once();
    },
  };
}

export async function startIsolated(ctx: BenchContext): Promise<WorkloadResult> {
  const { runs, warmup } = ctx.settings;
  const peers = startSubjects(ctx);
  const named = (name: string): Subject => peers.find((s) => s.name === name)!;
  // Fresh subject objects for the gapped rows: each keeps its own prepared state.
  const again = (name: string): Subject => startSubjects(ctx).find((s) => s.name === name)!;
  const subjects = ctx.pick([
    named('berth rootfs'),
    gapped(again('berth rootfs')),
    gapped(berthPool(ctx)),
    named('crun'),
    gapped(again('crun')),
    gapped(again('bwrap')),
  ]);
  ctx.log(`start-isolated: ${warmup} warm-up + ${runs} runs per tool, alternating, ${GAP_MS} ms gaps where named`);
  const rows = await alternate(subjects, { runs, warmup, log: ctx.log });
  return {
    id: 'start-isolated',
    title: `Isolated starts: \`/bin/true\` back to back and after ${GAP_MS} ms of quiet`,
    unit: 'ms',
    better: 'lower',
    rows,
    baseline: 'berth rootfs',
    notes: [
      `A gapped row sleeps ${GAP_MS} ms (untimed) before each timed start; the others run as the rotation comes, right after another subject's start.`,
      'Other processes of the machine start containers too: a "quiet" spell is quiet for this process only.',
      'Ratios against `berth rootfs`: berth\'s own back-to-back `run()` in the same run.',
    ],
  };
}
