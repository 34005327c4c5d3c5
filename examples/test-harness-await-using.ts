// examples/test-harness.ts with `await using` instead of try/finally: the runtime is closed and
// the container removed (forcibly) when the scope ends, even when the test throws. `await using`
// is a syntax error on plain Node 20 and 22: this file runs there only through a transpiler (tsx,
// TypeScript 5.2+ or Babel rewrite it), or as is on Node 24+.
import { Runtime } from 'berth';

async function harness(root: string, rootfs: string): Promise<string> {
  await using rt = await Runtime.open({ root });
  await using web = await rt.containers.create({
    image: { rootfs },
    cmd: ['sh', '-c', 'mkdir -p /www && echo ok > /www/health && exec httpd -f -p 8080 -h /www'],
    ports: ['8080'],
  });
  await web.start();
  await web.waitForHttp('/health', { port: 8080, body: 'ok', timeout: 10_000 });
  const res = await fetch(`http://${web.getHost()}:${web.getMappedPort(8080)}/health`);
  // `return await`: a bare `return res.text()` would dispose of the container (and of the
  // runtime) before the body has arrived.
  return await res.text();
}

const root = process.env.BERTH_ROOT ?? '/tmp/berth-harness';
console.log(await harness(root, process.env.BERTH_ROOTFS ?? '/srv/busybox'));

// Both were disposed when harness() returned: the default bridge `ports` made is unused now.
const rt = await Runtime.open({ root });
try {
  await rt.networks.remove('bridge');
} finally {
  await rt.close();
}
