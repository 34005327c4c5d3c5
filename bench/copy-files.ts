/**
 * `docker cp` throughput: berth's copyTo/copyFrom against the classic way of copying into a
 * running container without a daemon, a host `tar c` piped into the container's own `tar x`
 * through `nsenter` (and back), on one large file and on a tree of small files. Reported as
 * ratios (berth time / peer time); no assertion. Run as root:
 *
 *   node --import tsx bench/copy-files.ts [--runs 5] [--big-mib 256] [--files 5000]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Runtime } from '../lib/runtime.js';
import { busyboxRootfs } from '../test/helpers/busybox-rootfs.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'big-mib': { type: 'string', default: '256' }, files: { type: 'string', default: '5000' } } });
const runs = Number(values.runs);
const work = mkdtempSync(join(tmpdir(), 'berth-bench-cp-'));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Times `fn` after flushing dirty pages, so no copy pays for the writeback of the one before. */
async function timed(fn: () => Promise<void> | void): Promise<number> {
  execFileSync('sync');
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const big = join(work, 'big');
mkdirSync(big);
writeFileSync(join(big, 'big.bin'), Buffer.alloc(Number(values['big-mib']) * 1024 * 1024, 7));
const tree = join(work, 'tree');
for (let i = 0; i < Number(values.files); i++) {
  const d = join(tree, `d${i % 50}`);
  if (i < 50) mkdirSync(d, { recursive: true });
  writeFileSync(join(d, `f${i}`), `file ${i}\n`.repeat(20));
}

const rt = await Runtime.open({ root: join(work, 'state') });
const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sleep', '100000'] });
try {
  await c.start();
  const pid = (await c.inspect()).State.Pid;
  const peerIn = (src: string, dest: string) => {
    const r = spawnSync('sh', ['-c', `tar -C ${src} -cf - . | nsenter -t ${pid} -m tar -C ${dest} -xf -`]);
    if (r.status !== 0) throw new Error(r.stderr.toString());
  };
  const peerOut = (src: string, dest: string) => {
    const r = spawnSync('sh', ['-c', `nsenter -t ${pid} -m tar -C ${src} -cf - . | tar -C ${dest} -xf -`]);
    if (r.status !== 0) throw new Error(r.stderr.toString());
  };
  const rows: string[] = ['| workload | berth (median ms) | tar via nsenter (median ms) | ratio |', '| --- | --- | --- | --- |'];
  for (const [name, src] of [[`one ${values['big-mib']} MiB file`, big], [`${values.files} small files`, tree]] as const) {
    const berthIn: number[] = [];
    const peerInT: number[] = [];
    const berthOut: number[] = [];
    const peerOutT: number[] = [];
    for (let i = 0; i < runs; i++) {
      await c.exec(['sh', '-c', 'rm -rf /tmp/b /tmp/p; mkdir -p /tmp/p']);
      const outB = join(work, `outb${i}`);
      const outP = join(work, `outp${i}`);
      mkdirSync(outP);
      // Alternate who goes first.
      if (i % 2 === 0) {
        berthIn.push(await timed(() => c.copyTo(src, '/tmp/b')));
        peerInT.push(await timed(() => peerIn(src, '/tmp/p')));
        berthOut.push(await timed(() => c.copyFrom('/tmp/b', outB)));
        peerOutT.push(await timed(() => peerOut('/tmp/p', outP)));
      } else {
        peerInT.push(await timed(() => peerIn(src, '/tmp/p')));
        berthIn.push(await timed(() => c.copyTo(src, '/tmp/b')));
        peerOutT.push(await timed(() => peerOut('/tmp/p', outP)));
        berthOut.push(await timed(() => c.copyFrom('/tmp/b', outB)));
      }
      rmSync(outB, { recursive: true, force: true });
      rmSync(outP, { recursive: true, force: true });
    }
    rows.push(`| ${name}, into the container | ${median(berthIn).toFixed(0)} | ${median(peerInT).toFixed(0)} | ${(median(berthIn) / median(peerInT)).toFixed(2)} |`);
    rows.push(`| ${name}, out of it | ${median(berthOut).toFixed(0)} | ${median(peerOutT).toFixed(0)} | ${(median(berthOut) / median(peerOutT)).toFixed(2)} |`);
  }
  console.log(rows.join('\n'));
  console.log(`\n${runs} runs each; ${execFileSync('nproc').toString().trim()} cores; load ${execFileSync('cat', ['/proc/loadavg']).toString().trim()}`);
} finally {
  await c.remove({ force: true });
  rmSync(work, { recursive: true, force: true });
}
