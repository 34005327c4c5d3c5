/**
 * Density (issue 17 §2): N detached idle containers (`sleep`, own pid/mount/net/ipc/uts
 * namespaces, a memory and a pids limit, no network) per tool, all present at once. Measures
 * what a host running many parked sandboxes pays: the time to create+start them and whether
 * the last create is slower than an early one (an O(n) scan on the hot path shows here), the
 * host memory they hold, the cost of one list / inspect / exec with all N present, the time to
 * stop and remove them all, and that nothing is left.
 *
 * Bounded: each tool gets a creation budget (`DENSITY_BUDGET_MS`); a tool that fails or runs out
 * stops there, the table says at which container and why, and what it made is removed.
 * @module
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadRuntime } from '../berth.js';
import type { BenchContext } from '../context.js';
import { removeTree } from '../cleanup.js';
import { helperChain, ussKiB } from '../proc-memory.js';
import { capture, spawnTimed } from '../spawn-timed.js';
import type { WorkloadResult } from '../report.js';
import type { Row } from '../subject.js';

/** Creation budget per tool (`BENCH_DENSITY_BUDGET_S`, default 15 min): the tool stops where it is when this runs out. */
const DENSITY_BUDGET_MS = (Number(process.env.BENCH_DENSITY_BUDGET_S) || 900) * 1000;
/** Containers around the 10th and the last whose create+start latencies are averaged. */
const WINDOW = 10;
const MEMORY_LIMIT = '64m';
const PIDS_LIMIT = 32;
/** Samples of list / inspect / exec with all containers present. */
const PROBES = 9;

/** What one tool does with one container; every method throws on failure. */
interface DensityTool {
  name: string;
  describe: string;
  prepare(): Promise<void>;
  /** Creates and starts one idle container running `sleep <marker>`; returns a handle. */
  createStart(marker: string): Promise<string>;
  list(): Promise<number>;
  inspect(handle: string): Promise<void>;
  exec(handle: string): Promise<void>;
  stopRemove(handle: string): Promise<void>;
  dispose(): Promise<void>;
}

