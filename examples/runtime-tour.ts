// A tour of the runtime: pull, a user network, a named volume, a published port, exec, logs.
// Needs a registry with the image (e.g. Debian's docker-registry on 127.0.0.1:5000, fed by
// skopeo), whose image has busybox's sh, nc and httpd. The state dir is $BERTH_ROOT, else
// /var/lib/berth. Type-checked and run by test/examples/examples.test.ts.
import { Runtime } from 'berth';

const ref = process.argv[2] ?? '127.0.0.1:5000/app:1';
const rt = await Runtime.open({ root: process.env.BERTH_ROOT }); // default state dir: /var/lib/berth
const img = await rt.images.pull(ref, { onProgress: (p) => console.log(p.state, p.layer) });

const net = await rt.networks.create({ name: 'backend' });
const db = await rt.containers.create({
  image: img.id,
  name: 'db',
  cmd: ['sh', '-c', 'echo ready; exec nc -ll -p 5432 -e cat'],
  network: 'backend',
  mounts: [{ type: 'volume', source: 'dbdata', target: '/data' }],
});
db.on('exit', (e) => console.log('db exited', e.exitCode));
await db.start();
await db.waitForLog(/ready/);

const web = await rt.containers.create({
  image: img.id,
  cmd: ['httpd', '-f', '-p', '8080'],
  network: 'backend',
  ports: ['127.0.0.1:0:8080'],
});
await web.start();
await web.waitForPort(8080);
console.log(await web.port(8080)); // [{ hostIp: '127.0.0.1', hostPort: … }]
console.log((await web.exec(['sh', '-c', 'echo hi | nc db 5432'])).stdout);
for await (const entry of db.logs({ tail: 10 })) console.log(entry.stream, entry.line);

for (const c of [web, db]) {
  await c.stop();
  await c.remove();
}
await net.remove();
await rt.volumes.remove('dbdata');
await rt.close();
