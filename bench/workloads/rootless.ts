import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { berthRunOnce, loadBerth } from '../berth.js';
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
  constructor(user: RootlessUser) {
    const args = ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', process.execPath, '--import', 'tsx', RUNNER, 'serve', 'all'];
    this.#proc = spawn('/usr/bin/setpriv', args, { cwd: join(dirname(RUNNER), '..'), env: user.env(), stdio: ['pipe', 'pipe', 'inherit'] });
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
  'podman rootless': '`podman run --rm --network none --cgroups=disabled <imported busybox> /bin/true` as the same user',
};
