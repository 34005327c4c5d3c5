import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRuntime } from '../berth.js';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import { spawnOk, spawnTimed } from '../spawn-timed.js';
import type { Subject } from '../subject.js';
import type { WorkloadResult } from '../report.js';

/** Small files in the build context, as the benchmark asks (~500). */
const CONTEXT_FILES = 500;

/**
 * The build context: 500 small files under src/ and a two-stage Dockerfile (WORKDIR, COPY of
 * the tree, two RUN steps, COPY --from) from the registry's busybox image.
 */
function makeContext(dir: string, base: string): string {
  const ctx = join(dir, 'build-context');
  for (let i = 0; i < CONTEXT_FILES; i++) {
    const sub = join(ctx, 'src', `d${i % 20}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.txt`), `file ${i}\n`.repeat(1 + (i % 7)));
  }
  writeFileSync(join(ctx, '.dockerignore'), '*.log\n');
  writeFileSync(join(ctx, 'Dockerfile'), [
    `FROM ${base} AS build`,
    'WORKDIR /src',
    'COPY src/ ./',
    'RUN cat d*/* | wc -c > /size.txt',
    'RUN mkdir -p /out && cp -r /src /out/app && echo built > /out/stamp',
    `FROM ${base}`,
    'COPY --from=build /out /app',
    'COPY --from=build /size.txt /app/',
    'CMD ["/bin/sh"]',
    '',
  ].join('\n'));
  return ctx;
}

interface BuildTool {
  name: string;
  describe: string;
  prepare(): Promise<void>;
  /** One build; `cold`: nothing cached and the base image not in the tool's store (reset untimed). */
  build(cold: boolean): Promise<number>;
}

function berthTool(ctx: BenchContext, context: () => string, base: () => string): BuildTool {
  let Runtime: Awaited<ReturnType<typeof loadRuntime>> | undefined;
  let n = 0;
  const warmRoot = join(ctx.fx.dir, 'build', 'berth-warm');
  type Rt = { images: { build(o: Record<string, unknown>): Promise<unknown> } };
  return {
    name: 'berth',
    describe: '`(await Runtime.open({ root })).images.build({ context })`; cold: a fresh state dir (pull included), warm: the same one again',
    prepare: async () => {
      Runtime = await loadRuntime();
    },
    build: async (cold) => {
      const root = cold ? join(ctx.fx.dir, 'build', `berth-${++n}`) : warmRoot;
      try {
        const t0 = process.hrtime.bigint();
        const rt = (await Runtime!.open({ root })) as Rt;
        await rt.images.build({ context: context(), tags: ['bench/built:1'] });
        return Number(process.hrtime.bigint() - t0) / 1e6;
      } finally {
        if (cold) rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

function dockerTool(ctx: BenchContext, context: () => string, base: () => string): BuildTool {
  let argv: string[] = [];
  return {
    name: 'docker build',
    describe: '`DOCKER_BUILDKIT=0 docker build -t bench/built:1 <ctx>` (the legacy builder dockerd 20.10 has); cold: `--no-cache` after `docker rmi` of the base (untimed)',
    prepare: async () => {
      argv = (await ctx.docker()).argv;
    },
    build: async (cold) => {
      if (cold) await spawnTimed([...argv, 'rmi', '-f', base(), 'bench/built:1'], { timeoutMs: 60_000 });
      return spawnOk([...argv, 'build', '-q', ...(cold ? ['--no-cache'] : []), '-t', 'bench/built:1', context()], { timeoutMs: 600_000, env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    },
  };
}

function buildahTool(ctx: BenchContext, context: () => string, base: () => string): BuildTool {
  const store = () => ['--root', join(ctx.fx.dir, 'build', 'buildah-root'), '--runroot', join(ctx.fx.dir, 'build', 'buildah-run'), '--storage-driver', 'overlay'];
  return {
    name: 'buildah bud',
    describe: '`buildah bud --layers --isolation chroot --tls-verify=false -t bench/built:1 <ctx>` (overlay storage in the temp dir); cold: `--no-cache` after `buildah rmi` of everything (untimed)',
    prepare: async () => {
      ctx.need('buildah');
      ctx.cleanup.push('buildah: remove images and storage', async () => {
        await spawnTimed(['buildah', ...store(), 'rmi', '--all', '--force'], { timeoutMs: 120_000 });
        await spawnTimed(['umount', '-R', join(ctx.fx.dir, 'build', 'buildah-root')], { timeoutMs: 60_000 }).catch(() => {});
      });
    },
    build: async (cold) => {
      if (cold) await spawnTimed(['buildah', ...store(), 'rmi', '--all', '--force'], { timeoutMs: 120_000 });
      return spawnOk(['buildah', ...store(), 'bud', '--quiet', '--layers', ...(cold ? ['--no-cache'] : []), '--isolation', 'chroot', '--tls-verify=false', '-t', 'bench/built:1', context()], { timeoutMs: 600_000 });
    },
  };
}

function subject(tool: BuildTool, cold: boolean): Subject {
  return {
    name: tool.name,
    describe: tool.describe,
    prepare: async () => {
      await tool.prepare();
      // The warm rows start from one build that fills the cache.
      if (!cold) await tool.build(false);
    },
    once: () => tool.build(cold),
  };
}

/** `docker build` of a two-stage Dockerfile, cold and warm, by berth, docker and buildah. */
export async function build(ctx: BenchContext): Promise<WorkloadResult[]> {
  let contextDir: string | undefined;
  let baseRef: string | undefined;
  const context = () => contextDir!;
  const base = () => baseRef!;
  const reg = await ctx.registry();
  baseRef = reg.ref('busybox');
  mkdirSync(join(ctx.fx.dir, 'build'), { recursive: true });
  contextDir = makeContext(join(ctx.fx.dir, 'build'), baseRef);
  const tools = [berthTool(ctx, context, base), dockerTool(ctx, context, base), buildahTool(ctx, context, base)];
  const runs = ctx.settings.pullRuns;
  const out: WorkloadResult[] = [];
  for (const cold of [true, false]) {
    ctx.log(`build ${cold ? 'cold' : 'warm'}: 1 warm-up + ${runs} runs per tool, alternating`);
    const rows = await alternate(ctx.pick(tools.map((t) => subject(t, cold))), { runs, warmup: 1, log: ctx.log });
    out.push({
      id: cold ? 'build-cold' : 'build-warm',
      title: `Image build: two stages, ${CONTEXT_FILES} context files, two RUN, COPY --from, ${cold ? 'cold (nothing cached, base not pulled)' : 'warm (every step cached)'}`,
      unit: 'ms',
      better: 'lower',
      baseline: 'docker build',
      rows,
      notes: [
        `Context: ${CONTEXT_FILES} small files in 20 directories, a .dockerignore; base \`bench/busybox:1\` from the loopback registry. RUN steps have no network.`,
        'Ratios are to `docker build` (the legacy builder of Debian\'s dockerd 20.10; its CLI has no buildx here).',
      ],
    });
  }
  return out;
}
