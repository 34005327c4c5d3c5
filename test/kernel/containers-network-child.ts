/**
 * Child process of containers-network.test.ts: starts one busybox web server container on the
 * network `<net>`, published on 127.0.0.1:<port>, and prints `{ id, pid }`.
 *
 * - `owner`: `lifetime: 'process'`; idles until it is killed (the test SIGKILLs it).
 * - `detached`: `lifetime: 'detached'`; exits at once, leaving the container to its monitor.
 *
 * Usage: containers-network-child.ts owner|detached <root> <rootfs> <net> <port> <name>
 */
import { Runtime } from '../../lib/runtime.js';

const [mode, root, rootfs, net, port, name] = process.argv.slice(2);
const rt = await Runtime.open({ root: root! });
const c = await rt.containers.create({
  image: { rootfs: rootfs! },
  cmd: ['sh', '-c', `mkdir -p /www && echo served-by-${name} > /www/index.html && exec httpd -f -p 8080 -h /www`],
  name: name!,
  network: net!,
  ports: [`127.0.0.1:${port}:8080`],
  lifetime: mode === 'detached' ? 'detached' : 'process',
});
await c.start();
process.stdout.write(`${JSON.stringify({ id: c.id, pid: (await c.inspect()).State.Pid })}\n`);
if (mode === 'owner') setInterval(() => {}, 1 << 30);
