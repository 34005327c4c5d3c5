/**
 * Child process of containers-crash.test.ts: create/start/wait/remove churn in a shared state
 * dir, racing a sibling for a set of shared names. Prints a JSON summary on stdout.
 * Usage: containers-child-churn.ts <root> <rootfs> <tag> <count>
 */
import { ConflictError, isBerthError } from '../../lib/errors.js';
import { Runtime } from '../../lib/runtime.js';

const [root, rootfs, tag, countText] = process.argv.slice(2);
const count = Number(countText);
const rt = await Runtime.open({ root: root! });
const kept: string[] = [];
const removed: string[] = [];
const sharedWon: Array<{ name: string; id: string }> = [];
let conflicts = 0;
await Promise.all(
  Array.from({ length: count }, async (_, i) => {
    const c = await rt.containers.create({ image: { rootfs: rootfs! }, cmd: ['sh', '-c', `echo ${tag}-${i}`], name: `${tag}-${i}`, labels: { owner: tag! } });
    await c.start();
    const exit = await c.wait();
    if (exit.exitCode !== 0) throw new Error(`${tag}-${i} exited ${exit.exitCode}`);
    if (i % 2 === 0) {
      await c.remove();
      removed.push(c.id);
    } else {
      kept.push(c.id);
    }
    if (i < 10) {
      try {
        const s = await rt.containers.create({ image: { rootfs: rootfs! }, cmd: ['true'], name: `shared-${i}` });
        sharedWon.push({ name: `shared-${i}`, id: s.id });
      } catch (error) {
        if (!(isBerthError(error) && error instanceof ConflictError)) throw error;
        conflicts++;
      }
    }
  }),
);
process.stdout.write(`${JSON.stringify({ kept, removed, sharedWon, conflicts })}\n`);
