/**
 * Child process of containers-detached.test.ts, playing a PaaS backend that deploys an app and
 * exits: a detached app with `restart: 'on-failure:3'` and a healthcheck on the network
 * `<net>`. The app crashes on its first run (exit 7) and is healthy from its second. Prints
 * `{ id, pid }` and exits.
 * Usage: containers-child-paas.ts <root> <rootfs> <net> <name>
 */
import { Runtime } from '../../lib/runtime.js';

const [root, rootfs, net, name] = process.argv.slice(2);
const rt = await Runtime.open({ root: root! });
const app = await rt.containers.create({
  image: { rootfs: rootfs! },
  // The writable layer outlives a restart: the marker tells the second run from the first.
  cmd: ['sh', '-c', 'if [ -f /crashed ]; then echo serving; touch /ready; exec sleep 100000; fi; touch /crashed; echo crashing >&2; exit 7'],
  name: name!,
  network: net!,
  lifetime: 'detached',
  restart: 'on-failure:3',
  healthcheck: { test: ['CMD-SHELL', 'test -f /ready && echo ready-on-$(hostname)'], interval: '200ms', timeout: '5s', retries: 3 },
});
await app.start();
process.stdout.write(`${JSON.stringify({ id: app.id, pid: (await app.inspect()).State.Pid })}\n`);
