/**
 * Pull + unpack timing, berth vs `skopeo copy` + `umoci unpack`, on a 15-layer image of about
 * 23 MB (the shape issue 3 measures): a busybox layer, 2000 small files, four 4 MiB files, and
 * small layers. Not one of `npm run bench`'s workloads (that one pulls bench/multi:1 beside
 * podman and docker, see workloads/pull-unpack.ts); run it by hand (root, quiet machine) when
 * pull or unpack changes:
 *
 *   node --import tsx bench/pull-15-layers.ts [runs=7] [--profile]
 *
 * `--profile` writes a CPU profile of the berth pulls to ./pull-15-layers.cpuprofile.
 *
 * An untimed `sync` runs before each timed subject: berth makes what it pulled durable
 * (syncfs), umoci does not, and without it berth would also pay for writing back what the
 * previous subject left dirty.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { ImageService } from '../lib/image/image-service.js';
import { run, startRegistry, tempDir } from '../test/helpers/registry.js';
import { buildTar, type TarEntrySpec } from '../test/helpers/tar-builder.js';

const runs = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 7);
const profile = process.argv.includes('--profile');

async function buildImage(dir: string): Promise<string> {
  const layout = join(dir, 'layout');
  const image = `${layout}:bench`;
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  const layers: TarEntrySpec[][] = [];
  layers.push([
    { name: 'bin/', type: 'dir' },
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...['sh', 'ls', 'cat', 'wc'].map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
  ]);
  const small: TarEntrySpec[] = [{ name: 'small/', type: 'dir' }];
  for (let d = 0; d < 20; d++) {
    small.push({ name: `small/d${d}/`, type: 'dir' });
    for (let f = 0; f < 100; f++) small.push({ name: `small/d${d}/f${f}`, content: randomBytes(1024) });
  }
  layers.push(small);
  for (let b = 0; b < 4; b++) layers.push([{ name: 'big/', type: 'dir' }, { name: `big/blob${b}`, content: randomBytes(4 << 20) }]);
  for (let s = 0; s < 9; s++) layers.push([{ name: 'etc/', type: 'dir' }, { name: `etc/conf${s}`, content: randomBytes(20_000) }, ...(s > 0 ? [{ name: `etc/.wh.conf${s - 1}`, content: '' }] : [])]);
  for (const [i, entries] of layers.entries()) {
    const p = join(dir, `l${i}.tar`);
    writeFileSync(p, buildTar(entries));
    await run('umoci', ['raw', 'add-layer', '--image', image, p]);
  }
  return layout;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const work = tempDir('berth-pull-bench-');
const registry = await startRegistry();
try {
  const layout = await buildImage(work.path);
  await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${registry.host}/bench/multi:1`]);
  const ref = `${registry.host}/bench/multi:1`;
  const session = profile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
  }
  const berthPull: number[] = [];
  const berthPullUnpack: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const state = join(work.path, `state-${i}`);
    if (session && i === 1) await session.post('Profiler.start');
    await run('sync');
    let t0 = performance.now();
    const svc = new ImageService(state);
    await svc.pull(ref);
    const pulled = performance.now() - t0;
    if (session && i === runs) writeFileSync('pull-15-layers.cpuprofile', JSON.stringify((await session.post('Profiler.stop')).profile));
    await svc.unpack(ref, join(work.path, `unpack-${i}`));
    const both = performance.now() - t0;
    await run('sync');
    t0 = performance.now();
    const oci = join(work.path, `oci-${i}`);
    await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${oci}:t`]);
    await run('umoci', ['unpack', '--image', `${oci}:t`, join(work.path, `bundle-${i}`)]);
    const other = performance.now() - t0;
    for (const p of [state, join(work.path, `unpack-${i}`), oci, join(work.path, `bundle-${i}`)]) rmSync(p, { recursive: true, force: true });
    if (i === 0) continue; // warm-up
    berthPull.push(pulled);
    berthPullUnpack.push(both);
    theirs.push(other);
  }
  const m = { pull: median(berthPull), pullUnpack: median(berthPullUnpack), skopeoUmoci: median(theirs) };
  console.log(`runs ${runs} (median): berth pull ${m.pull.toFixed(0)} ms, pull + unpack ${m.pullUnpack.toFixed(0)} ms; skopeo copy + umoci unpack ${m.skopeoUmoci.toFixed(0)} ms`);
  console.log(`ratio pull / (skopeo + umoci) ${(m.pull / m.skopeoUmoci).toFixed(2)}; pull + unpack / (skopeo + umoci) ${(m.pullUnpack / m.skopeoUmoci).toFixed(2)}`);
  console.log(`all: pull ${berthPull.map((x) => x.toFixed(0)).join(' ')} | skopeo+umoci ${theirs.map((x) => x.toFixed(0)).join(' ')}`);
} finally {
  await registry.stop();
  work.remove();
}
