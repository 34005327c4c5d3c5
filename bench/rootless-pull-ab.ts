/**
 * Rootless pull, before/after: pulls the 3-layer fixture image of test/helpers/fixture-image.ts
 * from a loopback registry as an unprivileged user (made for the run, removed after) with the
 * berth of each checkout given, alternating the checkouts round by round. Each run of a
 * checkout is one process of the user (bench/rootless-pull-ab-child.ts): a pull into a fresh
 * state directory with a new `Runtime` ("cold", the unpack helper starts during it), then the
 * image removed and pulled again in the same runtime ("second", the helper already running).
 * Usage (as root): node --import tsx bench/rootless-pull-ab.ts <checkout>[,<checkout>...] [rounds]
 * A checkout is a directory with lib/ and node_modules/ (e.g. /work/main and a worktree).
 */
import { chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RootlessUser } from '../test/helpers/rootless-user.js';
import { skopeoPush, startRegistry, tempDir } from '../test/helpers/registry.js';
import { buildFixtureImage, FIXTURE_TAG } from '../test/helpers/fixture-image.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-pull-ab-child.ts');
const checkouts = (process.argv[2] ?? '').split(',').filter(Boolean);
const rounds = Number(process.argv[3] ?? 5);
if (checkouts.length === 0) throw new Error('usage: rootless-pull-ab.ts <checkout>[,<checkout>...] [rounds]');

const work = tempDir('berth-rlpull-ab-');
chmodSync(work.path, 0o755);
const registry = await startRegistry();
const user = RootlessUser.create({ subids: true, prefix: 'berth-bench' });
const samples = new Map<string, { cold: number[]; second: number[] }>(checkouts.map((c) => [c, { cold: [], second: [] }]));
try {
  const layout = await buildFixtureImage(work.path);
  const ref = `${registry.host}/fixtures/busybox:1`;
  await skopeoPush(layout, FIXTURE_TAG, registry, 'fixtures/busybox:1');
  for (let round = 0; round < rounds; round++) {
    for (const checkout of checkouts) {
      const r = await user.runNode(CHILD, [checkout, ref], { cwd: checkout });
      if (r.code !== 0) throw new Error(`${checkout}: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
      const { cold, second } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { cold: number; second: number };
      samples.get(checkout)!.cold.push(cold);
      samples.get(checkout)!.second.push(second);
      process.stderr.write(`${checkout}: cold ${cold} ms, second ${second} ms\n`);
    }
  }
} finally {
  user.remove();
  await registry.stop();
  work.remove();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('| checkout | cold pull, median (min–max) ms | second pull, helper running, median (min–max) ms | n |');
console.log('| --- | ---: | ---: | ---: |');
for (const [c, s] of samples) {
  console.log(`| ${c} | ${median(s.cold)} (${Math.min(...s.cold)}–${Math.max(...s.cold)}) | ${median(s.second)} (${Math.min(...s.second)}–${Math.max(...s.second)}) | ${s.cold.length} |`);
}
