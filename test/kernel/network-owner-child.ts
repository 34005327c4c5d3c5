/**
 * The owner process of `network-crash.test.ts`: starts a container with a published port on
 * the given network of the given state directory, prints `ready <pid>` once it runs, and waits
 * to be SIGKILLed.
 *   node --import tsx network-owner-child.ts <root> <network> <hostPort>
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../../lib/index.js';
import { NetworkService } from '../../lib/network/network-service.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';

const [root, name, port] = process.argv.slice(2);
const svc = new NetworkService(root!);
const net = await svc.get(name!);
void run({ rootfs: busyboxRootfs() }, ['sleep', '120'], { network: net, hostname: 'orphan', ports: [{ container: 80, host: Number(port), hostIp: '127.0.0.1' }] });
for (let i = 0; i < 200; i++) {
  const e = (await svc.store.readEndpoints()).endpoints.find((x) => x.hostname === 'orphan' && x.pid);
  if (e) {
    console.log(`ready ${e.pid!.pid}`);
    break;
  }
  await sleep(50);
}
await sleep(120_000);
