import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { loadRuntime } from '../berth.js';
import type { BenchContext, Engine } from '../context.js';
import { alternate } from '../measure.js';
import type { NsHolder } from '../ns-holder.js';
import { capture, spawnOk, spawnTimed } from '../spawn-timed.js';
import type { Subject } from '../subject.js';
import type { WorkloadResult } from '../report.js';

/** MiB sent per throughput sample, and samples per tool. */
const MIB_PER_SAMPLE = 256;
const THROUGHPUT_ROUNDS = 5;
/** Ports inside the private network namespace (nothing else listens there). */
const PORT_PUBLISHED = 18080;
const PORT_DIRECT = 18081;
/** A sink that reads a connection to EOF and closes it; one per connection, forever. */
const SINK = ['/bin/nc', '-ll', '-p', '8080', '-e', '/bin/sh', '-c', 'cat >/dev/null'];

/**
 * The client, run with `node -e` inside the namespace: send N MiB to 127.0.0.1:port, half-close,
 * wait for the server to close, print MiB/s over connect-to-close.
 */
const CLIENT = `
const [port, mib] = process.argv.slice(1).map(Number);
const s = require('net').connect(port, '127.0.0.1');
const buf = Buffer.alloc(1 << 20);
const t0 = process.hrtime.bigint();
let n = 0;
const w = () => { while (n < mib) { n++; if (!s.write(buf)) { s.once('drain', w); return; } } s.end(); };
s.on('connect', w);
s.on('data', () => {});
s.on('error', (e) => { console.error(e.message); process.exitCode = 1; });
s.on('close', (bad) => { if (bad || process.exitCode) return; const ms = Number(process.hrtime.bigint() - t0) / 1e6; console.log((mib / ms * 1000).toFixed(1)); });
`;

async function send(holder: NsHolder, port: number, mib: number): Promise<number> {
  const out = await capture([...holder.netPrefix(), process.execPath, '-e', CLIENT, String(port), String(mib)], { timeoutMs: 60_000 });
  const v = Number(out.trim());
  if (!Number.isFinite(v) || v <= 0) throw new Error(`client printed ${JSON.stringify(out.trim())}`);
  return v;
}

