// A code-execution service's limits, shown on hostile snippets: each runs in a fresh sandbox
// (the host's /usr and /bin read-only, no network, an unprivileged user) with memory, CPU,
// process, time and output bounds, and the result says which bound it hit. Offline.
// Streaming output as it is produced: see examples/streaming-exec.ts (`spawn()`).
import { run, type RunOptions, type RunResult } from 'berth';

const LIMITS = {
  network: 'none', // the default, spelled out: only a loopback interface
  user: '65534:65534', // nobody
  readonlyRootfs: true, // writes only to the tmpfs mounted below
  mounts: [{ type: 'tmpfs', target: '/work', size: '16m' }],
  workdir: '/work',
  memory: '32m',
  memorySwap: '32m', // no swap on top of the memory limit
  cpus: 0.5,
  pids: 32, // a fork bomb stops at 32 processes
  timeout: 2000, // killed past it: timedOut
  maxBuffer: 64 * 1024, // stdout and stderr kept up to 64 KiB each: truncated
} satisfies RunOptions;

// Each hostile snippet, and how its result shows the bound that stopped it.
const SNIPPETS: Array<[name: string, code: string, stopped: (r: RunResult) => boolean]> = [
  ['a well-behaved program', 'echo "2 + 2 = $((2 + 2))"', (r) => r.exitCode === 0 && r.stdout === '2 + 2 = 4\n'],
  ['an endless loop', 'while :; do :; done', (r) => r.timedOut],
  ['an output flood', 'yes flood', (r) => r.truncated && r.stdout.length === 64 * 1024],
  ['a fork bomb', 'for i in $(seq 100); do sleep 5 & done; wait', (r) => /fork/i.test(r.stderr)],
  ['a memory hog', 'dd if=/dev/zero of=/dev/null bs=256M count=1', (r) => r.oomKilled], // one 256 MiB buffer, filled by the kernel: little CPU per MiB
  ['a network call', 'wget -q -T 1 -O- http://127.0.0.1:1/ || tail -n +3 /proc/net/dev | cut -d: -f1', (r) => r.stdout.trim() === 'lo'],
  ['a write outside the scratch dir', 'echo x > /etc/x', (r) => r.exitCode !== 0 && r.stderr.includes('Read-only file system')],
];

for (const [name, code, stopped] of SNIPPETS) {
  const r = await run({ host: true }, ['sh', '-c', code], LIMITS);
  const bounds = [r.timedOut && 'timed out', r.oomKilled && 'OOM-killed', r.truncated && 'output truncated'].filter(Boolean).join(', ');
  console.log(`${name}: exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}${bounds ? `, ${bounds}` : ''}`);
  if (r.stderr) console.log(`  stderr: ${JSON.stringify(r.stderr.slice(0, 120))}`);
  if (!stopped(r)) throw new Error(`${name} was not stopped as expected: ${JSON.stringify({ ...r, stdout: r.stdout.slice(0, 200) })}`);
}
