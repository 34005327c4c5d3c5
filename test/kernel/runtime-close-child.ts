/**
 * Child process of runtime-close.test.ts: uses a runtime the way a test harness does — a
 * network, a container publishing a port, a detached container, a policy restart, an event
 * subscription, `rt.run()` — then (mode `close`) closes it, or (mode `idle`) just stops
 * calling berth. Prints one JSON line with the time of its last call and what close() did;
 * it must then exit by itself.
 * Usage: runtime-close-child.ts <root> <rootfs> <close|idle>
 */
import { ConflictError, isBerthError } from '../../lib/errors.js';
import { Runtime } from '../../lib/runtime.js';

const [root, rootfs, mode] = process.argv.slice(2) as [string, string, 'close' | 'idle'];
const rt = await Runtime.open({ root });
const image = { rootfs };
const seen: string[] = [];
const sub = rt.events();
const drained = (async () => {
  for await (const e of sub) seen.push(e.action);
})();

const net = await rt.networks.create({ name: 'closenet' });
const web = await rt.containers.create({ image, cmd: ['sh', '-c', 'echo hi | nc -l -p 8080'], ports: ['8080'], network: 'closenet' });
await web.start();
await web.waitForPort(8080, { timeout: 30_000 });
await web.stop({ timeout: 500 });
await web.remove();
// Ports alone: the default bridge network.
const published = await rt.containers.create({ image, cmd: ['sh', '-c', 'nc -l -p 8081'], ports: ['8081'] });
await published.start();
await published.waitForPort(8081, { timeout: 30_000 });
await published.remove({ force: true });

const detached = await rt.containers.create({ image, cmd: ['sleep', '100'], lifetime: 'detached' });
await detached.start();
await detached.kill();
await detached.remove();

const ran = await rt.run(image, ['sh', '-c', 'echo ran'], { network: 'bridge' });
if (ran.stdout !== 'ran\n') throw new Error(`rt.run printed ${JSON.stringify(ran.stdout)}`);
await net.remove();
await (await rt.networks.get('bridge')).remove();

// The brief's harness, last: create, start, stop, remove a 'process' container.
const last = await rt.containers.create({ image, cmd: ['sleep', '100'] });
await last.start();
await last.stop({ timeout: 100 });
await last.remove();

const report: Record<string, unknown> = { mode };
if (mode === 'close') {
  // A container waiting for its policy restart when the runtime closes: no restart happens.
  const flaky = await rt.containers.create({ image, cmd: ['sh', '-c', 'exit 3'], restart: 'always' });
  await flaky.start();
  for (let i = 0; i < 200 && (await flaky.inspect()).RestartCount < 1; i++) await new Promise((r) => setTimeout(r, 20));
  await rt.close();
  report.closedTwice = (await rt.close()) === undefined;
  try {
    void rt.containers;
    report.afterClose = 'no error';
  } catch (error) {
    report.afterClose = isBerthError(error) && error instanceof ConflictError ? 'ConflictError' : String(error);
  }
  await drained; // close() ended the subscription
  // It may be mid-run (restarted just before): it ends, and no restart follows.
  await flaky.wait();
  const count = (await flaky.inspect()).RestartCount;
  await new Promise((r) => setTimeout(r, 300));
  const info = await flaky.inspect();
  report.flakyStatus = info.State.Status;
  report.flakyRestartedAfterClose = info.RestartCount !== count;
  await flaky.remove({ force: true });
} else {
  sub.close();
  await drained;
}
report.events = seen.length;
// What keeps the event loop alive now (Node's own view): berth must hold nothing.
await new Promise((r) => setImmediate(r));
report.keepingAlive = process.getActiveResourcesInfo();
report.lastCallAt = Date.now();
process.stdout.write(`${JSON.stringify(report)}\n`);
