/**
 * A run to completion: a {@link Sandbox} read to its end into a {@link RunResult}, keeping at
 * most `maxBuffer` bytes of each stream (the rest is read and dropped, so a flood neither
 * blocks the container nor grows Node). `run()` and `Runtime.run()` are `spawn()` plus this:
 * one launch path for both.
 * @module
 */
import { collectBounded } from './bounded-output.js';
import type { LaunchRoot } from './launch-plan.js';
import type { LimitsSkipped } from './limits.js';
import type { RunOptions } from './run-options.js';
import { Sandbox } from './sandbox.js';
import { sandboxInRoot, type RunContext } from './sandbox-launch.js';
import { checkSpawnOptions, spawnOptionsOfRun, type ResultForm } from './spawn-options.js';

export { checkArgv, launchRootOf, type RunContext } from './sandbox-launch.js';

/** What `run()` reports. */
export interface RunResult<Output = string> {
  /** Exit code; 128 + n when killed by signal n; 127 command not found; 126 not executable. */
  exitCode: number;
  /** Name of the signal that killed the container's PID 1, if any. */
  signal: NodeJS.Signals | null;
  stdout: Output;
  stderr: Output;
  /** The kernel's OOM killer killed a process of the container. */
  oomKilled: boolean;
  /** The `timeout` option expired and the container was killed. */
  timedOut: boolean;
  /**
   * stdout or stderr wrote more than `maxBuffer` bytes: the rest was read and discarded (the
   * container was never blocked on a full pipe).
   */
  truncated: boolean;
  /** Wall time from the start of the launch to the exit, in milliseconds. */
  durationMs: number;
  /**
   * Present when the container ran without a cgroup (`limits: 'best-effort'`, or no limit asked
   * for where berth may not create cgroups): the limit options not in force (`pids` for berth's
   * default too), why, and the fix. Absent when every limit was in force.
   */
  limitsSkipped?: LimitsSkipped;
}

/** `stdout`/`stderr` are Buffers with `encoding: 'buffer'`, strings otherwise. */
export type OutputOf<O> = O extends { encoding: 'buffer' } ? Buffer : string;

/**
 * Reads a sandbox to its end: both streams (bounded) and its exit.
 * @throws what `sandbox.exited` rejects with (the launch's error, AbortError).
 */
export async function runToCompletion(sandbox: Sandbox, form: ResultForm): Promise<RunResult<string | Buffer>> {
  const stdout = collectBounded(sandbox.stdout, form.maxBuffer);
  const stderr = collectBounded(sandbox.stderr, form.maxBuffer);
  let info;
  try {
    info = await sandbox.exited;
  } catch (error) {
    // Aborted or never launched: what the streams still hold is nobody's; close their pipes now.
    sandbox.stdout.destroy();
    sandbox.stderr?.destroy();
    throw error;
  }
  const [out, err] = await Promise.all([stdout, stderr]);
  const asText = form.encoding !== 'buffer';
  return {
    exitCode: info.exitCode,
    signal: info.signal,
    stdout: asText ? out.data.toString('utf8') : out.data,
    stderr: asText ? err.data.toString('utf8') : err.data,
    oomKilled: info.oomKilled,
    timedOut: info.timedOut,
    truncated: out.truncated || err.truncated,
    durationMs: info.durationMs,
    ...(info.limitsSkipped ? { limitsSkipped: info.limitsSkipped } : {}),
  };
}

/**
 * `run()` in a known root, without a runtime: the path of tests that build a root by hand.
 * @internal
 */
export async function runFromRoot(
  root: LaunchRoot,
  cmd: string[] | null | undefined,
  options: RunOptions | undefined,
  context: Omit<RunContext, 'stdinPipe'> = {},
): Promise<RunResult<string | Buffer>> {
  const { spawn, result } = spawnOptionsOfRun(options);
  const checked = checkSpawnOptions(spawn);
  const sandbox = new Sandbox(sandboxInRoot(root, cmd, checked.launch, { ...context, stdinPipe: checked.stdinPipe }), checked.sandbox);
  return runToCompletion(sandbox, result);
}
