import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { berthRunOnce, loadBerth, loadRuntime } from '../berth.js';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import type { WorkloadResult } from '../report.js';
import type { Row, Subject } from '../subject.js';
import { RootlessUser, rootlessSkipReason } from '../../test/helpers/rootless-user.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), '..', 'rootless-runner.ts');

/**
 * Rootless start latency (issue 15): `run({ rootfs }, ['/bin/true'])` as an unprivileged user
 * (made for the run with a subordinate range, removed after), beside bwrap and rootless podman
 * as the same user, and rootful berth in this process as the reference the target is set
 * against (rootless ≤ 1.5× rootful, ≤ 0.1× rootless podman).
 */
/** The bench user's runner in `serve` mode: one tool run per request, so rows can alternate with the harness's own. */
class RemoteRunner {
  readonly #proc: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  constructor(user: RootlessUser, tools = 'all', env: Record<string, string> = {}) {
    const args = ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', process.execPath, '--import', 'tsx', RUNNER, 'serve', tools];
    this.#proc = spawn('/usr/bin/setpriv', args, { cwd: join(dirname(RUNNER), '..'), env: user.env(env), stdio: ['pipe', 'pipe', 'inherit'] });
    this.#lines = createInterface({ input: this.#proc.stdout! })[Symbol.asyncIterator]();
  }
  async next(): Promise<any> {
    const r = await this.#lines.next();
    if (r.done) throw new Error('the rootless runner exited');
    return JSON.parse(r.value);
  }
  async once(tool: string): Promise<number> {
    this.#proc.stdin!.write(`${tool}\n`);
    const r = (await this.next()) as { ms?: number; error?: string };
    if (r.error !== undefined) throw new Error(r.error);
    return r.ms!;
  }
  async close(): Promise<void> {
    this.#proc.stdin!.end();
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) await once(this.#proc, 'exit');
  }
}

/**
 * Rootless start latency (issue 15): `run({ rootfs }, ['/bin/true'])` as an unprivileged user
 * (made for the run with a subordinate range, removed after), beside bwrap and rootless podman
 * as the same user, and rootful berth in this process as the reference the target is set
 * against (rootless ≤ 1.5× rootful, ≤ 0.1× rootless podman). All rows alternate: the rootless
 * ones run one at a time in the user's runner (`serve` mode), on request.
 */
export async function rootlessLatency(ctx: BenchContext): Promise<WorkloadResult> {
  const { runs, warmup } = ctx.settings;
  const rootful: Subject = {
    name: 'berth rootful',
    describe: "`run({ rootfs }, ['/bin/true'])` as root, the same workload (reference for the ratios)",
    prepare: async () => void (await loadBerth()),
    once: async () => berthRunOnce(await loadBerth(), { rootfs: ctx.fx.rootfs }, ['/bin/true']),
  };
  const tools = ['berth rootless', 'bwrap rootless', 'podman rootless'];
  let rows: Row[];
  const skip = rootlessSkipReason();
  if (skip) {
    rows = [...(await alternate([rootful], { runs, warmup, log: ctx.log })), ...tools.map((tool) => ({ tool, describe: '', samples: [], failures: 0, skipped: skip }))];
  } else {
    const user = RootlessUser.create({ prefix: 'berth-bench' });
    const runner = new RemoteRunner(user);
    try {
      ctx.log(`rootless: as ${user.name} (uid ${user.uid}), ${warmup} warm-up + ${runs} runs per tool, alternating with berth rootful`);
      const hello = (await runner.next()) as { ready: string[]; skipped: Record<string, string> };
      const remote = (name: string): Subject => ({
        name,
        describe: DESCRIBE[name] ?? name,
        prepare: async () => {
          if (!hello.ready.includes(name)) throw new Error(hello.skipped[name] ?? 'not prepared');
        },
        once: () => runner.once(name),
      });
      rows = await alternate([rootful, ...tools.map(remote)], { runs, warmup, log: ctx.log });
    } finally {
      await runner.close();
      user.remove();
    }
  }
  return {
    id: 'rootless',
    title: 'Rootless start latency: `/bin/true` as an unprivileged user',
    unit: 'ms',
    better: 'lower',
    baseline: 'berth rootful',
    rows,
    notes: [
      `${runs} measured runs per tool after ${warmup} warm-up runs, all four rows alternating: berth rootful in the harness (root), the rootless rows one run at a time in one process of the bench user (bench/rootless-runner.ts serve).`,
      'The bench user is created with useradd (65536 subordinate ids, newuidmap/newgidmap) and removed afterwards; podman uses its own rootless storage and an image imported from the same busybox rootfs.',
      'Targets (issue 15): berth rootless ≤ 1.5× berth rootful, and ≤ 0.1× podman rootless.',
    ],
  };
}

