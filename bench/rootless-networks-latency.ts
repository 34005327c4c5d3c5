/**
 * One-off measurement (docs/design/networks.md § Shared networks without root): start latency
 * of a rootless `rt.run({ rootfs }, ['true'])` with network `none`, its own user-mode network
 * (`bridge`: a pasta per container) and a user network (a veth from the process's rootless
 * namespace), alternating, N runs each after one warm-up of each.
 * As root: `node --import tsx bench/rootless-networks-latency.ts [N]` makes a user with
 * test/helpers/rootless-user.ts, runs itself as that user, prints the medians, removes the user.
 */
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const n = Number(process.argv[2] ?? '20');

async function inner(): Promise<void> {
  const { Runtime } = await import('../lib/index.js');
  const root = mkdtempSync(join(process.env['HOME']!, 'rootfs-'));
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  symlinkSync('busybox', join(root, 'bin/true'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  const rt = await Runtime.open();
  await rt.networks.create({ name: 'bench' });
  const kinds = ['none', 'bridge', 'bench'] as const;
  const times: Record<string, number[]> = { none: [], bridge: [], bench: [] };
  for (const k of kinds) await rt.run({ rootfs: root }, ['true'], { network: k });
  for (let i = 0; i < n; i++) {
    for (const k of kinds) {
      const t0 = performance.now();
      const r = await rt.run({ rootfs: root }, ['true'], { network: k });
      times[k]!.push(performance.now() - t0);
      if (r.exitCode !== 0) throw new Error(`${k}: exit ${r.exitCode} ${r.stderr}`);
    }
  }
  await rt.networks.remove('bench');
  await rt.close();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const min = (a: number[]) => Math.min(...a);
  console.log(JSON.stringify(Object.fromEntries(kinds.map((k) => [k, { median: +median(times[k]!).toFixed(1), min: +min(times[k]!).toFixed(1) }]))));
}

async function outer(): Promise<void> {
  const { RootlessUser } = await import('../test/helpers/rootless-user.js');
  // A host without udev leaves the tun device 0600; the user gets it 0666 while it exists.
  const user = RootlessUser.create({ prefix: 'berth-bn', openDevices: ['/dev/net/tun'] });
  try {
    const r = await user.runNode(fileURLToPath(import.meta.url), [String(n), 'inner'], { guardMs: 600_000 });
    process.stdout.write(r.stdout);
    if (r.code !== 0) process.stderr.write(r.stderr);
  } finally {
    user.remove();
  }
}

if (process.argv[3] === 'inner') await inner();
else await outer();
