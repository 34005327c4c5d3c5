import { join } from 'node:path';
import { loadRuntime } from '../berth.js';
import type { BenchContext } from '../context.js';
import { dockerDefaultSeccomp, writeBundle } from '../fixtures.js';
import { alternate } from '../measure.js';
import { capture, spawnOk, spawnTimed } from '../spawn-timed.js';
import type { Subject } from '../subject.js';
import type { WorkloadResult } from '../report.js';

const SLEEP = ['/bin/sleep', '3600'];

/** crun or runc: a detached `sleep` container from a bundle, then `<rt> exec <id> /bin/true`. */
function ociExec(ctx: BenchContext, rt: 'crun' | 'runc'): Subject {
  let id = '';
  let prefix: string[] = [];
  return {
    name: rt,
    describe: `\`${rt} exec <id> /bin/true\` into a \`${rt} run --detach\` container running sleep`,
    prepare: async () => {
      ctx.need(rt);
      prefix = rt === 'crun' ? await ctx.crunPrefix() : [];
      const bundle = join(ctx.fx.dir, 'bundle-sleep');
      writeBundle(bundle, ctx.fx.rootfs, SLEEP, dockerDefaultSeccomp().profile);
      id = ctx.nextId(`exec-${rt}`);
      await capture([...prefix, rt, 'run', '--detach', '--bundle', bundle, id], { output: 'ignore' });
    },
    once: () => spawnOk([...prefix, rt, 'exec', id, '/bin/true'], { timeoutMs: 30_000 }),
    dispose: async () => {
      await spawnTimed([...prefix, rt, 'kill', id, 'KILL'], { timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 200));
      await spawnTimed([...prefix, rt, 'delete', '--force', id], { timeoutMs: 10_000 });
    },
  };
}

/** docker or podman: `run -d … sleep`, then `exec <id> /bin/true`. */
function engineExec(ctx: BenchContext, name: 'docker' | 'podman'): Subject {
  let id = '';
  let argv: string[] = [];
  return {
    name,
    describe: `\`${name} exec <id> /bin/true\` into a \`${name} run -d --network none\` container running sleep`,
    prepare: async () => {
      const e = name === 'docker' ? await ctx.docker() : await ctx.podman();
      argv = e.argv;
      id = (await capture([...argv, 'run', '-d', ...e.runFlags, e.image, ...SLEEP])).trim();
    },
    once: () => spawnOk([...argv, 'exec', id, '/bin/true'], { timeoutMs: 30_000 }),
    dispose: async () => {
      await spawnTimed([...argv, 'rm', '-f', id], { timeoutMs: 30_000 });
    },
  };
}

/**
 * berth: a running container, then `container.exec(['/bin/true'])`. Written against the API in
 * the design notes (Runtime.open, images.pull, containers.create, start, exec, stop, remove);
 * until that exists it is skipped with the reason.
 */
function berthExec(ctx: BenchContext): Subject {
  interface Container { start(): Promise<void>; exec(cmd: string[]): Promise<{ exitCode: number }>; stop(): Promise<void>; remove(): Promise<void> }
  interface Rt { images: { pull(ref: string): Promise<unknown> }; containers: { create(o: object): Promise<Container> }; close?(): Promise<void> }
  let rt: Rt | undefined;
  let c: Container | undefined;
  return {
    name: 'berth',
    describe: "`container.exec(['/bin/true'])` into a started berth container running sleep",
    prepare: async () => {
      const Runtime = await loadRuntime();
      rt = (await Runtime.open()) as Rt;
      const image = await rt.images.pull((await ctx.registry()).ref('busybox'));
      c = await rt.containers.create({ image, cmd: SLEEP });
      await c.start();
    },
    once: async () => {
      const t0 = process.hrtime.bigint();
      const r = await c!.exec(['/bin/true']);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.exitCode !== 0) throw new Error(`exec exit ${r.exitCode}`);
      return ms;
    },
    dispose: async () => {
      await c?.stop();
      await c?.remove();
      await rt?.close?.();
    },
  };
}

export async function execLatency(ctx: BenchContext): Promise<WorkloadResult> {
  const { runs, warmup } = ctx.settings;
  ctx.log(`exec latency: ${warmup} warm-up + ${runs} runs per tool, alternating`);
  const subjects = ctx.pick([berthExec(ctx), ociExec(ctx, 'crun'), ociExec(ctx, 'runc'), engineExec(ctx, 'podman'), engineExec(ctx, 'docker')]);
  const rows = await alternate(subjects, { runs, warmup, log: ctx.log });
  return {
    id: 'exec',
    title: 'Exec latency: `/bin/true` into a running container',
    unit: 'ms',
    better: 'lower',
    rows,
    notes: ['Each tool execs into its own already running container; the container start is not timed.'],
  };
}
