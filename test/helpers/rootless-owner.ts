/**
 * An owner program run as the rootless test user, to be killed by SIGKILL: the tests that check
 * what dies with its owner (helpers, stacks, forwarders, containers) start it, wait for the one
 * line it prints once everything is up, kill it, and then look for leftovers
 * (test/helpers/leftovers.ts).
 * @module
 */
import type { RootlessUser } from './rootless-user.js';

/** A running owner program and the first line it printed. */
export interface Owner {
  /** The program's pid (setpriv execs it). */
  readonly pid: number;
  /** Its first line of output, without the newline. */
  readonly line: string;
  /** SIGKILLs the program and resolves once it has exited (what it started may still be ending). */
  kill(): Promise<void>;
}

/**
 * Starts `script args` as `user` and resolves with its first line of output. Rejects, killing
 * the program, when it ends without a line or prints none within `guardMs` (a guard against a
 * hang, not a timing assertion); the rejection carries its stderr.
 */
export async function startOwner(user: RootlessUser, script: string, args: string[], guardMs = 120_000): Promise<Owner> {
  const proc = user.spawnNode(script, args);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => (err += d));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`the owner printed nothing in ${guardMs} ms: ${err}`)), guardMs);
      proc.once('error', (e) => {
        clearTimeout(guard);
        reject(e);
      });
      proc.stdout.on('data', (d: string) => {
        out += d;
        if (out.includes('\n')) {
          clearTimeout(guard);
          resolve(out.split('\n')[0]!);
        }
      });
      // 'end' rather than 'exit': output can still be in the pipe when the exit is seen.
      proc.stdout.once('end', () => {
        clearTimeout(guard);
        reject(new Error(`the owner ended (${proc.exitCode ?? proc.signalCode}) before it reported: ${err}`));
      });
    });
    return { pid: proc.pid!, line, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}