const DESCRIBE: Record<string, string> = {
  'berth rootless': "`run({ rootfs }, ['/bin/true'])` as the unprivileged user, in the process's held user namespace (root -> the user, 1..65535 -> its subordinate range): call to settled promise, timed in the user's process",
  'bwrap rootless': '`bwrap --unshare-all --die-with-parent --ro-bind <rootfs> / --proc /proc --dev /dev /bin/true` as the same user',
  'podman rootless': '`podman run --rm --network none <imported busybox> /bin/true` as the same user: `--cgroups=disabled` on a cgroup v2 host; on v1/hybrid `--cgroup-manager=cgroupfs --runtime runc` (crun refuses hybrid hosts, runc refuses `--cgroups=disabled`)',
  'berth rootless pull, cold': '`(await Runtime.open({ root: <fresh> })).images.pull(ref)` as the unprivileged user, a new runtime per pull: the layers unpacked by the helper in its user namespace, started during the pull (closed after, untimed)',
  'berth rootless pull, helper running': 'the same pull in one runtime kept open, the image removed between runs (untimed): the helper already runs',
};

/**
 * Rootless pull (issue 15): `images.pull()` of the registry's 4-layer `bench/multi:1` into a
 * fresh state directory, as root in the harness and as the unprivileged bench user, whose
 * layers are unpacked by the helper process in its user namespace (lib/rootless/userns-helper.ts).
 * Two rootless rows: `cold`, a fresh `Runtime` per pull (the helper starts during the pull, as
 * for a program's first pull), and `helper running`, pulls in one runtime kept open (the image
 * removed between runs, untimed). Each rootless row runs in a process of its own (the helper is
 * one per process). All rows alternate.
 */
export async function rootlessPull(ctx: BenchContext): Promise<WorkloadResult> {
  const { pullRuns: runs } = ctx.settings;
  const warmup = 1;
  const reg = await ctx.registry();
  const ref = reg.ref('multi');
  let n = 0;
  const rootful: Subject = {
    name: 'berth rootful pull',
    describe: '`(await Runtime.open({ root: <fresh> })).images.pull(ref)` as root: fetch, verify and unpack every layer into the store (durable)',
    prepare: async () => void (await loadRuntime()),
    once: async () => {
      const Runtime = await loadRuntime();
      const root = join(ctx.fx.dir, `rootful-pull-${++n}`);
      spawnSync('sync');
      const rt = (await Runtime.open({ root })) as { images: { pull(r: string): Promise<{ id: string }>; remove(id: string, o: object): Promise<unknown> }; close(): Promise<void> };
      try {
        const t0 = process.hrtime.bigint();
        await rt.images.pull(ref);
        return Number(process.hrtime.bigint() - t0) / 1e6;
      } finally {
        await rt.close();
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
  const tools = ['berth rootless pull, cold', 'berth rootless pull, helper running'];
  let rows: Row[];
  const skip = rootlessSkipReason();
  if (skip) {
    rows = [...(await alternate([rootful], { runs, warmup, log: ctx.log })), ...tools.map((tool) => ({ tool, describe: '', samples: [], failures: 0, skipped: skip }))];
  } else {
    const user = RootlessUser.create({ prefix: 'berth-bench' });
    const runners = tools.map((t) => new RemoteRunner(user, t, { BENCH_PULL_REF: ref }));
    try {
      ctx.log(`rootless pull: as ${user.name} (uid ${user.uid}), ${warmup} warm-up + ${runs} runs per row, alternating with berth rootful`);
      const remote = async (name: string, runner: RemoteRunner): Promise<Subject> => {
        const hello = (await runner.next()) as { ready: string[]; skipped: Record<string, string> };
        return {
          name,
          describe: DESCRIBE[name] ?? name,
          prepare: async () => {
            if (!hello.ready.includes(name)) throw new Error(hello.skipped[name] ?? 'not prepared');
          },
          once: () => runner.once(name),
        };
      };
      const subjects = [rootful];
      for (let i = 0; i < tools.length; i++) subjects.push(await remote(tools[i]!, runners[i]!));
      rows = await alternate(subjects, { runs, warmup, log: ctx.log });
    } finally {
      for (const r of runners) await r.close();
      user.remove();
    }
  }
  return {
    id: 'rootless-pull',
    title: 'Rootless pull: `images.pull()` of a 4-layer image as an unprivileged user',
    unit: 'ms',
    better: 'lower',
    baseline: 'berth rootful pull',
    rows,
    notes: [
      `bench/multi:1 from the loopback registry (4 layers: the busybox rootfs, 2000 files of 1 KiB, 4 × 8 MiB of random bytes, one small file); ${warmup} warm-up + ${runs} measured runs per row, alternating; an untimed \`sync\` before each.`,
      'Rootless rows run in processes of the bench user (bench/rootless-runner.ts serve), one per row: the unpack helper is one per process, so the cold row must not share it with the other.',
    ],
  };
}