interface ToolResult {
  made: number;
  stoppedAt?: string;
  createAllMs: number;
  early: number;
  late: number;
  helperUssKiB: number;
  kmemKiB: number;
  slabKiB: number;
  listMs: number[];
  inspectMs: number[];
  execMs: number[];
  removeAllMs: number;
  leftovers: string;
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function slabKiB(): number {
  const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** cmdline -> pid for every process, in one pass over /proc. */
function processesByCmdline(): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      out.set(readFileSync(`/proc/${d}/cmdline`, 'latin1'), Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Kernel memory charged to the memory cgroup of `pid` (v1 `memory.kmem.usage_in_bytes`; v2 `memory.stat` kernel). */
function kmemKiBOf(pid: number): number {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, ctrls, path] = line.split(':');
    if (ctrls === undefined || path === undefined) continue;
    try {
      if (ctrls.split(',').includes('memory')) return Number(readFileSync(`/sys/fs/cgroup/memory${path}/memory.kmem.usage_in_bytes`, 'utf8')) / 1024;
      if (ctrls === '') {
        const m = /^kernel (\d+)$/m.exec(readFileSync(`/sys/fs/cgroup${path}/memory.stat`, 'utf8'));
        if (m) return Number(m[1]) / 1024;
      }
    } catch {
      // no such file on this kernel
    }
  }
  return 0;
}

let markerBase = 0;
function marker(i: number): string {
  markerBase ||= 8_000_000 + (process.pid % 1000) * 10_000;
  return String(markerBase + i);
}

function berthTool(ctx: BenchContext): DensityTool {
  interface C { id: string; start(): Promise<void>; exec(argv: string[]): Promise<{ exitCode: number }>; inspect(): Promise<unknown>; remove(o: object): Promise<void> }
  interface Rt { containers: { create(o: object): Promise<C>; list(o?: object): Promise<unknown[]>; get(id: string): Promise<C> }; images: { pull(r: string): Promise<unknown> }; close(): Promise<void> }
  let rt: Rt | undefined;
  let image: unknown;
  let root = '';
  const byId = new Map<string, C>();
  return {
    name: 'berth detached',
    describe: `\`containers.create({ image, cmd: ['/bin/sleep', …], lifetime: 'detached', memory: '${MEMORY_LIMIT}', pids: ${PIDS_LIMIT} })\` + \`start()\` (network 'none', a state dir of its own); list = \`containers.list()\`, inspect = \`get(id)\` + \`inspect()\`, exec = \`exec(['true'])\`, remove = \`remove({ force: true })\``,
    async prepare() {
      const Runtime = await loadRuntime();
      root = mkdtempSync(join(ctx.fx.dir, 'berth-density-'));
      rt = (await Runtime.open({ root })) as Rt;
      try {
        image = await rt.images.pull((await ctx.registry()).ref('busybox'));
      } catch (e) {
        ctx.log(`  berth: no loopback registry (${e instanceof Error ? e.message : String(e)}); using the fixture rootfs`);
        image = { rootfs: ctx.fx.rootfs };
      }
    },
    async createStart(m) {
      const c = await rt!.containers.create({ image, cmd: ['/bin/sleep', m], lifetime: 'detached', memory: MEMORY_LIMIT, pids: PIDS_LIMIT });
      byId.set(c.id, c);
      await c.start();
      return c.id;
    },
    async list() {
      return (await rt!.containers.list()).length;
    },
    async inspect(id) {
      await (await rt!.containers.get(id)).inspect();
    },
    async exec(id) {
      const r = await byId.get(id)!.exec(['true']);
      if (r.exitCode !== 0) throw new Error(`exec exit ${r.exitCode}`);
    },
    async stopRemove(id) {
      await byId.get(id)!.remove({ force: true });
      byId.delete(id);
    },
    async dispose() {
      await rt?.close();
      if (root) removeTree(root, ctx.log);
    },
  };
}

function engineTool(ctx: BenchContext, which: 'docker' | 'podman'): DensityTool {
  const engine = () => (which === 'docker' ? ctx.docker() : ctx.podman());
  return {
    name: which,
    describe: `\`${which} run -d --network none --memory ${MEMORY_LIMIT} --pids-limit ${PIDS_LIMIT} <busybox> /bin/sleep …\`; list = \`${which} ps -q\`, inspect = \`${which} inspect\`, exec = \`${which} exec <id> true\`, remove = \`${which} rm -f\``,
    async prepare() {
      await engine();
    },
    async createStart(m) {
      const e = await engine();
      return (await capture([...e.argv, 'run', '-d', ...e.runFlags, '--memory', MEMORY_LIMIT, '--pids-limit', String(PIDS_LIMIT), e.image, '/bin/sleep', m])).trim();
    },
    async list() {
      const e = await engine();
      return (await capture([...e.argv, 'ps', '-q'])).trim().split('\n').filter(Boolean).length;
    },
    async inspect(id) {
      const e = await engine();
      await capture([...e.argv, 'inspect', id]);
    },
    async exec(id) {
      const e = await engine();
      await capture([...e.argv, 'exec', id, 'true']);
    },
    async stopRemove(id) {
      const e = await engine();
      const r = await spawnTimed([...e.argv, 'rm', '-f', id], { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`${which} rm -f: ${r.stderr.trim()}`);
    },
    async dispose() {},
  };
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(ms(t0));
  }
  return out;
}

async function measureTool(ctx: BenchContext, tool: DensityTool, n: number): Promise<ToolResult> {
  const handles: string[] = [];
  const latencies: number[] = [];
  const slab0 = slabKiB();
  const deadline = Date.now() + DENSITY_BUDGET_MS;
  let stoppedAt: string | undefined;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (Date.now() > deadline) {
      stoppedAt = `budget of ${DENSITY_BUDGET_MS / 60_000} min ran out after ${i}`;
      break;
    }
    const t = process.hrtime.bigint();
    try {
      handles.push(await tool.createStart(marker(i)));
    } catch (e) {
      stoppedAt = `container ${i + 1} failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`;
      break;
    }
    latencies.push(ms(t));
    if ((i + 1) % 100 === 0) ctx.log(`  ${tool.name}: ${i + 1} running (last create+start ${latencies[i]!.toFixed(0)} ms)`);
  }
  const createAllMs = ms(t0);
  if (stoppedAt) ctx.log(`  ${tool.name}: stopped: ${stoppedAt}`);
  const made = handles.length;
  // Let start-up work settle (monitors free what they needed only to start).
  await new Promise((r) => setTimeout(r, 1000));
  const procs = processesByCmdline();
  let helperUss = 0;
  let kmem = 0;
  const seenHelpers = new Set<number>();
  for (let i = 0; i < made; i++) {
    const pid = procs.get(`/bin/sleep\0${marker(i)}\0`);
    if (pid === undefined) continue;
    try {
      for (const h of helperChain(pid)) {
        // A shared daemon parent (containerd, conmon's parent) is counted once, per-container helpers each once.
        if (seenHelpers.has(h)) continue;
        seenHelpers.add(h);
        helperUss += ussKiB(h);
      }
      kmem += kmemKiBOf(pid);
    } catch {
      // exited meanwhile
    }
  }
  const slab = slabKiB() - slab0;
  const mid = handles[Math.floor(made / 2)];
  const listMs = made ? await timed(PROBES, async () => {
    const seen = await tool.list();
    if (seen < made) throw new Error(`list() saw ${seen} of ${made}`);
  }) : [];
  const inspectMs = mid ? await timed(PROBES, () => tool.inspect(mid)) : [];
  const execMs = mid ? await timed(PROBES, () => tool.exec(mid)) : [];
  const r0 = process.hrtime.bigint();
  const failures: string[] = [];
  for (const h of handles) await tool.stopRemove(h).catch((e: unknown) => failures.push(String(e)));
  const removeAllMs = ms(r0);
  const after = processesByCmdline();
  const left = [...Array(made).keys()].filter((i) => after.has(`/bin/sleep\0${marker(i)}\0`)).length;
  const leftovers = `${left} sleep processes left; ${failures.length} removes failed${failures[0] ? ` (${failures[0].split('\n')[0]})` : ''}`;
  const early = mean(latencies.slice(WINDOW - 1, 2 * WINDOW - 1));
  const late = mean(latencies.slice(Math.max(0, made - WINDOW)));
  return { made, ...(stoppedAt ? { stoppedAt } : {}), createAllMs, early, late, helperUssKiB: helperUss, kmemKiB: kmem, slabKiB: slab, listMs, inspectMs, execMs, removeAllMs, leftovers };
}

