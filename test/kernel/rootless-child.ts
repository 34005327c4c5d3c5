/**
 * The rootless program of rootless.test.ts: runs as the unprivileged test user (through
 * test/helpers/rootless-user.ts), exercises berth with the environment a developer's shell
 * gives (HOME, XDG_DATA_HOME, XDG_RUNTIME_DIR) and prints one JSON line per case:
 * `{ name, ok, result | error }`. The parent asserts; this program only reports.
 * Usage: rootless-child.ts <rootfs> <case>...
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, run } from '../../lib/index.js';
import { reportCases, type Cases } from '../helpers/case-report.js';
import { userBusyboxRootfs } from '../helpers/user-busybox-rootfs.js';

const [rootfsArg, ...cases] = process.argv.slice(2) as [string, ...string[]];
const rootfs = rootfsArg === 'own' ? userBusyboxRootfs({ appUser: true }) : rootfsArg;
const source = { rootfs };
const inside = 'id -u; id -g; cat /proc/self/uid_map; grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status; echo pid=$$; cat /proc/kcore 2>&1 | head -c 60; echo';

const all: Cases = {
  rootfs: () => run(source, ['sh', '-c', inside]),
  host: () => run({ host: true }, ['sh', '-c', 'id -u; cat /proc/self/uid_map; touch /tmp/t && echo wrote-tmp']),
  chown: () => run(source, ['sh', '-c', 'touch /tmp/f && chown 1234:1234 /tmp/f && stat -c %u:%g /tmp/f']),
  'as-user-1000': () => run(source, ['id', '-u'], { user: '1000' }),
  bind: async () => {
    const dir = join(process.env['HOME']!, 'bind-src');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'mine'), 'x');
    const r = await run(source, ['sh', '-c', 'cat /b/mine; touch /b/by-root; touch /b/by-1000 && chown 1000:1000 /b/by-1000; true'], { mounts: [{ type: 'bind', source: dir, target: '/b' }] });
    const owner = (f: string) => { try { const st = statSync(join(dir, f)); return `${st.uid}:${st.gid}`; } catch (e) { return (e as Error).message; } };
    return { run: r, byRoot: owner('by-root'), by1000: owner('by-1000') };
  },
  'bind-unreadable': () => run(source, ['true'], { mounts: [{ type: 'bind', source: '/root', target: '/r' }] }),
  volume: async () => {
    const rt = await Runtime.open();
    try {
      const r = await rt.run(source, ['sh', '-c', 'touch /data/by-root && touch /data/by-1000 && chown 1000:1000 /data/by-1000 && ls -ln /data'], { mounts: [{ type: 'volume', source: 'rlvol', target: '/data' }] });
      const vol = await rt.volumes.get('rlvol');
      const mp = (await vol.inspect()).Mountpoint;
      const owner = (f: string) => { const st = statSync(join(mp, f)); return `${st.uid}:${st.gid}`; };
      const out = { run: r, root: rt.root, byRoot: owner('by-root'), by1000: owner('by-1000') };
      await vol.remove();
      return out;
    } finally {
      await rt.close();
    }
  },
  'limits-strict': () => run(source, ['true'], { memory: '32m' }),
  'limits-best-effort': () => run(source, ['true'], { memory: '32m', limits: 'best-effort' }),
  'limits-applied': () => run(source, ['sh', '-c', 'cat /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; true'], { memory: '32m', pids: 50 }),
  container: async () => {
    const rt = await Runtime.open();
    try {
      const c = await rt.containers.create({ image: source, cmd: ['sh', '-c', 'echo from-container > /tmp/out; cat /tmp/out; id -u'] });
      await c.start();
      const exit = await c.wait();
      const logs: string[] = [];
      for await (const line of c.logs()) logs.push(line.text);
      await c.remove({ force: true });
      return { exit, logs };
    } finally {
      await rt.close();
    }
  },
  info: async () => {
    const rt = await Runtime.open();
    try {
      const i = await rt.info();
      return { Rootless: i.Rootless, RootDir: i.RootDir, IdMapping: { mode: i.IdMapping.mode, reason: i.IdMapping.reason }, Limits: i.Limits, Fixes: i.Fixes };
    } finally {
      await rt.close();
    }
  },
};

await reportCases(all, cases);
