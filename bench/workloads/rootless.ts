import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { berthRunOnce, loadBerth } from '../berth.js';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import type { WorkloadResult } from '../report.js';
import type { Row } from '../subject.js';
import { RootlessUser, rootlessSkipReason } from '../../test/helpers/rootless-user.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), '..', 'rootless-runner.ts');

/**
 * Rootless start latency (issue 15): `run({ rootfs }, ['/bin/true'])` as an unprivileged user
 * (made for the run with a subordinate range, removed after), beside bwrap and rootless podman
 * as the same user, and rootful berth in this process as the reference the target is set
 * against (rootless ≤ 1.5× rootful, ≤ 0.1× rootless podman).
 */
export async function rootlessLatency(ctx: BenchContext): Promise<WorkloadResult> {
  const { runs, warmup } = ctx.settings;
  const rootful = await alternate(
    [
      {
        name: 'berth rootful',
        describe: "`run({ rootfs }, ['/bin/true'])` as root, the same workload (reference for the ratios)",
        prepare: async () => void (await loadBerth()),
        once: async () => berthRunOnce(await loadBerth(), { rootfs: ctx.fx.rootfs }, ['/bin/true']),
      },
    ],
    { runs, warmup, log: ctx.log },
  );
  let rows: Row[] = [];
  const skip = rootlessSkipReason();
  if (skip) {
    rows = ['berth rootless', 'bwrap rootless', 'podman rootless'].map((tool) => ({ tool, describe: '', samples: [], failures: 0, skipped: skip }));
  } else {
    const user = RootlessUser.create({ prefix: 'berth-bench' });
    try {
      ctx.log(`rootless: as ${user.name} (uid ${user.uid}), ${warmup} warm-up + ${runs} runs per tool, alternating`);
      const r = await user.runNode(RUNNER, [String(runs), String(warmup), 'all'], { guardMs: 30 * 60_000 });
      if (r.code !== 0) throw new Error(`rootless runner failed (${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      rows = JSON.parse(r.stdout.trim().split('\n').pop()!) as Row[];
    } finally {
      user.remove();
    }
  }
  return {
    id: 'rootless',
    title: 'Rootless start latency: `/bin/true` as an unprivileged user',
    unit: 'ms',
    better: 'lower',
    baseline: 'berth rootful',
    rows: [...rootful, ...rows],
    notes: [
      `${runs} measured runs per tool after ${warmup} warm-up runs. The rootless rows alternate among themselves in one process of the bench user; berth rootful is measured just before, in the harness (root).`,
      'The bench user is created with useradd (65536 subordinate ids, newuidmap/newgidmap) and removed afterwards; podman uses its own rootless storage and an image imported from the same busybox rootfs.',
      'Targets (issue 15): berth rootless ≤ 1.5× berth rootful, and ≤ 0.1× podman rootless.',
    ],
  };
}
