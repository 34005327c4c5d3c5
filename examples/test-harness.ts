// A testcontainers-style harness: a web server on a published port, waited for over HTTP,
// reached through getHost()/getMappedPort(), always cleaned up. Runs on plain Node 20: the
// cleanup is try/finally. (On Node 24, or through a transpiler, `await using rt = await
// Runtime.open(…)` and `await using web = await rt.containers.create(…)` do the same.)
import { Runtime, WaitTimeoutError } from 'berth';

const rt = await Runtime.open({ root: process.env.BERTH_ROOT ?? '/tmp/berth-harness' }); // a state dir for the tests alone
try {
  const web = await rt.containers.create({
    image: { rootfs: process.env.BERTH_ROOTFS ?? '/srv/busybox' }, // a directory with a static busybox
    cmd: ['sh', '-c', 'mkdir -p /www && echo ok > /www/health && exec httpd -f -p 8080 -h /www'],
    ports: ['8080'], // publishing alone puts the container on the default bridge network
  });
  try {
    await web.start();
    try {
      await web.waitForHttp('/health', { port: 8080, status: 200, body: 'ok', timeout: 10_000 });
    } catch (error) {
      // Says what was awaited and what was seen last: status, body, connection error.
      if (error instanceof WaitTimeoutError) console.error(error.awaited, error.lastStatus, error.lastError);
      throw error;
    }
    const url = `http://${web.getHost()}:${web.getMappedPort(8080)}/health`;
    console.log(url, await (await fetch(url)).text());
    console.log((await rt.containers.list())[0]?.Ports); // [{ IP: '127.0.0.1', PrivatePort: 8080, PublicPort: …, Type: 'tcp' }]
  } finally {
    await web.remove({ force: true }); // kill() and stop() resolve once the exit is recorded
  }
  // `ports` created the default bridge network (a Linux bridge and NAT rules); a harness leaves
  // the host as it found it. The next run that publishes a port creates it again.
  await rt.networks.remove('bridge');
} finally {
  await rt.close(); // nothing berth holds keeps Node alive afterwards
}
