/**
 * berth's side-by-side benchmark: `npm run bench [-- options]`. Results table (markdown) on
 * stdout, progress on stderr. See docs/benchmarks.md.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { engineCgroups, removeNewEngineCgroups, removeTree } from './cleanup.js';
import { cgroupsForHost } from '../lib/launch/cgroup-setup.js';
import { BenchContext, type Settings } from './context.js';
import { makeFixtures, makeTempDir } from './fixtures.js';
import { loadAvg, machineFacts } from './machine.js';
import { installMissingPeers, probePeers } from './peers.js';
import { reportMarkdown, type BenchReport, type WorkloadResult } from './report.js';
import { startLatencySvg } from './svg.js';
import { build } from './workloads/build.js';
import { composeStack } from './workloads/compose.js';
import { density } from './workloads/density.js';
import { execLatency } from './workloads/exec-latency.js';
import { helperMemory } from './workloads/helper-memory.js';
import { network } from './workloads/network.js';
import { poolLatency } from './workloads/pool.js';
import { pullUnpack } from './workloads/pull-unpack.js';
import { pythonPrewarm } from './workloads/python.js';
import { startIsolated } from './workloads/start-isolated.js';
import { startLatency } from './workloads/start-latency.js';
import { runsPerSecond } from './workloads/throughput.js';
import { rootlessLatency, rootlessPull } from './workloads/rootless.js';

const WORKLOADS: Record<string, (ctx: BenchContext) => Promise<WorkloadResult | WorkloadResult[]>> = {
  start: startLatency,
  throughput: runsPerSecond,
  exec: execLatency,
  pull: pullUnpack,
  memory: helperMemory,
  network,
  build,
  pool: poolLatency,
  compose: composeStack,
  // Start latency, then pull, as the bench user; `rootless-pull` alone for the pull rows.
  rootless: async (ctx) => [await rootlessLatency(ctx), await rootlessPull(ctx)],
  'rootless-pull': rootlessPull,
  'start-isolated': startIsolated,
  python: pythonPrewarm,
  density,
};

const USAGE = `usage: npm run bench -- [options]
  --peers            install missing peers from Debian first (apt-get update; crun runc bubblewrap podman docker.io ...)
  --runs N           measured runs per tool for the latency workloads (default 200)
  --warmup N         warm-up runs per tool (default 10)
  --only LIST        comma-separated workloads: ${Object.keys(WORKLOADS).join(', ')} (default: all but network, build, pool, compose, rootless, rootless-pull, start-isolated, python and density)
  --tools LIST       comma-separated rows to run, by name or first word (berth, crun, runc, bwrap, podman, docker, ...)
  --json FILE        also write the results, with every sample, as JSON
  --svg FILE         also write the start-latency plot as SVG (e.g. docs/benchmarks-start-latency.svg)
  --keep             keep the temp dir (fixtures, logs) for inspection`;

function intFlag(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} wants a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      peers: { type: 'boolean', default: false },
      runs: { type: 'string' },
      warmup: { type: 'string' },
      only: { type: 'string' },
      tools: { type: 'string' },
      json: { type: 'string' },
      svg: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  if (process.getuid?.() !== 0) log('warning: not root; the container runtimes (and berth) need root on this machine');
  const only = (values.only ?? Object.keys(WORKLOADS).filter((w) => w !== 'network' && w !== 'build' && w !== 'pool' && w !== 'compose' && w !== 'rootless' && w !== 'rootless-pull' && w !== 'start-isolated' && w !== 'python' && w !== 'density').join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of only) if (!WORKLOADS[w]) throw new Error(`--only: unknown workload ${JSON.stringify(w)} (known: ${Object.keys(WORKLOADS).join(', ')})`);
  const runs = intFlag(values.runs, 'runs', 200);
  const settings: Settings = {
    runs,
    warmup: intFlag(values.warmup, 'warmup', 10),
    pullRuns: Math.max(3, Math.min(10, runs)),
    throughputMs: 3000,
    throughputRounds: 5,
    tools: values.tools?.split(',').map((s) => s.trim()).filter(Boolean),
  };

  if (values.peers) await installMissingPeers(log);
  const loadAtStart = loadAvg();
  const peers = await probePeers();
  const cgroupsBefore = engineCgroups();
  const dir = makeTempDir();
  log(`fixtures in ${dir}`);
  let ctx: BenchContext | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: cleaning up`);
    void (ctx?.cleanup.run(log) ?? Promise.resolve()).finally(() => {
      removeNewEngineCgroups(cgroupsBefore, log);
      if (!values.keep) removeTree(dir, log);
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const fx = await makeFixtures(dir);
    ctx = new BenchContext(fx, peers, settings, log);
    ctx.notes.set('seccomp', `crun and runc get ${fx.seccompSource}.`);
    const workloads: WorkloadResult[] = [];
    for (const name of only) {
      const r = await WORKLOADS[name]!(ctx);
      workloads.push(...(Array.isArray(r) ? r : [r]));
    }
    const report: BenchReport = {
      machine: machineFacts(peers, loadAtStart),
      settings: { ...settings, only },
      hostNotes: Object.fromEntries(ctx.notes),
      workloads,
    };
    process.stdout.write(`${reportMarkdown(report)}\n`);
    if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 1)}\n`);
    const start = workloads.find((w) => w.id === 'start');
    if (values.svg && start) writeFileSync(values.svg, startLatencySvg(start, report.machine));
    return 0;
  } finally {
    await ctx?.cleanup.run(log);
    removeNewEngineCgroups(cgroupsBefore, log);
    // berth keeps its `berth` parent cgroups between containers; the benchmark leaves none.
    if (!cgroupsForHost().driver.removeParentIfEmpty()) log('cleanup: a berth parent cgroup still holds containers');
    if (values.keep) log(`kept ${dir}`);
    else removeTree(dir, log);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
