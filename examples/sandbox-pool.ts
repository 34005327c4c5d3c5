// A code-execution service that answers fast: sandboxes prepared ahead (cgroup with limits,
// namespaces, root, network), each used for one request and then destroyed, never reused.
// Offline: the host's /usr and /bin read-only. Runs on plain Node 20: try/finally.
import { Runtime } from 'berth';

const rt = await Runtime.open({ root: process.env.BERTH_ROOT });
try {
  const pool = await rt.pool({
    source: { host: true },
    size: 2, // kept ready; resolves once both are prepared
    options: { memory: '64m', pids: 32, user: '65534:65534', network: 'none' },
    // Run once in every sandbox while it is prepared (its own copy: nothing is shared between
    // sandboxes), e.g. to import modules and fill caches before a request arrives.
    prewarm: ['sh', '-c', 'echo warmed > /tmp/warm'],
  });
  try {
    const requests = ['echo one', 'echo two', 'cat /tmp/warm', 'id -u'];
    for (const code of requests) {
      const sandbox = await pool.acquire(); // a prepared one, or waits for the next
      try {
        // Per-command bounds belong to run(): timeout, maxBuffer, stdin, encoding.
        const r = await sandbox.run(['sh', '-c', code], { timeout: 2000, maxBuffer: 64 * 1024 });
        console.log(`${code} -> exit ${r.exitCode}: ${r.stdout.trim()}`);
        if (r.exitCode !== 0) throw new Error(`${code} failed: ${r.stderr}`);
      } finally {
        await sandbox.release(); // destroyed: the next request gets a fresh one
      }
    }
  } finally {
    await pool.close();
  }
} finally {
  await rt.close();
}
