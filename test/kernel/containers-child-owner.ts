/**
 * Child process of containers-crash.test.ts: opens a runtime, starts containers with
 * `lifetime: 'process'`, reports their ids and pids on stdout, then idles until killed.
 * Usage: containers-child-owner.ts <root> <rootfs>
 */
import { Runtime } from '../../lib/runtime.js';

const [root, rootfs] = process.argv.slice(2);
const rt = await Runtime.open({ root: root! });
const out: Array<{ id: string; pid: number }> = [];
const specs = [
  { cmd: ['sleep', '300'] },
  { cmd: ['sleep', '300'], init: true },
  { cmd: ['sh', '-c', 'sleep 300 & sleep 301 & wait'] },
  { cmd: ['sh', '-c', 'while :; do echo tick; sleep 0.05; done'] },
];
for (const s of specs) {
  const c = await rt.containers.create({ image: { rootfs: rootfs! }, ...s });
  await c.start();
  out.push({ id: c.id, pid: (await c.inspect()).State.Pid });
}
// One paused: a frozen container must die with its owner too.
await (await rt.containers.get(out[3]!.id)).pause();
process.stdout.write(`${JSON.stringify(out)}\n`);
setInterval(() => {}, 1 << 30);
