/**
 * Rootless start latency by storage driver: `run({ rootfs }, ['true'])` as an unprivileged
 * user (made for the run, removed after) with overlay, fuse-overlayfs (the daemon in the held
 * user namespace, its mount handed over detached: docs/design/rootless.md) and vfs,
 * alternating run by run in one process of the user (bench/rootless-fuse-latency-child.ts).
 * /dev/fuse is given its usual mode 0666 for the run and put back.
 * Usage (as root): node --import tsx bench/rootless-fuse-latency.ts [runs]
 */
import { chmodSync, copyFileSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RootlessUser } from '../test/helpers/rootless-user.js';
import { tempDir } from '../test/helpers/registry.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-fuse-latency-child.ts');
const runs = Number(process.argv[2] ?? 20);
const work = tempDir('berth-rlfuse-bench-');
chmodSync(work.path, 0o755);
const rootfs = join(work.path, 'rootfs');
mkdirSync(join(rootfs, 'bin'), { recursive: true });
copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
for (const a of ['sh', 'true']) symlinkSync('busybox', join(rootfs, 'bin', a));
const fuseMode = statSync('/dev/fuse').mode & 0o7777;
chmodSync('/dev/fuse', 0o666);
const user = RootlessUser.create({ subids: true, prefix: 'berth-bench' });
let samples: Record<string, number[]>;
try {
  const r = await user.runNode(CHILD, [rootfs, String(runs)], { guardMs: 600_000 });
  if (r.code !== 0) throw new Error(r.stderr.trim().split('\n').slice(-8).join('\n'));
  samples = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number[]>;
} finally {
  user.remove();
  chmodSync('/dev/fuse', fuseMode);
  work.remove();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('| rootless storage driver | median ms | min–max ms | n |');
console.log('| --- | ---: | ---: | ---: |');
for (const [d, xs] of Object.entries(samples)) console.log(`| ${d} | ${median(xs)} | ${Math.min(...xs)}–${Math.max(...xs)} | ${xs.length} |`);
