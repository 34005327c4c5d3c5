import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadRuntime } from '../berth.js';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import { PULL_IMAGES, type PullImageName } from '../pull-images.js';
import { MULTI_LAYERS, type LoopbackRegistry } from '../registry.js';
import { spawnOk, spawnTimed } from '../spawn-timed.js';
import type { Row, Subject } from '../subject.js';
import type { WorkloadResult } from '../report.js';

type ImageName = 'multi' | PullImageName;

/**
 * Every timed subject starts with an untimed `sync`: berth makes what it pulled durable
 * (syncfs), umoci and the engines do not, and without it berth would also pay for writing
 * back what the subject before it left dirty.
 */
async function settle(): Promise<void> {
  await spawnOk(['sync'], { timeoutMs: 300_000 });
}

/** `skopeo copy` + `umoci unpack` of the image into a fresh dir (both timed), removed untimed after. */
function skopeoUmoci(ctx: BenchContext, reg: () => Promise<LoopbackRegistry>, image: ImageName): Subject {
  let n = 0;
  return {
    name: 'skopeo + umoci',
    describe: '`skopeo copy docker://… oci:<dir>:t` then `umoci unpack --image <dir>:t <bundle>`, both timed',
    prepare: async () => {
      for (const p of ['skopeo', 'umoci']) ctx.need(p);
      await reg();
    },
    once: async () => {
      const ref = (await reg()).ref(image);
      const work = join(ctx.fx.dir, 'pull', `su-${++n}`);
      mkdirSync(work, { recursive: true });
      try {
        await settle();
        const a = await spawnOk(['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(work, 'layout')}:t`], { timeoutMs: 600_000 });
        const b = await spawnOk(['umoci', 'unpack', '--image', `${join(work, 'layout')}:t`, join(work, 'bundle')], { timeoutMs: 600_000 });
        return a + b;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  };
}

function enginePull(ctx: BenchContext, reg: () => Promise<LoopbackRegistry>, image: ImageName, name: 'docker' | 'podman'): Subject {
  let argv: string[] = [];
  return {
    name,
    describe: `\`${name} pull${name === 'podman' ? ' --tls-verify=false' : ''} 127.0.0.1:<port>/bench/${image}:1\` (pull and unpack into its store); \`${name} rmi\` after, untimed`,
    prepare: async () => {
      argv = (name === 'docker' ? await ctx.docker() : await ctx.podman()).argv;
      await reg();
    },
    once: async () => {
      const ref = (await reg()).ref(image);
      await settle();
      const ms = await spawnOk([...argv, 'pull', ...(name === 'podman' ? ['--tls-verify=false'] : []), ref], { timeoutMs: 600_000 });
      await spawnTimed([...argv, 'rmi', '-f', ref], { timeoutMs: 120_000 });
      return ms;
    },
  };
}

/**
 * berth: `Runtime.open({ root })` on a fresh state dir, `images.pull(ref)`, then
 * `images.unpack(ref, dir)` into a fresh dir. The row is pull + unpack; the pull alone, from
 * the same runs, becomes the row `berth pull` (`pullSamples`).
 */
function berthPullUnpack(ctx: BenchContext, reg: () => Promise<LoopbackRegistry>, image: ImageName, pullSamples: number[]): Subject {
  let n = 0;
  let Runtime: Awaited<ReturnType<typeof loadRuntime>> | undefined;
  type Rt = { images: { pull(r: string): Promise<unknown>; unpack(r: string, d: string): Promise<void> }; close?(): Promise<void> };
  return {
    name: 'berth pull + unpack',
    describe: '`(await Runtime.open({ root: <fresh> })).images.pull(ref)` (fetch, verify and unpack every layer into the store, durable), then `images.unpack(ref, <fresh dir>)` (a flattened rootfs, like umoci\'s)',
    prepare: async () => {
      Runtime = await loadRuntime();
      await reg();
    },
    once: async () => {
      const ref = (await reg()).ref(image);
      const stateDir = join(ctx.fx.dir, 'pull', `berth-${++n}`);
      const dest = join(ctx.fx.dir, 'pull', `berth-rootfs-${n}`);
      try {
        await settle();
        const t0 = process.hrtime.bigint();
        const rt = (await Runtime!.open({ root: stateDir })) as Rt;
        await rt.images.pull(ref);
        const t1 = process.hrtime.bigint();
        await rt.images.unpack(ref, dest);
        const t2 = process.hrtime.bigint();
        await rt.close?.();
        pullSamples.push(Number(t1 - t0) / 1e6);
        return Number(t2 - t0) / 1e6;
      } finally {
        rmSync(stateDir, { recursive: true, force: true });
        rmSync(dest, { recursive: true, force: true });
      }
    },
  };
}

const TITLES: Record<ImageName, string> = {
  multi: 'Pull + unpack: 4-layer image from a loopback registry, cold',
  layers15: 'Pull + unpack: 15-layer, 23 MB image built by docker build, cold',
  single100: 'Pull + unpack: single-layer, 100 MiB image built by docker build, cold',
};

function imageNote(image: ImageName): string {
  if (image !== 'multi') return `Image \`bench/${image}:1\`: ${PULL_IMAGES[image]}; pushed by \`docker push\` to Debian's docker-registry on 127.0.0.1.`;
  const mib = (MULTI_LAYERS.smallFiles * MULTI_LAYERS.smallFileBytes + MULTI_LAYERS.bigFiles * MULTI_LAYERS.bigFileBytes) / 2 ** 20;
  return `Image \`bench/multi:1\`: busybox rootfs layer, ${MULTI_LAYERS.smallFiles} × ${MULTI_LAYERS.smallFileBytes} B files, ${MULTI_LAYERS.bigFiles} × ${MULTI_LAYERS.bigFileBytes >> 20} MiB files, one tiny file (≈ ${mib.toFixed(0)} MiB of random, incompressible data), built by umoci, pushed by skopeo.`;
}

/**
 * Pull (+ unpack) of three images from the loopback registry, from an empty cache every run:
 * the 4-layer umoci image, and the docker-built 15-layer and 100 MiB single-layer images
 * (bench/pull-images.ts). One table per image; ratios to skopeo + umoci.
 */
export async function pullUnpack(ctx: BenchContext): Promise<WorkloadResult[]> {
  const runs = ctx.settings.pullRuns;
  const out: WorkloadResult[] = [];
  for (const image of ['multi', 'layers15', 'single100'] as const) {
    ctx.log(`pull ${image}: 1 warm-up + ${runs} runs per tool, alternating`);
    const reg = image === 'multi' ? () => ctx.registry() : () => ctx.pullImages();
    const pullSamples: number[] = [];
    const berth = berthPullUnpack(ctx, reg, image, pullSamples);
    const rows = await alternate(ctx.pick([berth, skopeoUmoci(ctx, reg, image), enginePull(ctx, reg, image, 'podman'), enginePull(ctx, reg, image, 'docker')]), {
      runs,
      warmup: 1,
      log: ctx.log,
    });
    const both = rows.find((r) => r.tool === berth.name);
    if (both) {
      // The warm-up's pull is not a sample (alternate() drops the warm-up's result too).
      const pull: Row = { tool: 'berth pull', describe: 'the `images.pull(ref)` part of the same runs (no `unpack`)', samples: pullSamples.slice(pullSamples.length - both.samples.length), failures: 0 };
      if (both.skipped) pull.skipped = both.skipped;
      rows.splice(rows.indexOf(both), 0, pull);
    }
    out.push({
      id: image === 'multi' ? 'pull' : `pull-${image}`,
      title: TITLES[image],
      unit: 'ms',
      better: 'lower',
      baseline: 'skopeo + umoci',
      rows,
      notes: [
        imageNote(image),
        'Every run starts cold and with an untimed `sync`. crun does not pull images, so the ratio here is to skopeo + umoci, the pull + unpack pair crun users reach for. Targets (issue 17): berth pull ≤ 0.5×, berth pull + unpack ≤ 0.6×.',
      ],
    });
  }
  return out;
}
