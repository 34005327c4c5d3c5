import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadRuntime } from '../berth.js';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import { MULTI_LAYERS } from '../registry.js';
import { spawnOk, spawnTimed } from '../spawn-timed.js';
import type { Subject } from '../subject.js';
import type { WorkloadResult } from '../report.js';

/**
 * Pull + unpack of the 4-layer `bench/multi:1` from the loopback registry, from an empty cache
 * every run (the destination is removed, untimed, after each run).
 */
function skopeoUmoci(ctx: BenchContext): Subject {
  let n = 0;
  return {
    name: 'skopeo + umoci',
    describe: '`skopeo copy docker://… oci:<dir>:multi` then `umoci unpack --image <dir>:multi <bundle>`, both timed',
    prepare: async () => {
      for (const p of ['skopeo', 'umoci']) ctx.need(p);
      await ctx.registry();
    },
    once: async () => {
      const reg = await ctx.registry();
      const work = join(ctx.fx.dir, 'pull', `su-${++n}`);
      mkdirSync(work, { recursive: true });
      try {
        const a = await spawnOk(['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${reg.ref('multi')}`, `oci:${join(work, 'layout')}:multi`], { timeoutMs: 300_000 });
        const b = await spawnOk(['umoci', 'unpack', '--image', `${join(work, 'layout')}:multi`, join(work, 'bundle')], { timeoutMs: 300_000 });
        return a + b;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  };
}

function enginePull(ctx: BenchContext, name: 'docker' | 'podman'): Subject {
  let argv: string[] = [];
  return {
    name,
    describe: `\`${name} pull${name === 'podman' ? ' --tls-verify=false' : ''} 127.0.0.1:<port>/bench/multi:1\` (pull and unpack into its store); \`${name} rmi\` after, untimed`,
    prepare: async () => {
      argv = (name === 'docker' ? await ctx.docker() : await ctx.podman()).argv;
      await ctx.registry();
    },
    once: async () => {
      const ref = (await ctx.registry()).ref('multi');
      const ms = await spawnOk([...argv, 'pull', ...(name === 'podman' ? ['--tls-verify=false'] : []), ref], { timeoutMs: 300_000 });
      await spawnTimed([...argv, 'rmi', '-f', ref], { timeoutMs: 60_000 });
      return ms;
    },
  };
}

/** berth: `Runtime.open({ root })` on a fresh state dir, `images.pull(ref)`. Skipped until that API exists. */
function berthPull(ctx: BenchContext): Subject {
  let n = 0;
  let Runtime: Awaited<ReturnType<typeof loadRuntime>> | undefined;
  return {
    name: 'berth',
    describe: '`(await Runtime.open({ root: <fresh> })).images.pull(ref)`: fetch, verify and unpack every layer',
    prepare: async () => {
      Runtime = await loadRuntime();
      await ctx.registry();
    },
    once: async () => {
      const ref = (await ctx.registry()).ref('multi');
      const stateDir = join(ctx.fx.dir, 'pull', `berth-${++n}`);
      try {
        const t0 = process.hrtime.bigint();
        const rt = (await Runtime!.open({ root: stateDir })) as { images: { pull(r: string): Promise<unknown> }; close?(): Promise<void> };
        await rt.images.pull(ref);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        await rt.close?.();
        return ms;
      } finally {
        rmSync(stateDir, { recursive: true, force: true });
      }
    },
  };
}

export async function pullUnpack(ctx: BenchContext): Promise<WorkloadResult> {
  const runs = ctx.settings.pullRuns;
  ctx.log(`pull + unpack: 1 warm-up + ${runs} runs per tool, alternating`);
  const rows = await alternate(ctx.pick([berthPull(ctx), skopeoUmoci(ctx), enginePull(ctx, 'podman'), enginePull(ctx, 'docker')]), {
    runs,
    warmup: 1,
    log: ctx.log,
  });
  const mib = (MULTI_LAYERS.smallFiles * MULTI_LAYERS.smallFileBytes + MULTI_LAYERS.bigFiles * MULTI_LAYERS.bigFileBytes) / 2 ** 20;
  return {
    id: 'pull',
    title: 'Pull + unpack: 4-layer image from a loopback registry, cold',
    unit: 'ms',
    better: 'lower',
    baseline: 'skopeo + umoci',
    rows,
    notes: [
      `Image \`bench/multi:1\`: busybox rootfs layer, ${MULTI_LAYERS.smallFiles} × ${MULTI_LAYERS.smallFileBytes} B files, ${MULTI_LAYERS.bigFiles} × ${MULTI_LAYERS.bigFileBytes >> 20} MiB files, one tiny file (≈ ${mib.toFixed(0)} MiB of random, incompressible data), served by Debian's docker-registry on 127.0.0.1.`,
      'crun does not pull images, so the ratio here is to skopeo + umoci, the pull + unpack pair crun users reach for.',
    ],
  };
}
