// A code-execution service's limits, shown on hostile snippets: each runs in a fresh sandbox
// (the host's /usr and /bin read-only, no network, an unprivileged user) with memory, CPU,
// process, time and output bounds, and the result says which bound it hit. Offline.
// Streaming output as it is produced: see examples/streaming-exec.ts (`spawn()`).
import { run, type RunOptions } from 'berth';

const LIMITS = {
  network: 'none', // the default, spelled out: only a loopback interface
  user: '65534:65534', // nobody
  readonlyRootfs: true, // writes only to the tmpfs mounted below
  mounts: [{ type: 'tmpfs', target: '/work', size: '16m' }],
  workdir: '/work',
  memory: '64m',
  memorySwap: '64m', // no swap on top of the memory limit
  cpus: 0.5,
  pids: 32, // a fork bomb stops at 32 processes
  timeout: 2000, // killed past it: timedOut
  maxBuffer: 64 * 1024, // stdout and stderr kept up to 64 KiB each: truncated
} satisfies RunOptions;

const SNIPPETS: Record<string, string> = {
  'a well-behaved program': 'echo "2 + 2 = $((2 + 2))"',
  'an endless loop': 'while :; do :; done',
  'an output flood': 'yes flood',
  'a fork bomb': 'for i in $(seq 100); do sleep 5 & done; wait',
  'a memory hog': "awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
  'a network call': 'wget -q -T 1 -O- http://127.0.0.1:1/ || cat /proc/net/dev | tail -n +3 | cut -d: -f1',
  'a write outside the scratch dir': 'echo x > /etc/x',
};

for (const [name, code] of Object.entries(SNIPPETS)) {
  const r = await run({ host: true }, ['sh', '-c', code], LIMITS);
  const bounds = [r.timedOut && 'timed out', r.oomKilled && 'OOM-killed', r.truncated && 'output truncated'].filter(Boolean).join(', ');
  console.log(`${name}: exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}${bounds ? `, ${bounds}` : ''}`);
  console.log(`  stdout ${r.stdout.length} chars: ${JSON.stringify(r.stdout.slice(0, 60))}`);
  if (r.stderr) console.log(`  stderr: ${JSON.stringify(r.stderr.slice(0, 120))}`);
}
