/**
 * The rootless rows of the benchmark, run as the unprivileged bench user (bench/workloads/
 * rootless.ts starts it through setpriv): berth `run({ rootfs }, ['/bin/true'])` in this
 * process, and, as the same user, `bwrap` and rootless `podman run --rm`, alternated as the
 * other workloads are. Builds its own busybox rootfs (the root-owned fixtures are private).
 * Prints the rows as one JSON line.
 * Usage: rootless-runner.ts <runs> <warmup> <tools|all>
 *        rootless-runner.ts serve <tools|all>
 * `serve`: prepares the tools, prints `{"ready":[names],"skipped":{name:reason}}`, then for each
 * tool name read on stdin runs it once and prints `{"ms":n}` or `{"error":text}`, so that the
 * harness (root) alternates these rows with rootful ones run in its own process.
 */
import { createInterface } from 'node:readline';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { berthRunOnce, loadBerth, loadRuntime } from './berth.js';
import { alternate } from './measure.js';
import { spawnOk } from './spawn-timed.js';
import type { Subject } from './subject.js';

const [runsText, warmupText, toolsText] = process.argv.slice(2) as [string, string, string];
const log = (line: string): void => void process.stderr.write(`${line}\n`);

function busyboxRootfs(): string {
  const root = mkdtempSync(join(process.env['HOME']!, 'rootfs-'));
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root', 'var', 'run']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') symlinkSync('busybox', join(root, 'bin', applet));
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  return root;
}

const rootfs = busyboxRootfs();
const cli = (name: string, describe: string, argv: string[], prepare?: () => Promise<void>): Subject => ({
  name,
  describe,
  ...(prepare ? { prepare } : {}),
  once: () => spawnOk(argv, { timeoutMs: 30_000 }),
});
const podmanImage = 'localhost/bench-rootless-busybox:1';
// Measured on the test VM (hybrid v1): crun 1.8.1 refuses "cgroups in hybrid mode" even with
// --cgroups=disabled, runc refuses --cgroups=disabled ("not compatible with NoCgroups").
const unifiedCgroups = existsSync('/sys/fs/cgroup/cgroup.controllers');
const podmanArgs = unifiedCgroups
  ? ['run', '--rm', '--network', 'none', '--cgroups=disabled']
  : ['--cgroup-manager=cgroupfs', 'run', '--rm', '--runtime', 'runc', '--network', 'none'];
const subjects: Subject[] = [
  {
    name: 'berth rootless',
    describe: "`run({ rootfs }, ['/bin/true'])` as the unprivileged user (user namespace, subordinate ids via newuidmap): call to settled promise",
    prepare: async () => void (await loadBerth()),
    once: async () => berthRunOnce(await loadBerth(), { rootfs }, ['/bin/true']),
  },
  cli('bwrap rootless', '`bwrap --unshare-all --die-with-parent --ro-bind <rootfs> / --proc /proc --dev /dev /bin/true` as the same user', ['bwrap', '--unshare-all', '--die-with-parent', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true'], async () => {
    if (!existsSync('/usr/bin/bwrap')) throw new Error('bwrap is not installed (apt-get install bubblewrap)');
  }),
  cli('podman rootless', `\`podman ${podmanArgs.join(' ')} <imported busybox> /bin/true\` as the same user (its own storage in ~/.local/share/containers; ${unifiedCgroups ? 'no cgroup: berth rootless runs without one on this host too' : "a v1/hybrid host: crun refuses any hybrid host and runc refuses --cgroups=disabled, so runc with the cgroupfs manager, whose rootless cgroup writes fail and are skipped"})`, ['podman', ...podmanArgs, podmanImage, '/bin/true'], async () => {
    if (!existsSync('/usr/bin/podman')) throw new Error('podman is not installed (apt-get install podman)');
    const tar = spawnSync('tar', ['-C', rootfs, '-c', '.'], { maxBuffer: 64 << 20 });
    const imported = spawnSync('podman', ['import', '-', podmanImage], { input: tar.stdout, encoding: 'utf8' });
    if (imported.status !== 0) throw new Error(`podman import: ${imported.stderr.trim().split('\n').pop()}`);
  }),
];
/** The slice of a runtime the pull rows use. */
interface PullRuntime {
  images: { pull(ref: string): Promise<{ id: string }>; remove(id: string, options: object): Promise<unknown> };
  close(): Promise<void>;
}

/** One timed `images.pull(ref)` in `rt`; the image removed after, untimed. */
async function timedPull(rt: PullRuntime, ref: string): Promise<number> {
  spawnSync('sync');
  const t0 = process.hrtime.bigint();
  const img = await rt.images.pull(ref);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await rt.images.remove(img.id, { force: true });
  return ms;
}

// The rootless pull rows (bench/workloads/rootless.ts rootlessPull), when the harness gives a ref.
const pullRef = process.env['BENCH_PULL_REF'];
if (pullRef) {
  const openFresh = async (): Promise<{ rt: PullRuntime; root: string }> => {
    const root = mkdtempSync(join(process.env['HOME']!, 'pull-'));
    return { rt: (await (await loadRuntime()).open({ root })) as PullRuntime, root };
  };
  let kept: { rt: PullRuntime; root: string } | undefined;
  subjects.push(
    {
      name: 'berth rootless pull, cold',
      describe: 'a new runtime per pull',
      prepare: async () => void (await loadRuntime()),
      once: async () => {
        const { rt, root } = await openFresh();
        try {
          return await timedPull(rt, pullRef);
        } finally {
          await rt.close();
          rmSync(root, { recursive: true, force: true });
        }
      },
    },
    {
      name: 'berth rootless pull, helper running',
      describe: 'one runtime kept open',
      prepare: async () => {
        kept = await openFresh();
      },
      once: () => timedPull(kept!.rt, pullRef),
      dispose: async () => {
        await kept?.rt.close();
        if (kept) rmSync(kept.root, { recursive: true, force: true });
      },
    },
  );
}
const serving = runsText === 'serve';
const chosen = serving ? warmupText : toolsText;
const wanted = chosen === 'all' ? subjects : subjects.filter((s) => chosen.split(',').some((t) => s.name.startsWith(t)));
if (serving) {
  const ready: Subject[] = [];
  const skipped: Record<string, string> = {};
  for (const s of wanted) {
    try {
      await s.prepare?.();
      ready.push(s);
    } catch (e) {
      skipped[s.name] = (e as Error).message.split('\n')[0]!;
    }
  }
  process.stdout.write(`${JSON.stringify({ ready: ready.map((s) => s.name), skipped })}\n`);
  for await (const name of createInterface({ input: process.stdin })) {
    const s = ready.find((x) => x.name === name);
    try {
      if (!s) throw new Error(`unknown tool ${name}`);
      process.stdout.write(`${JSON.stringify({ ms: await s.once() })}\n`);
    } catch (e) {
      process.stdout.write(`${JSON.stringify({ error: (e as Error).message.split('\n')[0] })}\n`);
    }
  }
  for (const s of ready) await s.dispose?.();
} else {
  const rows = await alternate(wanted, { runs: Number(runsText), warmup: Number(warmupText), log });
  process.stdout.write(`${JSON.stringify(rows)}\n`);
}
if (wanted.some((s) => s.name.startsWith('podman'))) spawnSync('podman', ['rmi', '-f', podmanImage], { stdio: 'ignore' });
