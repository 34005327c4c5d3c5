/**
 * Child of userns-auto.test.ts: allocates `count` ranges from the registry in `dir` as fast as
 * it can, prints the slots as JSON, and exits; the ranges stay held for `containerDir`, which
 * exists (a container outlives its creator).
 */
import { allocateAutoRange } from '../../lib/launch/userns.js';

const [dir, tag, count, containerDir] = process.argv.slice(2) as [string, string, string, string];
const slots: number[] = [];
for (let i = 0; i < Number(count); i++) {
  slots.push((await allocateAutoRange({ key: `test:${tag}:${i}`, containerDir }, { registryDir: dir })).slot);
}
process.stdout.write(`${JSON.stringify(slots)}\n`);
