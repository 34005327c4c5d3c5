/**
 * One command run beside a parked sandbox's PID 1 while the sandbox is prepared (a healthcheck
 * probe of `ready: { healthcheck }`, the `prewarm` warm-up): an exec joining the sandbox's
 * namespaces and cgroup with its user, env, capabilities and seccomp
 * (`ParkedSandbox.besideSpec`), killed at a deadline.
 * @module
 */
import { collectBounded } from '../launch/bounded-output.js';
import type { ParkedSandbox } from '../launch/parked.js';
import { spawnExec } from '../containers/exec.js';

/** How it ended. */
export type BesideOutcome =
  | { failure: { exitCode: 126 | 127; message: string } }
  | {
      /** Its exit status (after SIGKILL when `timedOut`). */
      status: { exitCode: number; signal: string | null };
      timedOut: boolean;
      /**
       * Its stdout and stderr, up to `outputLimit` bytes each, joined. Read from the start (a full
       * pipe would stall it), settled only at the pipes' end: a process the command left in the
       * background holds them open, so do not wait for it without knowing nothing of it runs.
       */
      output: Promise<string>;
    };

/** Runs `argv` beside PID 1; resolves at its exit, or after it was killed at `timeoutMs`. */
export async function runBeside(parked: ParkedSandbox, argv: string[], timeoutMs: number, outputLimit: number): Promise<BesideOutcome> {
  const started = await spawnExec(parked.besideSpec(argv), argv[0]!);
  if ('failure' in started) return { failure: started.failure };
  const proc = started.process;
  const output = Promise.all([collectBounded(proc.stdout, outputLimit), collectBounded(proc.stderr, outputLimit)]).then(([out, err]) =>
    Buffer.concat([out.data, err.data]).toString('utf8'),
  );
  // Observed here: a caller that does not wait for it leaves no unhandled rejection behind.
  output.catch(() => undefined);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill(9);
  }, timeoutMs);
  try {
    const status = await proc.exited;
    return { status: { exitCode: status.exitCode, signal: status.signal }, timedOut, output };
  } finally {
    clearTimeout(timer);
  }
}
