import { berthRunOnce, loadBerth, NotAvailable } from '../berth.js';
import type { BenchContext } from '../context.js';
import { alternate } from '../measure.js';
import { spawnOk } from '../spawn-timed.js';
import type { Subject } from '../subject.js';
import type { WorkloadResult } from '../report.js';

/** A peer whose unit of work is one CLI invocation, timed from spawn() to 'exit'. */
function cliSubject(name: string, describe: string, argv: () => Promise<string[]>, prepare?: () => Promise<void>): Subject {
  return {
    name,
    describe,
    prepare,
    once: async () => spawnOk(await argv(), { timeoutMs: 30_000 }),
  };
}

/**
 * The start-to-exit subjects for `/bin/true`, shared by the latency and the throughput
 * workloads. berth's rows come first so the table reads berth, then the peers.
 */
export function startSubjects(ctx: BenchContext): Subject[] {
  const { fx } = ctx;
  const berth = (name: string, describe: string, source: () => Promise<unknown>): Subject => {
    let src: unknown;
    return {
      name,
      describe,
      prepare: async () => {
        await loadBerth();
        src = await source();
      },
      once: async () => berthRunOnce(await loadBerth(), src, ['/bin/true']),
    };
  };
  const bwrapArgs = ['--die-with-parent', '--ro-bind', fx.rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true'];
  return [
    berth('berth rootfs', "`run({ rootfs }, ['/bin/true'])`: call to settled promise", async () => ({ rootfs: fx.rootfs })),
    berth('berth image', "`run('127.0.0.1:<port>/bench/busybox:1', ['/bin/true'])`, image already pulled by the warm-up", async () => {
      const reg = await ctx.registry();
      return reg.ref('busybox');
    }),
    berth('berth host', "`run({ host: true }, ['/bin/true'])`", async () => ({ host: true })),
    cliSubject(
      'crun',
      '`crun run --bundle <bundle> <id>` (OCI bundle, same namespaces and security as berth, see below)',
      async () => [...(await ctx.crunPrefix()), 'crun', 'run', '--bundle', fx.bundle, ctx.nextId()],
      async () => {
        await ctx.crunPrefix();
      },
    ),
    cliSubject(
      'crun no-seccomp',
      'the same bundle without the seccomp filter (as `crun spec` writes it): shows what compiling the profile costs',
      async () => [...(await ctx.crunPrefix()), 'crun', 'run', '--bundle', fx.bundleNoSeccomp, ctx.nextId()],
      async () => {
        await ctx.crunPrefix();
      },
    ),
    cliSubject(
      'runc',
      '`runc run --bundle <bundle> <id>` (the same bundle)',
      async () => ['runc', 'run', '--bundle', fx.bundle, ctx.nextId()],
      async () => ctx.need('runc'),
    ),
    cliSubject(
      'bwrap',
      '`bwrap --unshare-all --die-with-parent --ro-bind <rootfs> / --proc /proc --dev /dev /bin/true`',
      async () => ['bwrap', '--unshare-all', ...bwrapArgs],
      async () => ctx.need('bwrap'),
    ),
    cliSubject(
      'bwrap share-net',
      'the same with `--share-net` (no network namespace)',
      async () => ['bwrap', '--unshare-all', '--share-net', ...bwrapArgs],
      async () => ctx.need('bwrap'),
    ),
    cliSubject(
      'podman',
      '`podman run --rm --network none --ulimit … <imported busybox> /bin/true`',
      async () => {
        const p = await ctx.podman();
        return [...p.argv, 'run', '--rm', ...p.runFlags, p.image, '/bin/true'];
      },
      async () => {
        await ctx.podman();
      },
    ),
    cliSubject(
      'docker',
      '`docker run --rm --network none <imported busybox> /bin/true`',
      async () => {
        const d = await ctx.docker();
        return [...d.argv, 'run', '--rm', ...d.runFlags, d.image, '/bin/true'];
      },
      async () => {
        await ctx.docker();
      },
    ),
    cliSubject(
      'nsenter /bin/true',
      "`/bin/true` through the crun namespace prefix (`nsenter --mount=…`), no sandbox: the part of crun's and podman's rows that is this host's quirk",
      async () => [...(await ctx.crunPrefix()), '/bin/true'],
      async () => {
        if ((await ctx.crunPrefix()).length === 0) throw new NotAvailable('crun needs no namespace prefix on this host');
      },
    ),
    cliSubject('host /bin/true', 'Node `spawn(\'/bin/true\')` on the host, no sandbox: the floor every CLI row pays', async () => ['/bin/true']),
  ];
}

export async function startLatency(ctx: BenchContext): Promise<WorkloadResult> {
  const subjects = ctx.pick(startSubjects(ctx));
  const { runs, warmup } = ctx.settings;
  ctx.log(`start latency: ${warmup} warm-up + ${runs} runs per tool, alternating`);
  const rows = await alternate(subjects, { runs, warmup, log: ctx.log });
  return {
    id: 'start',
    title: 'Start latency: `/bin/true`, start to exit observed',
    unit: 'ms',
    better: 'lower',
    rows,
    notes: [
      `${runs} measured runs per tool after ${warmup} warm-up runs, all tools in one rotation.`,
      "CLI tools: wall time from Node `spawn()` to the child's `exit` event (process.hrtime.bigint()), stdout/stderr piped and read, as berth reads them.",
    ],
  };
}