/** The number of containers: `BENCH_DENSITY_N` (default 1000), so a smaller run can check the bench itself. */
function densityN(): number {
  const v = process.env.BENCH_DENSITY_N;
  if (v === undefined || v === '') return 1000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 20) throw new Error(`BENCH_DENSITY_N wants an integer ≥ 20, got ${JSON.stringify(v)}`);
  return n;
}

export async function density(ctx: BenchContext): Promise<WorkloadResult[]> {
  const n = densityN();
  ctx.log(`density: ${n} idle detached containers per tool`);
  const tools = ctx.pick([berthTool(ctx), engineTool(ctx, 'docker'), engineTool(ctx, 'podman')]);
  const results = new Map<DensityTool, ToolResult | string>();
  for (const tool of tools) {
    try {
      await tool.prepare();
    } catch (e) {
      results.set(tool, `skipped: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
      continue;
    }
    try {
      const r = await measureTool(ctx, tool, n);
      results.set(tool, r);
      // On stderr as soon as known: a long run cut short still leaves each finished tool's figures.
      ctx.log(`  ${tool.name}: ${JSON.stringify(r)}`);
    } catch (e) {
      results.set(tool, `failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
    } finally {
      await tool.dispose().catch((e: unknown) => ctx.log(`  ${tool.name}: dispose: ${String(e)}`));
    }
  }
  let first = true;
  const rowOf = (tool: DensityTool, pick: (r: ToolResult) => number | number[]): Row => {
    const r = results.get(tool)!;
    // What each row runs is said once, under the first table.
    const describe = first ? tool.describe : '';
    if (typeof r === 'string') return { tool: tool.name, describe, samples: [], failures: 0, skipped: r };
    const v = pick(r);
    return { tool: tool.name, describe, samples: Array.isArray(v) ? v : [v], failures: 0 };
  };
  const table = (id: string, title: string, unit: string, better: 'lower' | 'higher', pick: (r: ToolResult) => number | number[], notes: string[] = []): WorkloadResult => {
    const rows = tools.map((t) => rowOf(t, pick));
    first = false;
    return { id: `density-${id}`, title: `Density, ${n} containers: ${title}`, unit, better, baseline: 'docker', rows, notes };
  };

  const outcome = tools.map((t) => {
    const r = results.get(t)!;
    return typeof r === 'string' ? `${t.name}: ${r}` : `${t.name}: ${r.made} of ${n} made${r.stoppedAt ? ` (stopped: ${r.stoppedAt})` : ''}; after removal: ${r.leftovers}`;
  });
  const all = [
    table('create', 'create+start all', 's', 'lower', (r) => r.createAllMs / 1000, [
      `Containers one after another, each \`/bin/sleep <marker>\` with memory ${MEMORY_LIMIT}, pids ${PIDS_LIMIT}, network none; each tool has ${DENSITY_BUDGET_MS / 60_000} min.`,
      ...outcome,
    ]),
    table('rate', 'runs/s while creating', 'runs/s', 'higher', (r) => r.made / (r.createAllMs / 1000)),
    table('early', `create+start latency, containers ${WINDOW}–${2 * WINDOW - 1} (mean)`, 'ms', 'lower', (r) => r.early),
    table('late', `create+start latency, the last ${WINDOW} (mean)`, 'ms', 'lower', (r) => r.late, ['The ratio late ÷ early per tool is the growth with the number of containers present.']),
    table('helpers', 'helper processes USS per container', 'KiB', 'lower', (r) => r.helperUssKiB / Math.max(1, r.made), [
      'Summed USS of the distinct host-side ancestors of every container\'s `sleep` below PID 1 and below the bench (berth: the monitors; docker: containerd-shim; podman: conmon), ÷ containers.',
    ]),
    table('kmem', 'kernel memory charged to the memory cgroups, per container', 'KiB', 'lower', (r) => r.kmemKiB / Math.max(1, r.made)),
    table('slab', 'slab growth (/proc/meminfo Slab) per container', 'KiB', 'lower', (r) => r.slabKiB / Math.max(1, r.made), ['Whole-host figure: noisy on a shared machine.']),
    table('list', 'one list with all present', 'ms', 'lower', (r) => r.listMs),
    table('inspect', 'one inspect with all present', 'ms', 'lower', (r) => r.inspectMs),
    table('exec', 'one exec `true` with all present', 'ms', 'lower', (r) => r.execMs),
    table('remove', 'stop+remove all', 's', 'lower', (r) => r.removeAllMs / 1000),
  ];
  return all;
}
