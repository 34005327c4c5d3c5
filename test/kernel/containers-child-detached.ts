/**
 * Child process of containers-crash.test.ts: starts `lifetime: 'detached'` containers and
 * exits normally, printing their ids.
 * Usage: containers-child-detached.ts <root> <rootfs>
 */
import { Runtime } from '../../lib/runtime.js';

const [root, rootfs] = process.argv.slice(2);
const rt = await Runtime.open({ root: root! });
const long = await rt.containers.create({ image: { rootfs: rootfs! }, cmd: ['sh', '-c', 'echo detached-hello; trap "echo bye; exit 0" TERM; while :; do sleep 0.05; done'], lifetime: 'detached', name: 'detached-long' });
await long.start();
const short = await rt.containers.create({ image: { rootfs: rootfs! }, cmd: ['sh', '-c', 'sleep 0.5; echo short-done; exit 3'], lifetime: 'detached', name: 'detached-short' });
await short.start();
process.stdout.write(`${JSON.stringify({ long: long.id, short: short.id, pid: (await long.inspect()).State.Pid })}\n`);
