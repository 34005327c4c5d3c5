/**
 * `containers.list()` with N containers present, in seconds instead of the density workload's
 * quarter of an hour: a state dir of N *recorded* detached containers, copies of one real
 * `create()`, each marked running under a live monitor identity (`sleep`s this script starts stand in for
 * the monitors, so `list()` takes its ordinary path: files, then /proc). No
 * container runs; what is measured is `list()`'s own work. Wall and CPU time per call, and the
 * load average, since the machine is shared.
 *
 *   node --import tsx bench/list-profile.ts [N=1000] [lists=15] [--monitors K] [--lib DIR] [--cpuprofile FILE]
 *
 * `--monitors K`: K `sleep`s stand in for the monitors, round robin (default N: one process per
 * container, as real monitors; 1 measures list() with /proc lookups of one hot entry).
 *
 * `--lib` points at another checkout's `lib/` (the code before a change) on the same state dir
 * shape. Removes its state dir and its `sleep` at the end.
 * @module
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const lib = resolve(flag('--lib') ?? fileURLToPath(new URL('../lib', import.meta.url)));
const cpuProfile = flag('--cpuprofile');
const monitorsFlag = flag('--monitors');
const n = Number(args[0] ?? 1000);
const monitors = Number(monitorsFlag ?? n);
const lists = Number(args[1] ?? 15);
if (!(n > 0 && n <= 100_000 && lists > 0 && lists <= 1000 && monitors > 0 && monitors <= n)) throw new Error('usage: list-profile.ts [N 1..100000] [lists 1..1000] [--lib DIR] [--cpuprofile FILE]');

interface Rt { containers: { create(o: object): Promise<{ id: string }>; list(o?: object): Promise<unknown[]> }; close(): Promise<void> }
const { Runtime } = (await import(join(lib, 'index.ts'))) as { Runtime: { open(o: object): Promise<Rt> } };

const root = mkdtempSync(join(tmpdir(), 'berth-list-profile-'));
const stands = Array.from({ length: monitors }, () => spawn('sleep', ['3600'], { stdio: 'ignore' }));
try {
  const rootfs = join(root, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  let rt = await Runtime.open({ root: join(root, 'state') });
  const model = await rt.containers.create({ image: { rootfs }, cmd: ['/bin/sleep', '1'], lifetime: 'detached', memory: '64m', pids: 32 });
  await rt.close();
  const identities = stands.map((p) => {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return { pid: p.pid!, startTime: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]! };
  });
  const dir = join(root, 'state', 'containers');
  const config = JSON.parse(readFileSync(join(dir, model.id, 'config.json'), 'utf8')) as Record<string, unknown>;
  const state = JSON.parse(readFileSync(join(dir, model.id, 'state.json'), 'utf8')) as Record<string, unknown>;
  rmSync(join(dir, model.id), { recursive: true });
  rmSync(join(dir, 'names', config.name as string));
  const started = new Date(Date.now() - 60_000).toISOString();
  for (let i = 0; i < n; i++) {
    const id = randomBytes(32).toString('hex');
    const monitor = identities[i % identities.length]!;
    const { pid, startTime } = monitor;
    const name = `listed-${i}`;
    mkdirSync(join(dir, id));
    writeFileSync(join(dir, id, 'config.json'), JSON.stringify({ ...config, id, name, created: new Date(Date.now() - (n - i) * 1000).toISOString() }));
    writeFileSync(join(dir, id, 'state.json'), JSON.stringify({ ...state, status: 'running', pid, pidStartTime: startTime, monitor, startedAt: started }));
    writeFileSync(join(dir, id, 'run.json'), JSON.stringify({ monitorPid: pid, status: 'running', pid, pidStartTime: startTime, startedAt: started, restartCount: 0, retries: 0, manuallyStopped: false, error: '' }));
    writeFileSync(join(dir, 'names', name), `${id}\n`);
  }
  rt = await Runtime.open({ root: join(root, 'state') });
  const session = cpuProfile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < lists; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const rows = await rt.containers.list();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    if (rows.length !== n) throw new Error(`list() returned ${rows.length} of ${n}`);
  }
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(cpuProfile!, JSON.stringify(profile));
    session.disconnect();
  }
  await rt.close();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
  console.log(`lib ${lib}, ${n} containers, ${monitors} monitor processes, ${lists} lists, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(`first list: wall ${wall[0]!.toFixed(1)} ms, cpu ${cpu[0]!.toFixed(1)} ms`);
  console.log(`later lists: wall median ${median(wall.slice(1)).toFixed(1)} ms (${fmt(wall.slice(1))})`);
  console.log(`later lists: cpu  median ${median(cpu.slice(1)).toFixed(1)} ms (${fmt(cpu.slice(1))})`);
} finally {
  for (const p of stands) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
}
