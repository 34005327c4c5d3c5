// The code-execution service of examples/untrusted-code.ts as an HTTP server, for the
// Deployment in deploy/kubernetes/. POST /run with a shell snippet as the body runs it in a
// fresh sandbox with the example's bounds and answers the result as JSON. GET /readyz answers
// 200 once this replica has run a sandbox with its limits in force, 503 before (or if it
// cannot); GET /healthz answers 200 while the process serves. Each replica keeps its sandboxes
// and state in its own emptyDir: replicas share nothing (docs/deploy-kubernetes.md).
import { createServer } from 'node:http';
import { Runtime } from 'berth';

const PORT = Number(process.env.PORT ?? 8080);
/** All interfaces in a pod (the Service reaches it by the pod IP); a test binds 127.0.0.1. */
const HOST = process.env.HOST ?? '0.0.0.0';
const MAX_SNIPPET = 64 * 1024;
/** Requests running at once; more get 429, so one replica's memory stays within its requests. */
const MAX_CONCURRENT = Number(process.env.BERTH_MAX_CONCURRENT ?? 4);

const LIMITS = {
  network: 'none',
  user: '65534:65534',
  readonlyRootfs: true,
  mounts: [{ type: 'tmpfs', target: '/work', size: '16m' }],
  workdir: '/work',
  memory: '64m',
  memorySwap: '64m',
  cpus: 0.5,
  pids: 32,
  timeout: 5000,
  maxBuffer: 64 * 1024,
};

const rt = await Runtime.open({ root: process.env.BERTH_ROOT ?? '/var/lib/berth' });
let ready = false;
let notReady = 'starting';
let running = 0;

async function selfCheck() {
  try {
    // Strict limits (the default): a host where they cannot be enforced fails here, and the
    // replica never becomes ready instead of running code unbounded.
    const r = await rt.run({ host: true }, ['sh', '-c', 'cat /proc/self/cgroup >/dev/null && echo ok'], LIMITS);
    if (r.exitCode !== 0 || r.stdout.trim() !== 'ok') throw new Error(`self-check exited ${r.exitCode}: ${r.stderr}`);
    ready = true;
    notReady = '';
    console.log('ready');
  } catch (err) {
    notReady = err instanceof Error ? err.message : String(err);
    console.error(`not ready: ${notReady}`);
  }
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return send(res, 200, { ok: true });
  if (req.method === 'GET' && req.url === '/readyz') return send(res, ready ? 200 : 503, ready ? { ready } : { ready, reason: notReady });
  if (req.method !== 'POST' || req.url !== '/run') return send(res, 404, { error: 'POST /run with a shell snippet as the body' });
  if (running >= MAX_CONCURRENT) return send(res, 429, { error: `busy: ${running} snippets running` });
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_SNIPPET) req.destroy();
    else chunks.push(c);
  });
  req.on('end', async () => {
    running++;
    try {
      const r = await rt.run({ host: true }, ['sh', '-c', Buffer.concat(chunks).toString('utf8')], LIMITS);
      send(res, 200, { exitCode: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut, oomKilled: r.oomKilled, truncated: r.truncated });
    } catch (err) {
      send(res, 500, { error: err instanceof Error ? err.message : String(err), code: err?.code });
    } finally {
      running--;
    }
  });
});

await new Promise((resolve) => server.listen(PORT, HOST, resolve));
console.log(`listening on ${HOST}:${server.address().port}`);
await selfCheck();

// Kubernetes sends SIGTERM, then SIGKILL after terminationGracePeriodSeconds: stop taking
// requests, let the running ones finish (each is bounded by its timeout), close the runtime.
process.once('SIGTERM', () => {
  ready = false;
  server.close(async () => {
    await rt.close();
  });
});