/** Retry a 1 MiB send until the sink answers (a published port may exist before its listener). */
async function waitForSink(holder: NsHolder, port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await send(holder, port, 1);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function podmanStart(ctx: BenchContext, network: 'bridge' | 'none'): Subject {
  let e: Engine | undefined;
  return {
    name: `podman ${network}`,
    describe: `\`podman run --rm --network ${network} … /bin/true\` inside the private network namespace`,
    prepare: async () => {
      e = await ctx.podmanNet();
    },
    once: () => {
      const flags = e!.runFlags.map((f) => (f === 'none' ? network : f));
      return spawnOk([...e!.argv, 'run', '--rm', ...flags, e!.image, '/bin/true'], { timeoutMs: 30_000 });
    },
  };
}

/** A runtime in a temp state dir, so that its default bridge network is removed afterwards. */
async function tempRuntime(ctx: BenchContext): Promise<{ rt: BerthRuntime; root: string }> {
  const Runtime = (await loadRuntime()) as unknown as { open(o: { root: string }): Promise<BerthRuntime> };
  const root = mkdtempSync(join(ctx.fx.dir, 'berth-net-'));
  return { rt: await Runtime.open({ root }), root };
}

interface BerthNetwork {
  remove(): Promise<unknown>;
  inspect(): Promise<{ Containers: Record<string, unknown> }>;
}
interface BerthRuntime {
  networks: { get(name: string): Promise<BerthNetwork>; create(o: { name: string; subnet?: string }): Promise<BerthNetwork> };
  run(source: unknown, cmd: string[], options: Record<string, unknown>): Promise<{ exitCode: number }>;
}

function berthStart(ctx: BenchContext, network: 'bridge' | 'none'): Subject {
  let rt: BerthRuntime | undefined;
  let root = '';
  let net: BerthNetwork | undefined;
  return {
    name: `berth ${network}`,
    describe: `\`run({ rootfs }, ['/bin/true'], { network: ${network === 'bridge' ? "<the runtime's default bridge>" : "'none'"} })\``,
    prepare: async () => {
      ({ rt, root } = await tempRuntime(ctx));
      if (network === 'bridge') net = await rt.networks.get('bridge');
    },
    once: async () => {
      const t0 = process.hrtime.bigint();
      const r = await rt!.run({ rootfs: ctx.fx.rootfs }, ['/bin/true'], { network: net ?? 'none' });
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    },
    dispose: async () => {
      await net?.remove().catch(() => {});
      if (root) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Containers already on the network while one more joins and leaves (issue 17 §2). */
const SCALE_SIZES = [10, 250];

/**
 * Attach + detach of one container (`run(['/bin/true'])`: lease, name file, DNS hand-over, veth,
 * start, exit, release) on a user network that already holds `size` running containers. With
 * names answered by the network's resolver, nothing of the peers is touched: the cost must not
 * grow with `size` (the /etc/hosts rewrites it replaced touched every peer per join and leave).
 */
function berthScale(ctx: BenchContext, size: number): Subject {
  let rt: BerthRuntime | undefined;
  let root = '';
  let net: BerthNetwork | undefined;
  const ac = new AbortController();
  const parked: Array<Promise<unknown>> = [];
  return {
    name: `berth join+leave, ${size} on the network`,
    describe: `\`run({ rootfs }, ['/bin/true'], { network })\` on a user network (a /16) holding ${size} running \`sleep\` containers`,
    prepare: async () => {
      ({ rt, root } = await tempRuntime(ctx));
      net = await rt.networks.create({ name: `scale${size}` });
      // 10 at a time: the peers only need to be there, not to start fast.
      for (let i = 0; i < size; i += 10) {
        const end = Math.min(size, i + 10);
        for (let j = i; j < end; j++) {
          parked.push(rt!.run({ rootfs: ctx.fx.rootfs }, ['sleep', '3600'], { network: net, hostname: `peer${j}`, signal: ac.signal }).catch(() => {}));
        }
        const deadline = Date.now() + 60_000;
        while (Object.keys((await net!.inspect()).Containers).length < end) {
          if (Date.now() > deadline) throw new Error(`only ${Object.keys((await net!.inspect()).Containers).length} of ${end} peers started`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
    once: async () => {
      const t0 = process.hrtime.bigint();
      const r = await rt!.run({ rootfs: ctx.fx.rootfs }, ['/bin/true'], { network: net });
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    },
    dispose: async () => {
      ac.abort();
      await Promise.all(parked);
      await net?.remove().catch(() => {});
      if (root) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The host's own loopback: berth publishes on the host, not in the benchmark's namespace. */
const HOST: NsHolder = { netPrefix: () => [] } as unknown as NsHolder;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function podmanPort(ctx: BenchContext): Subject {
  let e: (Engine & { holder: NsHolder }) | undefined;
  let id = '';
  return {
    name: 'podman -p',
    describe: `\`podman run -d -p 127.0.0.1:${PORT_PUBLISHED}:8080\` busybox \`nc\` sink; ${MIB_PER_SAMPLE} MiB sent from the namespace's 127.0.0.1`,
    prepare: async () => {
      e = await ctx.podmanNet();
      const flags = e.runFlags.map((f) => (f === 'none' ? 'bridge' : f));
      id = (await capture([...e.argv, 'run', '-d', ...flags, '-p', `127.0.0.1:${PORT_PUBLISHED}:8080`, e.image, ...SINK])).trim();
      await waitForSink(e.holder, PORT_PUBLISHED);
    },
    once: () => send(e!.holder, PORT_PUBLISHED, MIB_PER_SAMPLE),
    dispose: async () => {
      if (id) await spawnTimed([...e!.argv, 'rm', '-f', id], { timeoutMs: 30_000 });
    },
  };
}

/** The same sink with no container: what the namespace's loopback itself delivers. */
function directPort(ctx: BenchContext): Subject {
  let holder: NsHolder | undefined;
  let sink: ChildProcess | undefined;
  return {
    name: 'loopback, no container',
    describe: `the same busybox \`nc\` sink run directly in the namespace (chroot, no container) on ${PORT_DIRECT}`,
    prepare: async () => {
      holder = (await ctx.podmanNet()).holder;
      const args = [...holder.netPrefix(), 'chroot', ctx.fx.rootfs, ...SINK.map((a) => (a === '8080' ? String(PORT_DIRECT) : a))];
      sink = spawn(args[0]!, args.slice(1), { stdio: 'ignore' });
      await waitForSink(holder, PORT_DIRECT);
    },
    once: () => send(holder!, PORT_DIRECT, MIB_PER_SAMPLE),
    dispose: async () => {
      sink?.kill('SIGKILL');
    },
  };
}

function berthPort(ctx: BenchContext): Subject {
  let rt: BerthRuntime | undefined;
  let root = '';
  let net: BerthNetwork | undefined;
  let port = 0;
  const ac = new AbortController();
  let running: Promise<unknown> | undefined;
  return {
    name: 'berth ports',
    describe: `\`ports: ['127.0.0.1:<free>:8080']\` on a user bridge network, the same \`nc\` sink; ${MIB_PER_SAMPLE} MiB sent from the host's 127.0.0.1`,
    prepare: async () => {
      ({ rt, root } = await tempRuntime(ctx));
      net = await rt.networks.create({ name: 'bench' });
      port = await freePort();
      running = rt.run({ rootfs: ctx.fx.rootfs }, SINK, { network: net, ports: [`127.0.0.1:${port}:8080`], signal: ac.signal }).catch(() => {});
      await waitForSink(HOST, port);
    },
    once: () => send(HOST, port, MIB_PER_SAMPLE),
    dispose: async () => {
      ac.abort();
      await running;
      await net?.remove().catch(() => {});
      if (root) rmSync(root, { recursive: true, force: true });
    },
  };
}

/** berth's baseline: the same sink on the host's loopback, no container (chroot). */
function hostDirectPort(ctx: BenchContext): Subject {
  let sink: ChildProcess | undefined;
  let port = 0;
  return {
    name: 'host loopback, no container',
    describe: "the same busybox `nc` sink run with chroot on the host's 127.0.0.1 (berth ports' baseline)",
    prepare: async () => {
      port = await freePort();
      const args = ['chroot', ctx.fx.rootfs, ...SINK.map((a) => (a === '8080' ? String(port) : a))];
      sink = spawn(args[0]!, args.slice(1), { stdio: 'ignore' });
      await waitForSink(HOST, port);
    },
    once: () => send(HOST, port, MIB_PER_SAMPLE),
    dispose: async () => {
      if (sink?.pid) process.kill(sink.pid, 'SIGKILL');
    },
  };
}

/**
 * Workload 6: bridge-network start cost and published-port throughput. Opt-in (`--only
 * network`). The peers run inside a private network namespace held by the benchmark, so the
 * bridge, veths, NAT rules and ip_forward they set up never touch the host's network and
 * disappear with the namespace; all traffic is to that namespace's 127.0.0.1.
 */
export async function network(ctx: BenchContext): Promise<WorkloadResult[]> {
  const runs = Math.min(ctx.settings.runs, 30);
  ctx.log(`network start cost: 2 warm-up + ${runs} runs per tool, alternating`);
  const start = await alternate(
    ctx.pick([berthStart(ctx, 'bridge'), berthStart(ctx, 'none'), podmanStart(ctx, 'bridge'), podmanStart(ctx, 'none')]),
    { runs, warmup: 2, log: ctx.log },
  );
  ctx.log(`published-port throughput: ${THROUGHPUT_ROUNDS} × ${MIB_PER_SAMPLE} MiB per tool, alternating`);
  const tput = await alternate(ctx.pick([berthPort(ctx), hostDirectPort(ctx), podmanPort(ctx), directPort(ctx)]), { runs: THROUGHPUT_ROUNDS, warmup: 1, log: ctx.log });
  ctx.log(`join+leave with ${SCALE_SIZES.join(' and ')} containers on the network: 2 warm-up + ${runs} runs each, alternating`);
  const scale = await alternate(ctx.pick(SCALE_SIZES.map((n) => berthScale(ctx, n))), { runs, warmup: 2, log: ctx.log });
  return [
    {
      id: 'network-scale',
      title: 'User network: one container joins and leaves, with 10 vs 250 running on the network',
      unit: 'ms',
      better: 'lower',
      baseline: `berth join+leave, ${SCALE_SIZES[0]} on the network`,
      rows: scale,
      notes: [
        `${runs} runs per size, alternating between two networks of the same runtime. Names are answered by the network's resolver (\`berth-helper dns\`), so the ratio should stay ≈ 1; with the /etc/hosts rewrites it replaced, each join and leave rewrote every peer's file.`,
      ],
    },
    {
      id: 'network-start',
      title: 'Bridge network: start latency of `/bin/true` with and without a bridge',
      unit: 'ms',
      better: 'lower',
      baseline: 'podman none',
      rows: start,
      notes: [
        `${runs} runs per tool. The bridge's cost is the difference between a tool's bridge and none rows. crun has no networking of its own, so there is no crun row; docker is left out because its daemon here runs with \`--bridge none\`.`,
      ],
    },
    {
      id: 'network-throughput',
      title: 'Published-port throughput: 127.0.0.1 → container',
      unit: 'MiB/s',
      better: 'higher',
      baseline: 'podman -p',
      rows: tput,
      notes: [
        `${THROUGHPUT_ROUNDS} samples of ${MIB_PER_SAMPLE} MiB each: a Node client sends, half-closes and waits for the sink to close; rate over connect-to-close.`,
        'The no-container row is a reference, not a ceiling: on this machine the same sink behind veth + DNAT measured faster than over the namespace\'s plain loopback interface.',
      ],
    },
  ];
}

