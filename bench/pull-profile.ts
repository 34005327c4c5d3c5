/**
 * Where the time of a berth pull goes, on the bench's docker-built images (bench/pull-images.ts):
 * by hand, when pull or unpack changes (root; docker.io, docker-registry, skopeo, umoci):
 *
 *   node --import tsx bench/pull-profile.ts [runs=5] [--registry 127.0.0.1:PORT] [--cpuprofile]
 *
 * Without `--registry` it starts a loopback registry and a private dockerd and builds the two
 * images first (about a minute and a half); with it, it pulls `bench/layers15:1` and
 * `bench/single100:1` from that registry. Per image and run, fresh store, an untimed `sync`
 * before: the pull's phases (resolve: manifest, config, locks until the first layer starts;
 * layers: until the last layer is `done`; commit: syncfs, renames, record), the syncfs time
 * inside, the CPU of the process and of its main thread, then `unpack()` into a fresh dir;
 * medians at the end. `--cpuprofile` writes a CPU profile of the runs to ./pull-profile.cpuprofile.
 *
 * The phases are read from outside: progress events and timing wrappers around two store
 * methods, installed by this script on the prototypes; the library has no profiling switch.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from '../lib/image/content-store.js';
import { ImageService } from '../lib/image/image-service.js';
import { ImageTable } from '../lib/image/image-table.js';
import { Dockerd } from './dockerd.js';
import { makeFixtures } from './fixtures.js';
import { buildPullImages, dockerBuilder, type PullImageName } from './pull-images.js';
import { LoopbackRegistry } from './registry.js';

const args = process.argv.slice(2);
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? 5);
const registryArg = args.includes('--registry') ? args[args.indexOf('--registry') + 1] : undefined;
const cpuprofile = args.includes('--cpuprofile');

/** Wall time spent in each wrapped method during one pull (calls may overlap). */
const spent = new Map<string, number>();
function timed(proto: object, method: string, label: string): void {
  const target = proto as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const original = target[method]!;
  target[method] = async function (this: unknown, ...a: unknown[]) {
    const t0 = performance.now();
    try {
      return await original.apply(this, a);
    } finally {
      spent.set(label, (spent.get(label) ?? 0) + performance.now() - t0);
    }
  };
}
timed(ContentStore.prototype, 'durable', 'syncfs');
timed(ImageTable.prototype, 'writeRecord', 'record');

/** CPU ms (user, system) of this process's main thread. */
function mainThreadCpu(): [number, number] {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const tick = 1000 / 100; // USER_HZ
  return [Number(f[11]) * tick, Number(f[12]) * tick];
}

interface Sample {
  pull: number;
  resolve: number;
  layers: number;
  commit: number;
  syncfs: number;
  record: number;
  cpuUser: number;
  cpuSys: number;
  mainUser: number;
  mainSys: number;
  unpack: number;
}

async function profileOnce(ref: string, dir: string): Promise<Sample> {
  const state = join(dir, 'state');
  const dest = join(dir, 'rootfs');
  execFileSync('sync');
  spent.clear();
  const main0 = mainThreadCpu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let firstLayer = 0;
  let lastDone = 0;
  const svc = new ImageService(state);
  await svc.pull(ref, {
    onProgress: (p) => {
      const t = performance.now() - t0;
      if (!firstLayer) firstLayer = t;
      if (p.state === 'done' || p.state === 'cached') lastDone = t;
    },
  });
  const pull = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const main1 = mainThreadCpu();
  const u0 = performance.now();
  await svc.unpack(ref, dest);
  const unpack = performance.now() - u0;
  rmSync(state, { recursive: true, force: true });
  rmSync(dest, { recursive: true, force: true });
  return {
    pull,
    resolve: firstLayer,
    layers: lastDone - firstLayer,
    commit: pull - lastDone,
    syncfs: spent.get('syncfs') ?? 0,
    record: spent.get('record') ?? 0,
    cpuUser: cpu.user / 1000,
    cpuSys: cpu.system / 1000,
    mainUser: main1[0] - main0[0],
    mainSys: main1[1] - main0[1],
    unpack,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function withRegistry<T>(fn: (addr: string) => Promise<T>): Promise<T> {
  if (registryArg) return fn(registryArg);
  const dir = mkdtempSync(join(tmpdir(), 'berth-pull-profile-'));
  const log = (s: string) => void process.stderr.write(`${s}\n`);
  const fx = await makeFixtures(dir);
  const reg = await LoopbackRegistry.start(join(dir, 'registry'), fx, log);
  try {
    const dockerd = await Dockerd.start(join(dir, 'docker'), log);
    try {
      const base = reg.ref('busybox');
      await buildPullImages(join(dir, 'pull-images'), reg.addr, base, fx.rootfs, dockerBuilder(['docker', '-H', dockerd.host], base), log);
    } finally {
      await dockerd.stop();
    }
    return await fn(reg.addr);
  } finally {
    await reg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await withRegistry(async (addr) => {
  const work = mkdtempSync(join(tmpdir(), 'berth-pull-profile-run-'));
  const session = cpuprofile ? new Session() : undefined;
  try {
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    for (const image of ['layers15', 'single100'] as PullImageName[]) {
      const ref = `${addr}/bench/${image}:1`;
      const samples: Sample[] = [];
      for (let i = 0; i <= runs; i++) {
        const s = await profileOnce(ref, join(work, `${image}-${i}`));
        if (i > 0) samples.push(s); // the first run warms the page cache and the code
        console.log(`${image} run ${i}${i === 0 ? ' (warm-up)' : ''}: ${Object.entries(s).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
      }
      const keys = Object.keys(samples[0]!) as (keyof Sample)[];
      console.log(`${image} median of ${runs} (ms): ${keys.map((k) => `${k} ${median(samples.map((s) => s[k])).toFixed(0)}`).join(', ')}`);
    }
    if (session) writeFileSync('pull-profile.cpuprofile', JSON.stringify((await session.post('Profiler.stop')).profile));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
