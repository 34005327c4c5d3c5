import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRuntime, NotAvailable } from '../berth.js';
import type { BenchContext } from '../context.js';
import { which } from '../peers.js';
import { spawnOk } from '../spawn-timed.js';
import type { Row } from '../subject.js';
import type { WorkloadResult } from '../report.js';

const PROJECT = 'benchstack';

/**
 * Issue 14's 3-service stack: "db" with a healthcheck; a one-shot "migrate" that waits for it
 * (service_healthy) and reads from it by name; "web" that waits for both (service_healthy,
 * service_completed_successfully), asks db by name, then serves on a published port. db and
 * web run under `init: true`, so their PID 1 forwards the stop signal and `down` does not wait
 * out the grace period for either tool (httpd as PID 1 would ignore SIGTERM).
 */
function stackYaml(image: string): string {
  return `services:
  db:
    image: ${image}
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo rows > /www/rows && exec httpd -f -p 5432 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/rows"]
      interval: 100ms
      retries: 300
  migrate:
    image: ${image}
    command: ["sh", "-c", "wget -q -O- http://db:5432/rows"]
    depends_on:
      db: { condition: service_healthy }
  web:
    image: ${image}
    init: true
    command: ["sh", "-c", "mkdir -p /www && wget -q -O /www/index.html http://db:5432/rows && exec httpd -f -p 8080 -h /www"]
    ports: ["127.0.0.1::8080"]
    depends_on:
      db: { condition: service_healthy }
      migrate: { condition: service_completed_successfully }
`;
}

/** One tool bringing the stack up (to all healthy) and down, each timed. */
interface StackTool {
  name: string;
  describeUp: string;
  describeDown: string;
  prepare(): Promise<void>;
  up(): Promise<number>;
  down(): Promise<number>;
  dispose(): Promise<void>;
}

interface BerthStack {
  up(o: Record<string, unknown>): Promise<void>;
  down(o?: Record<string, unknown>): Promise<void>;
}
interface BerthRt {
  compose: { load(o: { projectDir: string }): Promise<BerthStack> };
  images: { import(tar: string, o: { ref: string }): Promise<unknown> };
  close(): Promise<void>;
}

const elapsed = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function berthTool(ctx: BenchContext, projectDir: string): StackTool {
  let rt: BerthRt | undefined;
  const root = join(ctx.fx.dir, 'compose', 'berth-state');
  return {
    name: 'berth',
    describeUp: '`(await rt.compose.load({ projectDir })).up()` (load included; `wait: true`: resolves when db is healthy, migrate exited 0, web running)',
    describeDown: '`(await rt.compose.load({ projectDir })).down()` (load included; stops web and db, removes the containers and the network)',
    prepare: async () => {
      const Runtime = await loadRuntime();
      rt = (await Runtime.open({ root })) as BerthRt;
      await rt.images.import(ctx.fx.rootfsTar, { ref: 'berth-bench/busybox:1' });
    },
    up: async () => {
      const t0 = process.hrtime.bigint();
      await (await rt!.compose.load({ projectDir })).up({ timeout: 120_000 });
      return elapsed(t0);
    },
    down: async () => {
      const t0 = process.hrtime.bigint();
      await (await rt!.compose.load({ projectDir })).down();
      return elapsed(t0);
    },
    dispose: async () => {
      await (await rt?.compose.load({ projectDir }))?.down().catch(() => {});
      await rt?.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function dockerComposeTool(ctx: BenchContext, projectDir: string): StackTool {
  let env: NodeJS.ProcessEnv = process.env;
  const compose = (args: string[]) => spawnOk(['docker-compose', '-f', join(projectDir, 'compose.yaml'), '-p', PROJECT, ...args], { env, timeoutMs: 120_000 });
  return {
    name: 'docker-compose',
    describeUp: "`docker-compose up -d` (Debian's 1.29; returns once web started, which waits for db healthy and migrate exited 0)",
    describeDown: '`docker-compose down`',
    prepare: async () => {
      if (!which('docker-compose')) throw new NotAvailable('docker-compose not installed (npm run bench -- --peers installs it)');
      const { argv } = await ctx.docker();
      const h = argv.indexOf('-H');
      if (h >= 0) env = { ...process.env, DOCKER_HOST: argv[h + 1] };
    },
    up: () => compose(['up', '-d', '--quiet-pull']),
    down: () => compose(['down']),
    dispose: async () => {
      await compose(['down', '-v']).catch(() => 0);
    },
  };
}

/**
 * `up` to all healthy and `down` of the 3-service stack, berth vs docker-compose, as ratios to
 * docker-compose. Rounds alternate the tools (A B, B A, ...) so the machine's drift lands on both.
 */
export async function composeStack(ctx: BenchContext): Promise<WorkloadResult[]> {
  const image = 'berth-bench/busybox:1';
  const projectDir = join(ctx.fx.dir, 'compose', PROJECT);
  mkdirSync(projectDir, { recursive: true });
  writeFileSync(join(projectDir, 'compose.yaml'), stackYaml(image));
  const tools = ctx.pick([berthTool(ctx, projectDir), dockerComposeTool(ctx, projectDir)]);
  const rows = new Map(tools.map((t) => [t, { up: { tool: t.name, describe: t.describeUp, samples: [], failures: 0 } as Row, down: { tool: t.name, describe: t.describeDown, samples: [], failures: 0 } as Row }]));
  const ready: StackTool[] = [];
  for (const t of tools) {
    try {
      await t.prepare();
      ready.push(t);
    } catch (e) {
      const why = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      rows.get(t)!.up.skipped = why;
      rows.get(t)!.down.skipped = why;
      ctx.log(`  ${t.name}: skipped: ${why}`);
    }
  }
  const runs = ctx.settings.pullRuns;
  ctx.log(`compose: 1 warm-up + ${runs} up/down rounds per tool, alternating`);
  try {
    for (let round = -1; round < runs; round++) {
      const order = round % 2 === 0 ? ready : [...ready].reverse();
      for (const t of order) {
        const up = await t.up();
        const down = await t.down();
        if (round < 0) continue;
        rows.get(t)!.up.samples.push(up);
        rows.get(t)!.down.samples.push(down);
      }
    }
  } finally {
    for (const t of ready) await t.dispose().catch((e: unknown) => ctx.log(`  ${t.name}: cleanup failed: ${String(e)}`));
  }
  const notes = [
    'The stack: db (busybox httpd, healthcheck every 100 ms), migrate (one-shot, waits for db healthy), web (waits for db healthy and migrate exited 0, publishes 127.0.0.1::8080). Both tools get the same file and the same imported busybox image; docker-compose talks to the private dockerd (user-defined bridge network, no iptables).',
    "db and web run with `init: true` for both tools, so `down` is fast the honest way: their PID 1 forwards SIGTERM to httpd (stop grace period left at compose's 10 s).",
    'Ratios are to docker-compose.',
  ];
  return [
    { id: 'compose-up', title: 'Compose: `up` of a 3-service stack to all healthy', unit: 'ms', better: 'lower', baseline: 'docker-compose', rows: tools.map((t) => rows.get(t)!.up), notes },
    { id: 'compose-down', title: 'Compose: `down` of the same stack', unit: 'ms', better: 'lower', baseline: 'docker-compose', rows: tools.map((t) => rows.get(t)!.down), notes: [] },
  ];
}
