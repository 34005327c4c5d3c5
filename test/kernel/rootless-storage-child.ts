/**
 * The rootless program of rootless-storage.test.ts: runs as the unprivileged test user with
 * a storage driver named in `Runtime.open`, pulls from the test's loopback registry and runs
 * from the image, printing one JSON line per case: `{ name, ok, result | error }`.
 * Usage: rootless-storage-child.ts <image ref> <case>...
 */
import { readdirSync } from 'node:fs';
import { Runtime } from '../../lib/index.js';
import { reportCases, type Cases } from '../helpers/case-report.js';

const [ref, ...cases] = process.argv.slice(2) as [string, ...string[]];

/** Inside: owners of an image file of id 33, then the filesystem type of `/` from mountinfo. */
const INSIDE = 'stat -c "%u:%g" /srv/owned; awk \'$5 == "/" { for (i = 7; $i != "-"; i++); print $(i + 1) }\' /proc/self/mountinfo';

const all: Cases = {
  vfs: async () => {
    const rt = await Runtime.open({ storageDriver: 'vfs' });
    try {
      const info = await rt.info();
      const img = await rt.images.pull(ref);
      const run = await rt.run(ref, ['sh', '-c', INSIDE]);
      const c = await rt.containers.create({ image: ref, cmd: ['sh', '-c', 'echo started; exec sleep 600'] });
      let detached: unknown;
      try {
        await c.start();
        const exec = await c.exec(['sh', '-c', `${INSIDE}; echo x > /srv/by-root && stat -c "%u:%g" /srv/by-root`]);
        const asWww = await c.exec(['sh', '-c', 'echo y > /srv/by-33 && stat -c "%u:%g" /srv/by-33'], { user: '33:33' });
        const inspect = await c.inspect();
        await c.stop({ timeout: 1 });
        detached = { exec, asWww, graphDriver: inspect.GraphDriver };
      } finally {
        await c.remove({ force: true });
      }
      await rt.images.remove(img.id, { force: true });
      const store = rt.images.store;
      return {
        driver: info.Driver,
        reason: info.DriverStatus,
        run,
        detached,
        left: { layers: readdirSync(store.layersDir), tmp: readdirSync(store.tmpDir), containers: readdirSync(rt.containers.stateDir) },
      };
    } finally {
      await rt.close();
    }
  },
  'fuse-overlayfs': async () => {
    const rt = await Runtime.open({ storageDriver: 'fuse-overlayfs' });
    await rt.close();
    return 'opened';
  },
  /** A state directory where kernel overlay refuses its upper dir (argv: the directory). */
  probed: async () => {
    const rt = await Runtime.open({ root: process.env['BERTH_TEST_ROOT']! });
    try {
      const info = await rt.info();
      // An image without whiteouts: a layer's whiteout device cannot be made on an overlay
      // backed store without root (docs/design/rootless.md), whatever the driver.
      const img = await rt.images.import(process.env['BERTH_TEST_TAR']!, { ref: 'rl/probed:1' });
      const run = await rt.run('rl/probed:1', ['/bin/busybox', 'sh', '-c', INSIDE.replace('/srv/owned', '/data/by-33')]);
      await rt.images.remove(img.id, { force: true });
      const pullError = await rt.images.pull(ref).then(
        () => undefined,
        (e: Error & { code?: string }) => ({ name: e.name, code: e.code, message: e.message }),
      );
      return { driver: info.Driver, status: info.DriverStatus, run, pullError, tmp: readdirSync(rt.images.store.tmpDir), layers: readdirSync(rt.images.store.layersDir) };
    } finally {
      await rt.close();
    }
  },
  default: async () => {
    const rt = await Runtime.open();
    try {
      const info = await rt.info();
      return { driver: info.Driver };
    } finally {
      await rt.close();
    }
  },
};

await reportCases(all, cases);
