/**
 * One-off measurement (docs/design/networks.md § Published ports without root): connect +
 * HTTP GET + close through a rootless published port, for a container on a user network (the
 * `berth-helper port-forward` splice into the rootless namespace) and for a container with
 * its own pasta (`network: 'bridge'`, pasta's own forwarding), both busybox httpd, requests
 * alternating, N each after 20 warm-up requests each; then the throughput of a 64 MiB GET
 * through each, 5 alternating downloads, the median.
 * As root: `node --import tsx bench/rootless-ports-latency.ts [N]` makes a user with
 * test/helpers/rootless-user.ts, runs itself as that user, prints medians and minima in ms,
 * removes the user.
 */
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const n = Number(process.argv[2] ?? '200');

function get(port: number, path = '/'): Promise<number> {
  return new Promise((resolve, reject) => {
    // A new connection each time (no keep-alive agent): the connect is what is measured.
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve(bytes));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function untilUp(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await get(port).then(() => true, () => false)) return;
    await sleep(100);
  }
  throw new Error(`port ${port} never answered`);
}

async function inner(): Promise<void> {
  const { Runtime } = await import('../lib/index.js');
  const root = mkdtempSync(join(process.env['HOME']!, 'rootfs-'));
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'www']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  symlinkSync('busybox', join(root, 'bin/httpd'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'www/index.html'), 'hello\n');
  writeFileSync(join(root, 'www/big'), Buffer.alloc(64 << 20, 7));
  const rt = await Runtime.open();
  await rt.networks.create({ name: 'benchports' });
  const kinds = { forwarder: 'benchports', pasta: 'bridge' } as const;
  const ports: Record<string, number> = {};
  const started = [];
  for (const [kind, network] of Object.entries(kinds)) {
    const c = await rt.containers.create({ name: `bench-${kind}`, image: { rootfs: root }, cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], network, ports: [8080] });
    await c.start();
    ports[kind] = c.getMappedPort(8080);
    await untilUp(ports[kind]!);
    started.push(c);
  }
  const times: Record<string, number[]> = { forwarder: [], pasta: [] };
  for (let i = 0; i < 20; i++) for (const k of Object.keys(kinds)) await get(ports[k]!);
  for (let i = 0; i < n; i++) {
    for (const k of Object.keys(kinds)) {
      const t0 = performance.now();
      await get(ports[k]!);
      times[k]!.push(performance.now() - t0);
    }
  }
  const mibps: Record<string, number[]> = { forwarder: [], pasta: [] };
  for (let i = 0; i < 5; i++) {
    for (const k of Object.keys(kinds)) {
      const t0 = performance.now();
      const bytes = await get(ports[k]!, '/big');
      if (bytes !== 64 << 20) throw new Error(`${k}: got ${bytes} bytes`);
      mibps[k]!.push(64 / ((performance.now() - t0) / 1000));
    }
  }
  for (const c of started) await c.remove({ force: true });
  await rt.networks.remove('benchports');
  await rt.close();
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const min = (a: number[]) => Math.min(...a);
  console.log(JSON.stringify(Object.fromEntries(Object.keys(kinds).map((k) => [k, { median: +median(times[k]!).toFixed(3), min: +min(times[k]!).toFixed(3), mibPerS: Math.round(median(mibps[k]!)) }]))));
}

async function outer(): Promise<void> {
  const { RootlessUser } = await import('../test/helpers/rootless-user.js');
  // A host without udev leaves the tun device 0600; the user gets it 0666 while it exists.
  const user = RootlessUser.create({ prefix: 'berth-bp', openDevices: ['/dev/net/tun'] });
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
