/**
 * A TypeScript program of the suite run as a separate Node process (through tsx), for tests
 * of what happens across processes: a second owner of the same state directory, an owner
 * killed by SIGKILL. The program prints one line once it is ready; the test reads it, acts,
 * and kills or awaits the process (the caller keeps `proc` to kill it in `after()`).
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** The process, its first line of output, and its exit code once it ends. */
export interface NodeChild {
  proc: ChildProcess;
  /** Rejects, with its stderr, if the program exits before printing a line. */
  line: Promise<string>;
  done: Promise<number | null>;
}

/** Starts `node --import tsx script args` with stdin closed. */
export function startNodeChild(script: string, args: readonly string[]): NodeChild {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const line = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    proc.on('exit', (code) => reject(new Error(`${script} exited ${code} before reporting: ${err}`)));
  });
  // A test that never asks for the line must not see an unhandled rejection.
  line.catch(() => {});
  const done = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, line, done };
}
