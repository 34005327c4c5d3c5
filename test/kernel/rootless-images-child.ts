/**
 * The rootless program of rootless-images.test.ts: runs as the unprivileged test user, pulls
 * from the test's loopback registry and uses the image, printing one JSON line per case:
 * `{ name, ok, result | error }`. The parent (root) asserts, and looks at the files on the host.
 * Usage: rootless-images-child.ts <image ref> <attack tar dir> <case>...
 */
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, run, spawn } from '../../lib/index.js';
import { reportCases, type Cases } from '../helpers/case-report.js';

const [ref, attackDir, ...cases] = process.argv.slice(2) as [string, string, ...string[]];
const home = process.env['HOME']!;

async function withRuntime<T>(body: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await Runtime.open();
  try {
    return await body(rt);
  } finally {
    await rt.close();
  }
}

/** What a file looks like from inside: owner, mode (octal), type. */
const STAT = 'stat -c "%n %u:%g %a %F"';
const INSIDE = [
  `${STAT} /srv /srv/owned /usr/bin/passwd /usr/bin/wall /home/user/secret`,
  'echo ---', 'ls -A /var/cache', 'echo ---', 'ls /etc/hostname /etc/motd /usr/share/doc 2>&1; true',
  'echo ---', 'cat /usr/lib/c /opt/dir /opt/thing/now-a-dir',
  'echo ---', 'cat /proc/self/uid_map',
].join('; ');

type Container = Awaited<ReturnType<Runtime['containers']['create']>>;

/** Detached: exec (as root and as 33), stop, restart, logs; the caller removes it. */
async function detachedLifecycle(c: Container): Promise<unknown> {
  await c.start();
    const exec1 = await c.exec(['sh', '-c', 'cat /srv/owned; stat -c "%u:%g" /srv/owned; echo x > /srv/from-exec; stat -c "%u:%g" /srv/from-exec']);
    const asWww = await c.exec(['id', '-u'], { user: '33' });
    await c.stop({ timeout: 1 });
    const afterStop = (await c.inspect()).State.Status;
    await c.restart({ timeout: 1 });
    const afterRestart = await c.exec(['cat', '/srv/from-exec']);
    await c.stop({ timeout: 1 });
    const logs: string[] = [];
    for await (const line of c.logs()) logs.push(line.text);
    const upper = (await c.inspect()).GraphDriver.Data?.['UpperDir'];
  return { exec1, asWww, afterStop, afterRestart, logs, upper };
}

const all: Cases = {
  pull: () => withRuntime(async (rt) => {
    const img = await rt.images.pull(ref);
    return { root: rt.root, id: img.id, layers: img.layers.map((l) => rt.images.store.layerDir(l.chainId)), tmp: readdirSync(rt.images.store.tmpDir) };
  }),
  'run-image': () => run(ref, ['sh', '-c', INSIDE]),
  'run-as-33': async () => {
    const r = await run(ref, ['sh', '-c', 'id -u; cat /srv/owned; echo new > /srv/by-33 && stat -c "%u:%g" /srv/by-33'], { user: '33:33' });
    // The launch's child shares Node's memory until its exec; its switch to user 33 made the
    // kernel mark that memory, Node's, not dumpable, which hands Node's /proc files to root.
    return { ...r, procSelfOwner: statSync('/proc/self/fd').uid, nodeUid: process.getuid!() };
  },
  spawn: async () => {
    const sb = spawn(ref, ['sh', '-c', 'cat /srv/owned; id -u']);
    const chunks: Buffer[] = [];
    sb.stdout!.on('data', (c: Buffer) => chunks.push(c));
    const exit = await sb.exited;
    return { exit, stdout: Buffer.concat(chunks).toString() };
  },
  detached: () => withRuntime(async (rt) => {
    const c = await rt.containers.create({ image: ref, cmd: ['sh', '-c', 'echo started; exec sleep 600'] });
    try {
      return await detachedLifecycle(c);
    } finally {
      await c.remove({ force: true });
    }
  }),  unpack: () => withRuntime(async (rt) => {
    const dest = join(mkdtempSync(join(home, 'unpack-')), 'rootfs');
    await rt.images.unpack(ref, dest);
    return { dest };
  }),
  'import-attack-dotdot': () => withRuntime(async (rt) => rt.images.import(join(attackDir, 'dotdot.tar'))),
  'import-attack-symlink': () => withRuntime(async (rt) => rt.images.import(join(attackDir, 'symlink.tar'))),
  'import-ok': () => withRuntime(async (rt) => {
    const img = await rt.images.import(join(attackDir, 'ok.tar'), { ref: 'rl/imported:1' });
    const r = await rt.run('rl/imported:1', ['/bin/busybox', 'stat', '-c', '%u:%g', '/data/by-33']);
    return { id: img.id, run: r };
  }),
  remove: () => withRuntime(async (rt) => {
    for (const img of await rt.images.list()) await rt.images.remove(img.id, { force: true });
    const store = rt.images.store;
    return { layers: readdirSync(store.layersDir), tmp: readdirSync(store.tmpDir), blobs: readdirSync(store.blobsDir) };
  }),
  info: () => withRuntime(async (rt) => {
    const i = await rt.info();
    return { Driver: i.Driver, IdMapping: i.IdMapping.mode };
  }),
};

await reportCases(all, cases);
