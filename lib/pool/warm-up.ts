/**
 * `prewarm` of a pool (issue 18 §1, the optional zygote, without a zygote): a warm-up command
 * that every sandbox runs to completion while it is prepared, before anyone can acquire it, so
 * that what a first command pays once (Python compiling and caching its bytecode, the page
 * cache filling with an interpreter's libraries, a package index unpacked into /tmp) is paid
 * ahead. Nothing is shared between sandboxes: each runs its own warm-up in its own namespaces,
 * and what it writes lands in its own writable layer. No process survives it into the sandbox
 * that is handed out (a sandbox is handed out with nothing but its parked PID 1).
 *
 * The command runs the way a healthcheck probe of a prewarmed main does (lib/pool/ready-health.ts):
 * an exec beside PID 1, joining the sandbox's namespaces and cgroup with the sandbox's user,
 * env, workdir, capabilities and seccomp (`ParkedSandbox.besideSpec`).
 * @module
 */
import { SystemError } from '../errors.js';
import { collectBounded } from '../launch/bounded-output.js';
import type { ParkedSandbox } from '../launch/parked.js';
import { spawnExec } from '../containers/exec.js';

/** Bytes of the warm-up's output kept for an error message. */
const OUTPUT_KEPT = 4096;

/**
 * Runs `argv` beside the parked PID 1 and resolves once it exited 0 with nothing of it left
 * running. The caller destroys the sandbox when this throws.
 * @throws SystemError: `ENOENT`/`EACCES` when it cannot be executed, `ETIMEDOUT` past
 *   `timeoutMs` (it is killed), `EIO` when it exited non-zero or by a signal (with its output),
 *   `EBUSY` when it left processes running in the sandbox.
 */
export async function warmUp(parked: ParkedSandbox, argv: string[], timeoutMs: number): Promise<void> {
  const started = await spawnExec(parked.besideSpec(argv), argv[0]!);
  if ('failure' in started) {
    throw new SystemError(started.failure.exitCode === 127 ? 'ENOENT' : 'EACCES', `the pool's prewarm command could not start: ${started.failure.message.trim()}`);
  }
  const proc = started.process;
  // Read from the start (a full pipe would stall it), but not waited for until it is known that
  // nothing of it runs on: a process it left in the background holds the pipes open.
  const output = Promise.all([collectBounded(proc.stdout, OUTPUT_KEPT), collectBounded(proc.stderr, OUTPUT_KEPT)]);
  // Observed here too: on the ways out that throw, nothing else awaits it.
  output.catch(() => undefined);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill(9);
  }, timeoutMs);
  let status: Awaited<typeof proc.exited>;
  try {
    status = await proc.exited;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) throw new SystemError('ETIMEDOUT', `the pool's prewarm command did not finish within ${timeoutMs} ms (prewarmTimeout); it was killed`);
  // What it started in the background would run on beside the caller's command (and, killed
  // now, stay behind as zombies of a PID 1 that never reaps): refuse the sandbox instead.
  const left = parked.processesBeside();
  if (left.length > 0) {
    throw new SystemError('EBUSY', `the pool's prewarm command left ${left.length} process(es) running in the sandbox (a prewarm must not start background processes; use main for a long-running one)`);
  }
  if (status.exitCode !== 0 || status.signal !== null) {
    const [out, err] = await output;
    const text = Buffer.concat([out.data, err.data]).toString('utf8').trim().slice(0, 500);
    const how = status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${status.exitCode}`;
    throw new SystemError('EIO', `the pool's prewarm command ${how}: ${JSON.stringify(text)}`);
  }
  // Nothing of it runs any more: the pipes are at their end.
  await output;
}
