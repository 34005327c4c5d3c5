// A code-execution service's core: run untrusted code in a sandbox, stream its output line by
// line as it is produced (to a websocket, an SSE response...), stop it after a deadline, and
// report how it ended. Offline: the host's own /usr and /bin, read-only, no network.
//
// Node 20 and 22 have no `await using` (a syntax error there): the try/finally below is its
// spelled-out form.
import { createInterface } from 'node:readline';
import { spawn, type SandboxExit } from 'berth';

/** Runs `code` with `sh`, calling `onLine` for each line of stdout as it appears. */
async function execute(code: string, onLine: (line: string) => void, deadlineMs = 5000): Promise<SandboxExit & { stderr: string }> {
  const sb = spawn({ host: true }, ['sh', '-c', code], {
    stdin: 'ignore',
    timeout: deadlineMs, // killed past it; `timedOut: true` in the report
    memory: '128m',
    pids: 64,
    user: '65534:65534',
  });
  try {
    // stderr is read too: a stream nobody reads makes the container wait once its pipe is full.
    let stderr = '';
    sb.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    let lines = 0;
    for await (const line of createInterface({ input: sb.stdout, crlfDelay: Infinity })) {
      onLine(line);
      // A client that only wants the first lines: the rest is never produced.
      if (++lines === 1000) sb.kill('SIGKILL');
    }
    return { ...(await sb.exited), stderr };
  } finally {
    await sb[Symbol.asyncDispose]();
  }
}

const started = Date.now();
const report = await execute('for i in 1 2 3; do echo "tick $i"; sleep 1; done; echo "bye" >&2; sleep 60', (line) => {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${line}`);
});
console.log(`exit ${report.exitCode}${report.timedOut ? ' (timed out)' : ''}, stderr ${JSON.stringify(report.stderr)}, ${report.durationMs.toFixed(0)} ms`);
