/**
 * The rootless program of rootless-fuse.test.ts: runs as the unprivileged test user with
 * `storageDriver: 'fuse-overlayfs'` (or the probe, with `BERTH_TEST_ROOT`), printing one JSON
 * line per case: `{ name, ok, result | error }`.
 * Usage: rootless-fuse-child.ts <image ref> <case>...
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Runtime } from '../../lib/index.js';
import { reportCases, type Cases } from '../helpers/case-report.js';

const [ref, ...cases] = process.argv.slice(2) as [string, ...string[]];

/** Inside: owners of an image file of id 33, the filesystem type of `/`, then a file written and read back. */
const INSIDE = 'stat -c "%u:%g" /srv/owned; awk \'$5 == "/" { for (i = 7; $i != "-"; i++); print $(i + 1) }\' /proc/self/mountinfo; echo written > /new && cat /new';

/** This user's fuse-overlayfs daemons (by /proc, as the host sees them). */
function daemons(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, 'utf8').trim() === 'fuse-overlayfs') out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

function ns(pid: number, kind: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

/** The container's view: fuse-overlayfs processes it can see, and whether its kill reached any. */
const ATTACK = 'for p in /proc/[0-9]*; do cat $p/comm 2>/dev/null; done | grep -c fuse-overlayfs; kill -9 -1 2>/dev/null; for p in $(pgrep fuse-overlayfs); do kill -9 $p; done; cat /srv/owned >/dev/null && echo root-still-served';

const all: Cases = {
  explicit: async () => {
    const rt = await Runtime.open({ storageDriver: 'fuse-overlayfs' });
    try {
      const info = await rt.info();
      await rt.images.pull(ref);
      const run = await rt.run(ref, ['sh', '-c', INSIDE]);
      const asWww = await rt.run(ref, ['sh', '-c', 'echo y > /srv/by-33 && stat -c "%u:%g" /srv/by-33'], { user: '33:33' });
      // spawn(): while it runs, where its daemon is (host side) against where the container is.
      const sb = rt.spawn(ref, ['sh', '-c', `${ATTACK}; sleep 600`]);
      await sb.spawned;
      let chunks = '';
      sb.stdout.setEncoding('utf8');
      sb.stdout.on('data', (d: string) => (chunks += d));
      for (let i = 0; i < 600 && !chunks.includes('root-still-served') && sb.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
      const live = daemons();
      const view = {
        attack: chunks,
        daemons: live.length,
        samePidns: live.some((d) => ns(d, 'pid') === ns(sb.pid!, 'pid')),
        sameUserns: live.every((d) => ns(d, 'user') === ns(sb.pid!, 'user')),
        sameMntns: live.some((d) => ns(d, 'mnt') === ns(sb.pid!, 'mnt')),
        rootFs: readFileSync(`/proc/${sb.pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/')?.split(' - ')[1]?.split(' ')[0],
      };
      sb.kill('SIGKILL');
      await sb.exited;
      // rt.containers (lifetime 'process'): the layer outlives a stop, a new daemon per start.
      const c = await rt.containers.create({ image: ref, cmd: ['sh', '-c', 'cat /kept 2>/dev/null || (echo kept > /kept && echo made)'] });
      let containers: unknown;
      try {
        const logText = async (): Promise<string> => {
          let text = '';
          for await (const e of c.logs()) text += e.text;
          return text;
        };
        await c.start();
        const first = await c.wait();
        const log1 = await logText();
        await c.start();
        await c.wait();
        const log2 = await logText();
        const inspect = await c.inspect();
        containers = { first, log1, log2, graphDriver: inspect.GraphDriver };
      } finally {
        await c.remove({ force: true });
      }
      const detached = await rt.containers
        .create({ image: ref, cmd: ['sh', '-c', 'sleep 600'], lifetime: 'detached' })
        .then(async (d) => {
          try {
            await d.start();
            return { started: true };
          } catch (error) {
            const e = error as Error & { code?: string; option?: string };
            return { code: e.code, option: e.option, message: e.message };
          } finally {
            await d.remove({ force: true });
          }
        });
      return {
        driver: info.Driver,
        status: info.DriverStatus,
        run,
        asWww,
        view,
        containers,
        detached,
        daemonsAfter: daemons().length,
        left: { layers: readdirSync(rt.images.store.layersDir).length, tmp: readdirSync(rt.images.store.tmpDir), containers: readdirSync(rt.containers.stateDir).filter((n) => /^[0-9a-f]{64}$/.test(n)) },
      };
    } finally {
      await rt.close();
    }
  },
  /** Prints its daemon's pid while a spawn()ed container runs, then waits to be killed (SIGKILL by the test). */
  owned: async () => {
    const rt = await Runtime.open({ storageDriver: 'fuse-overlayfs' });
    await rt.images.pull(ref);
    const sb = rt.spawn(ref, ['sh', '-c', 'sleep 600']);
    await sb.spawned;
    if (sb.pid === undefined) {
      const exit = await sb.exited;
      throw new Error(`the container did not start: ${JSON.stringify(exit)}`);
    }
    console.log(JSON.stringify({ name: 'owned', ok: true, result: { container: sb.pid, daemons: daemons() } }));
    await new Promise(() => {});
  },
  /** A state directory where kernel overlay refuses its upper dir (BERTH_TEST_ROOT), and an image without whiteouts (BERTH_TEST_TAR). */
  probed: async () => {
    const rt = await Runtime.open({ root: process.env['BERTH_TEST_ROOT']! });
    try {
      const info = await rt.info();
      const img = await rt.images.import(process.env['BERTH_TEST_TAR']!, { ref: 'rl/probed:1' });
      const run = await rt.run('rl/probed:1', ['/bin/busybox', 'sh', '-c', INSIDE.replace('/srv/owned', '/data/by-33')]);
      await rt.images.remove(img.id, { force: true });
      return { driver: info.Driver, status: info.DriverStatus, run, daemonsAfter: daemons().length };
    } finally {
      await rt.close();
    }
  },
  refused: async () => {
    const rt = await Runtime.open({ storageDriver: 'fuse-overlayfs' });
    await rt.close();
    return 'opened';
  },
};

await reportCases(all, cases);
