/**
 * Child process of limits-best-effort.test.ts, started (as root) inside a private mount
 * namespace where every cgroup filesystem is remounted read-only, so berth's cgroup mkdir fails
 * with EROFS exactly as it would inside a container with a read-only cgroupfs. Runs each case
 * and prints one JSON line per case: `{ name, ok, result | error }`.
 * Usage: limits-readonly-child.ts <rootfs> <state-root>
 */
import { Runtime, run } from '../../lib/index.js';
import { report } from '../helpers/case-report.js';

const [rootfs, root] = process.argv.slice(2) as [string, string];
const source = { rootfs };
const capEff = 'grep CapEff /proc/self/status; echo pid=$$; ls /sys/fs/cgroup 2>/dev/null | wc -l';

await report('strict-memory', () => run(source, ['true'], { memory: '64m' }));
await report('strict-pids', () => run(source, ['true'], { pids: 100, limits: 'strict' }));
await report('best-effort', () => run(source, ['sh', '-c', capEff], { memory: '64m', cpus: 0.5, limits: 'best-effort' }));
await report('no-limits', () => run(source, ['sh', '-c', 'echo ran']));
const rt = await Runtime.open({ root });
await report('container', async () => {
  const c = await rt.containers.create({ image: source, cmd: ['sleep', '30'], memory: '32m', limits: 'best-effort' });
  try {
    await c.start();
    const exec = await c.exec(['echo', 'exec-ok']);
    const inspect = await c.inspect();
    const stats = await c.stats().then(() => 'read', (e: Error) => `${e.name}: ${e.message}`);
    return { exec: exec.stdout, limitsSkipped: inspect.State.LimitsSkipped, stats };
  } finally {
    await c.remove({ force: true });
  }
});
await report('container-strict', async () => {
  const c = await rt.containers.create({ image: source, cmd: ['true'], memory: '32m' });
  try {
    await c.start();
    return 'started';
  } finally {
    await c.remove({ force: true });
  }
});
const info = await rt.info();
console.log(JSON.stringify({ name: 'info', ok: true, result: info.Limits }));
await rt.close();
