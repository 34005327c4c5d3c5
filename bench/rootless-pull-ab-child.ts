/**
 * One run of bench/rootless-pull-ab.ts, as the unprivileged user: with the berth of the
 * checkout given, a pull into a fresh state directory (new runtime), then the image removed and
 * pulled again in the same runtime; prints `{ cold, second }` in ms.
 * Usage: rootless-pull-ab-child.ts <checkout> <image ref>
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [checkout, ref] = process.argv.slice(2) as [string, string];
const { Runtime } = (await import(join(checkout, 'lib/index.js'))) as typeof import('../lib/index.js');
const root = mkdtempSync(join(process.env['HOME']!, 'ab-'));
const rt = await Runtime.open({ root });
try {
  const t0 = performance.now();
  const img = await rt.images.pull(ref);
  const t1 = performance.now();
  await rt.images.remove(img.id, { force: true });
  const t2 = performance.now();
  const again = await rt.images.pull(ref);
  const t3 = performance.now();
  await rt.images.remove(again.id, { force: true });
  console.log(JSON.stringify({ cold: Math.round(t1 - t0), second: Math.round(t3 - t2) }));
} finally {
  await rt.close();
  rmSync(root, { recursive: true, force: true });
}
