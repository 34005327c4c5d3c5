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
import type { ParkedSandbox } from '../launch/parked.js';
import { runBeside } from './run-beside.js';

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
  const ran = await runBeside(parked, argv, timeoutMs, OUTPUT_KEPT);
  if ('failure' in ran) {
    throw new SystemError(ran.failure.exitCode === 127 ? 'ENOENT' : 'EACCES', `the pool's prewarm command could not start: ${ran.failure.message.trim()}`);
  }
  if (ran.timedOut) throw new SystemError('ETIMEDOUT', `the pool's prewarm command did not finish within ${timeoutMs} ms (prewarmTimeout); it was killed`);
  // What it started in the background would run on beside the caller's command (and, killed
  // now, stay behind as zombies of a PID 1 that never reaps): refuse the sandbox instead. Its
  // output is waited for only after this: such a process holds the pipes open.
  const left = parked.processesBeside();
  if (left.length > 0) {
    throw new SystemError('EBUSY', `the pool's prewarm command left ${left.length} process(es) running in the sandbox (a prewarm must not start background processes; use main for a long-running one)`);
  }
  const output = await ran.output;
  if (ran.status.exitCode !== 0 || ran.status.signal !== null) {
    const how = ran.status.signal !== null ? `was killed by ${ran.status.signal}` : `exited with code ${ran.status.exitCode}`;
    throw new SystemError('EIO', `the pool's prewarm command ${how}: ${JSON.stringify(output.trim().slice(0, 500))}`);
  }
}
