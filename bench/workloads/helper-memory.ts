import { join } from 'node:path';
import { loadBerth, loadRuntime } from '../berth.js';
import type { BenchContext } from '../context.js';
import { dockerDefaultSeccomp, writeBundle } from '../fixtures.js';
import { prepareAll, disposeAll } from '../measure.js';
import { commOf, findByArgv, helperChain, ussKiB } from '../proc-memory.js';
import { capture, spawnTimed } from '../spawn-timed.js';
import type { WorkloadResult } from '../report.js';
import type { Row, Subject } from '../subject.js';

/** Idle containers started per tool; each gives one sample. */
const CONTAINERS = 5;

/**
 * A tool that can start an idle container whose main process is `/bin/sleep <marker>` and stop
 * it again. The marker makes the container's process findable in /proc without asking the tool.
 */
interface IdleStarter {
  name: string;
  describe: string;
  prepare?(): Promise<void>;
  start(marker: string): Promise<() => Promise<void>>;
  /** How long after the start the sample is taken. Default 500 ms. */
  settleMs?: number;
}

let markerSeq = 0;
const nextMarker = (): string => String(7_000_000 + process.pid * 100 + ++markerSeq);

async function waitForPid(argv: string[], ms = 10_000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const [pid] = findByArgv(argv);
    if (pid) return pid;
    if (Date.now() > deadline) throw new Error(`no process ${argv.join(' ')} appeared`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function ociStarter(ctx: BenchContext, rt: 'crun' | 'runc'): IdleStarter {
  let prefix: string[] = [];
  return {
    name: `${rt} --detach`,
    describe: `\`${rt} run --detach\`: the runtime exits once the container runs, so no process of its own stays`,
    prepare: async () => {
      ctx.need(rt);
      prefix = rt === 'crun' ? await ctx.crunPrefix() : [];
    },
    start: async (marker) => {
      const bundle = join(ctx.fx.dir, `bundle-idle-${marker}`);
      writeBundle(bundle, ctx.fx.rootfs, ['/bin/sleep', marker], dockerDefaultSeccomp().profile);
      const id = ctx.nextId(`idle-${rt}`);
      await capture([...prefix, rt, 'run', '--detach', '--bundle', bundle, id], { output: 'ignore' });
      return async () => {
        await spawnTimed([...prefix, rt, 'kill', id, 'KILL'], { timeoutMs: 10_000 });
        await new Promise((r) => setTimeout(r, 100));
        await spawnTimed([...prefix, rt, 'delete', '--force', id], { timeoutMs: 10_000 });
      };
    },
  };
}

function engineStarter(ctx: BenchContext, name: 'podman' | 'docker'): IdleStarter {
  return {
    name: name === 'podman' ? 'podman (conmon)' : 'docker (containerd-shim)',
    describe: `\`${name} run -d --network none … sleep\`; the ${name === 'podman' ? 'conmon' : 'containerd-shim-runc-v2'} process per container (daemons shared by all containers are not counted)`,
    prepare: async () => {
      await (name === 'docker' ? ctx.docker() : ctx.podman());
    },
    start: async (marker) => {
      const e = await (name === 'docker' ? ctx.docker() : ctx.podman());
      const id = (await capture([...e.argv, 'run', '-d', ...e.runFlags, e.image, '/bin/sleep', marker])).trim();
      return async () => {
        await spawnTimed([...e.argv, 'rm', '-f', id], { timeoutMs: 30_000 });
      };
    },
  };
}

/** berth attached: a `run()` in flight; its helpers are whatever sits between Node and the container. */
function berthAttached(ctx: BenchContext): IdleStarter {
  return {
    name: 'berth attached',
    describe: "`run({ rootfs }, ['/bin/sleep', …], { signal })` in flight: processes between Node and the container's main process",
    prepare: async () => {
      await loadBerth();
    },
    start: async (marker) => {
      const api = await loadBerth();
      const ac = new AbortController();
      const done = api.run({ rootfs: ctx.fx.rootfs }, ['/bin/sleep', marker], { signal: ac.signal }).catch(() => undefined);
      return async () => {
        ac.abort();
        await done;
      };
    },
  };
}

/** berth detached: Runtime containers.create({ lifetime: 'detached' }); skipped until that API exists. */
function berthDetached(ctx: BenchContext): IdleStarter {
  interface Container { start(): Promise<void>; stop(): Promise<void>; remove(): Promise<void> }
  return {
    name: 'berth detached',
    describe: '`containers.create({ image, cmd: [sleep], lifetime: "detached" })` + `start()`: the monitor that outlives Node',
    prepare: async () => {
      await loadRuntime();
      await ctx.registry();
    },
    start: async (marker) => {
      const Runtime = await loadRuntime();
      const rt = (await Runtime.open()) as { images: { pull(r: string): Promise<unknown> }; containers: { create(o: object): Promise<Container> } };
      const image = await rt.images.pull((await ctx.registry()).ref('busybox'));
      const c = await rt.containers.create({ image, cmd: ['/bin/sleep', marker], lifetime: 'detached' });
      await c.start();
      return async () => {
        await c.stop();
        await c.remove();
      };
    },
  };
}

/**
 * The monitor with everything it keeps for supervision: the restart policy (the encoded spec
 * in a memfd, the init helper and namespace descriptors) and a healthcheck (the probe plan,
 * berth-exec, the last results). Sampled after several probes ran, so the figure includes what
 * a probe leaves behind. In a temp state dir of its own, from the fixture rootfs.
 */
function berthMonitor(ctx: BenchContext): IdleStarter {
  interface Container { start(): Promise<void>; stop(o?: object): Promise<void>; remove(o?: object): Promise<void> }
  let rt: { containers: { create(o: object): Promise<Container> } } | undefined;
  return {
    name: 'berth monitor (restart + healthcheck)',
    describe: '`containers.create({ rootfs, cmd: [sleep], lifetime: "detached", restart: "always", healthcheck: { test: <5000 bytes of output>, interval: "500ms" } })`: the monitor after 2.5 s and 4 or 5 probes, each leaving the 4 KiB Docker keeps',
    settleMs: 2500,
    prepare: async () => {
      const Runtime = await loadRuntime();
      rt = (await Runtime.open({ root: join(ctx.fx.dir, 'berth-monitor-root') })) as typeof rt;
    },
    start: async (marker) => {
      const c = await rt!.containers.create({
        image: { rootfs: ctx.fx.rootfs },
        cmd: ['/bin/sleep', marker],
        lifetime: 'detached',
        restart: 'always',
        // The worst case the monitor keeps: five results of 4 KiB each.
        healthcheck: { test: ['CMD-SHELL', 'head -c 5000 /dev/zero | tr "\\0" x'], interval: '500ms' },
      });
      await c.start();
      return async () => {
        await c.remove({ force: true });
      };
    },
  };
}

export async function helperMemory(ctx: BenchContext): Promise<WorkloadResult> {
  ctx.log(`helper memory: ${CONTAINERS} idle containers per tool`);
  const starters = ctx.pick([berthAttached(ctx), berthDetached(ctx), berthMonitor(ctx), ociStarter(ctx, 'crun'), ociStarter(ctx, 'runc'), engineStarter(ctx, 'podman'), engineStarter(ctx, 'docker')]);
  const subjects: Subject[] = starters.map((s) => ({ name: s.name, describe: s.describe, prepare: s.prepare, once: async () => 0 }));
  const { ready, rows } = await prepareAll(subjects, ctx.log);
  const helpersSeen = new Map<string, Set<string>>();
  for (const subj of ready) {
    const starter = starters[subjects.indexOf(subj)]!;
    const row: Row = rows.get(subj)!;
    const stops: (() => Promise<void>)[] = [];
    try {
      for (let i = 0; i < CONTAINERS; i++) {
        const marker = nextMarker();
        stops.push(await starter.start(marker));
        const pid = await waitForPid(['/bin/sleep', marker]);
        // Let the helpers finish their start-up work (and free what they only needed for it).
        await new Promise((r) => setTimeout(r, starter.settleMs ?? 500));
        const chain = helperChain(pid);
        const names = helpersSeen.get(subj.name) ?? new Set();
        chain.forEach((p) => names.add(commOf(p)));
        helpersSeen.set(subj.name, names);
        row.samples.push(chain.reduce((sum, p) => sum + ussKiB(p), 0) / 1024);
      }
    } catch (e) {
      row.skipped = `failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
      ctx.log(`  ${subj.name}: ${row.skipped}`);
    } finally {
      for (const stop of stops) await stop().catch((e: unknown) => ctx.log(`  ${subj.name}: stop failed: ${String(e)}`));
    }
  }
  await disposeAll(ready, ctx.log);
  return {
    id: 'memory',
    title: 'Memory per idle running container: USS of the helper processes',
    unit: 'MiB',
    better: 'lower',
    baseline: 'podman (conmon)',
    rows: subjects.map((s) => rows.get(s)!),
    notes: [
      `${CONTAINERS} idle containers (\`/bin/sleep\`) per tool, started one after another and left running together; sample = summed USS (Private_Clean + Private_Dirty from /proc/<pid>/smaps_rollup) of the container's host-side ancestors, below PID 1 and below the benchmark's own Node process, 0.5 s after start (the monitor with a healthcheck: 2.5 s, after its probes ran).`,
      `Helper processes found: ${[...helpersSeen].map(([k, v]) => `${k}: ${v.size ? [...v].join(', ') : 'none'}`).join('; ') || 'none'}.`,
    ],
  };
}
