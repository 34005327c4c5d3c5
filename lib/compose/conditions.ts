/**
 * Waiting for a `depends_on` condition on a dependency's containers, failing at once when it
 * can no longer hold: a dependency that exited (for `service_started` after start is fine, for
 * `service_healthy` not, for `service_completed_successfully` only with code 0) or that turned
 * unhealthy. The state is read through the public `inspect()` every {@link POLL_MS}, and at
 * once after the container's start, exit or health events; the wait ends with the caller's
 * signal (the stack's timeout or the user's).
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Container } from '../containers/container.js';
import { AbortError, ConflictError } from '../errors.js';
import { DependencyFailedError } from './errors.js';
import type { DependsOnEntry } from './service-syntax.js';

/**
 * A `depends_on` condition, or `running` for `up({ wait })` on a service without a
 * healthcheck: it must be running (an exit fails the wait).
 */
export type Condition = DependsOnEntry['condition'] | 'running';

/** Between two reads of a dependency's state: short against a start, long against a busy loop. */
export const POLL_MS = 100;

/** The last lines a failure report quotes. */
const TAIL_LINES = 10;

/** The last lines of a container's output (stdout and stderr interleaved). */
export async function lastLines(c: Container): Promise<string[]> {
  const lines: string[] = [];
  try {
    for await (const entry of c.logs({ tail: TAIL_LINES })) lines.push(entry.line);
  } catch {
    // A container removed meanwhile has no output to quote; the failure is reported anyway.
  }
  return lines.slice(-TAIL_LINES);
}

/** Events after which a dependency's state is worth reading again at once. */
const WAKE = ['start', 'exit', 'health_status'] as const;

/**
 * Until the next read: {@link POLL_MS}, or sooner when the container reports a start, an exit
 * or a health change (each wait stage then costs an event, not up to a poll period; the
 * poll stays as the truth for containers another process supervises).
 */
async function pause(c: Container, signal: AbortSignal): Promise<void> {
  const woken = new AbortController();
  const wake = () => woken.abort();
  for (const e of WAKE) c.once(e, wake);
  try {
    await sleep(POLL_MS, undefined, { signal: AbortSignal.any([signal, woken.signal]) });
  } catch {
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new AbortError('up was aborted');
  } finally {
    for (const e of WAKE) c.off(e, wake);
  }
}

/**
 * Resolves when `condition` holds for every one of `containers`.
 * @throws DependencyFailedError naming `service`, the dependency, its exit code and last
 *   output; ConflictError for `service_healthy` on a dependency without a healthcheck; the
 *   signal's reason when it aborts.
 */
export async function waitForCondition(
  service: string,
  dependency: string,
  condition: Condition,
  containers: readonly Container[],
  signal: AbortSignal,
): Promise<void> {
  await Promise.all(containers.map((c) => waitOne(service, dependency, condition, c, signal)));
}

async function waitOne(service: string, dependency: string, condition: Condition, c: Container, signal: AbortSignal): Promise<void> {
  const fail = async (reason: string, exitCode: number | null) =>
    new DependencyFailedError({ service, dependency, condition, container: c.name, exitCode, reason, lastLogLines: await lastLines(c) });
  for (;;) {
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new AbortError('up was aborted');
    const { State: s, Config } = await c.inspect();
    const exited = !s.Running && !s.Restarting && s.Status !== 'created';
    if (condition === 'service_started') return;
    if (condition === 'running') {
      if (s.Running) return;
      if (exited) throw await fail(`exited with code ${s.ExitCode}`, s.ExitCode);
    } else if (condition === 'service_completed_successfully') {
      if (exited) {
        if (s.ExitCode === 0) return;
        throw await fail(`exited with code ${s.ExitCode}`, s.ExitCode);
      }
    } else {
      if (!s.Health && !Config.Healthcheck) throw new ConflictError(`service ${service}: dependency ${dependency} (${c.name}) has no healthcheck, so service_healthy can never hold`);
      if (s.Health?.Status === 'healthy' && s.Running) return;
      if (s.Health?.Status === 'unhealthy') throw await fail('is unhealthy', null);
      if (exited) throw await fail(`exited with code ${s.ExitCode} before it was healthy`, s.ExitCode);
    }
    await pause(c, signal);
  }
}
