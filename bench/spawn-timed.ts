import { spawn, type StdioOptions } from 'node:child_process';

export interface TimedExit {
  /** Wall time from spawn() to the child's 'exit' event, in milliseconds. */
  ms: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SpawnTimedOptions {
  stdin?: 'ignore' | 'pipe';
  /** 'ignore' for commands that leave a detached process behind, which would hold a pipe open. */
  output?: 'pipe' | 'ignore';
  env?: NodeJS.ProcessEnv;
  /** Kill the child and reject after this long; a benchmark must never hang. */
  timeoutMs?: number;
}

/**
 * Spawn argv and time it from spawn() to 'exit' with process.hrtime.bigint(). stdout and stderr
 * are pipes that are read to the end, as berth's run() reads them, so both sides pay for
 * output capture. The promise settles on 'close' so the output is complete for error messages;
 * the time stops at 'exit'.
 */
export function spawnTimed(argv: readonly string[], opts: SpawnTimedOptions = {}): Promise<TimedExit> {
  return new Promise((resolve, reject) => {
    const output = opts.output ?? 'pipe';
    const stdio: StdioOptions = [opts.stdin ?? 'ignore', output, output];
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0]!, argv.slice(1), { stdio, env: opts.env ?? process.env });
    let t1 = 0n;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')}: no exit after ${opts.timeoutMs ?? 60_000} ms (killed)`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', () => {
      t1 = process.hrtime.bigint();
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        ms: Number(t1 - t0) / 1e6,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/** spawnTimed that throws unless the child exited 0; returns the elapsed milliseconds. */
export async function spawnOk(argv: readonly string[], opts: SpawnTimedOptions = {}): Promise<number> {
  const r = await spawnTimed(argv, opts);
  if (r.code !== 0) throw new Error(failureText(argv, r));
  return r.ms;
}

/** Run to completion and return stdout; throws with stderr on failure. For setup steps, not timing. */
export async function capture(argv: readonly string[], opts: SpawnTimedOptions = {}): Promise<string> {
  const r = await spawnTimed(argv, { timeoutMs: 600_000, ...opts });
  if (r.code !== 0) throw new Error(failureText(argv, r));
  return r.stdout;
}

function failureText(argv: readonly string[], r: TimedExit): string {
  const why = r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
  return `${argv.join(' ')}: ${why}${tail ? `: ${tail}` : ''}`;
}
