/**
 * Child process of containers-list-peers.test.ts: a second Runtime on the same state dir that
 * does what it is told, one command a line on stdin, and answers each with one line
 * (`ok <result>` or `err <message>`).
 *   create <name> <sh script>   a detached busybox container; answers its id
 *   start|stop|remove <id>      (stop: 2 s timeout; remove: force)
 * Usage: containers-child-peer.ts <root> <rootfs>
 */
import { createInterface } from 'node:readline';
import { Runtime } from '../../lib/runtime.js';

const [root, rootfs] = process.argv.slice(2);
const rt = await Runtime.open({ root: root! });
for await (const line of createInterface({ input: process.stdin })) {
  const [verb, arg, ...rest] = line.split(' ');
  try {
    let result = '';
    if (verb === 'create') {
      result = (await rt.containers.create({ image: { rootfs: rootfs! }, name: arg!, cmd: ['sh', '-c', rest.join(' ')], lifetime: 'detached', memory: '32m', pids: 16 })).id;
    } else if (verb === 'start') {
      await (await rt.containers.get(arg!)).start();
    } else if (verb === 'stop') {
      await (await rt.containers.get(arg!)).stop({ timeout: 2000 });
    } else if (verb === 'remove') {
      await (await rt.containers.get(arg!)).remove({ force: true });
    } else {
      throw new Error(`unknown command ${verb}`);
    }
    process.stdout.write(`ok ${result}\n`);
  } catch (error) {
    process.stdout.write(`err ${(error as Error).message.replace(/\n/g, ' ')}\n`);
  }
}
await rt.close();
