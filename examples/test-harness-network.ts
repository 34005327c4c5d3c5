// Two containers of one test on a network of their own: the app reaches its database by an
// alias, the test waits for a log line and a listening port before it starts the app, and
// everything goes at the end (containers, then the network). Runs on plain Node 20:
// try/finally. Offline: a directory with a static busybox as the root (BERTH_ROOTFS).
import { Runtime } from 'berth';

const rootfs = { rootfs: process.env.BERTH_ROOTFS ?? '/srv/busybox' };
const rt = await Runtime.open({ root: process.env.BERTH_ROOT ?? '/tmp/berth-harness' });
try {
  const net = await rt.networks.create({ name: `test-${process.pid}` }); // one network per test run
  try {
    const db = await rt.containers.create({
      image: rootfs,
      cmd: ['sh', '-c', 'mkdir -p /www && echo "rows: 3" > /www/rows && echo "db ready" && exec httpd -f -p 5432 -h /www'],
      networks: [{ network: net, aliases: ['db'] }], // peers resolve `db` (and its name, hostname)
    });
    const app = await rt.containers.create({ image: rootfs, cmd: ['sleep', '3600'], network: net, init: true });
    try {
      await db.start();
      await db.waitForLog(/db ready/, { timeout: 10_000 }); // testcontainers' Wait.forLogMessage
      await db.waitForPort(5432, { timeout: 10_000 }); // Wait.forListeningPorts, for one port
      await app.start();
      const r = await app.exec(['wget', '-q', '-O-', 'http://db:5432/rows']);
      console.log(`exit ${r.exitCode}: ${r.stdout.trim()}`); // exit 0: rows: 3
      if (r.exitCode !== 0) throw new Error(`the app could not reach db: ${r.stderr}`);
    } finally {
      await app.remove({ force: true });
      await db.remove({ force: true });
    }
  } finally {
    await net.remove(); // its bridge, veths and NAT rules go with it
  }
} finally {
  await rt.close();
}
