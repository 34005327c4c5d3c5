/**
 * A network namespace an unprivileged process can own and serve: `berth-helper netns-hold`
 * makes a user namespace (the caller as its root, a single-id map) and a network namespace
 * owned by it, with loopback up, and holds both until berth closes its stdin or dies. A
 * user-mode stack attaches to it by the holder's pid; processes join it through
 * `/proc/<pid>/ns/{user,net}`. It is the base of rootless networks shared by several
 * containers, as Podman's rootless netns is.
 * @module
 */
import { SystemError } from '../errors.js';
import { startHelper, type TiedProcess } from './usermode-process.js';

/** How long the holder may take to create its namespaces. */
const HOLD_READY_TIMEOUT_MS = 10_000;

/** A held user + network namespace. */
export interface NetnsHolder {
  /** The holder's pid: `/proc/<pid>/ns/net` is the namespace. */
  readonly pid: number;
  /** Resolves with the holder's exit code once it exited. */
  readonly exited: Promise<number>;
  /** Lets the namespaces go (the holder exits); resolves once it exited. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates a held user + network namespace.
 * @throws SystemError when the helper cannot create them (its message says which step
 *   failed: unprivileged user namespaces disabled, a namespace limit…) or takes longer than 10 s.
 */
export async function holdNetns(): Promise<NetnsHolder> {
  const proc: TiedProcess = startHelper(['netns-hold', String(process.pid)], ['pipe', 'pipe', 'pipe']);
  const stdout = proc.child.stdout!;
  stdout.setEncoding('utf8');
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve) => {
        let seen = '';
        stdout.on('data', (d: string) => {
          seen += d;
          if (seen.includes('ready\n')) resolve();
        });
      }),
      proc.exited.then((code) => {
        throw new SystemError('ERR_USERMODE_NETWORK', `could not create a rootless network namespace (exit ${code}): ${proc.stderr() || 'no message'}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SystemError('ETIMEDOUT', `the network namespace holder was not ready within ${HOLD_READY_TIMEOUT_MS / 1000} s`)), HOLD_READY_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    await proc.stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  let closing: Promise<void> | undefined;
  return {
    pid: proc.pid,
    exited: proc.exited,
    close() {
      // End of file on stdin is the holder's signal to go; stop() covers a holder that hangs.
      closing ??= (async () => {
        proc.child.stdin?.end();
        const timer = setTimeout(() => void proc.stop(), 2000);
        await proc.exited;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
