/**
 * Docker's restart policies and the restart manager's backoff.
 *
 * - `no`: never; `always`: after every exit; `unless-stopped`: the same while the runtime is
 *   open (Docker differs only when its daemon starts; berth does not resurrect containers
 *   when a runtime opens); `on-failure[:max]`: after a non-zero exit, at most `max` times
 *   (0 = unlimited).
 * - None applies after `stop()`, `kill()` or `remove()`: the user stopped it.
 * - Backoff as moby's restartmanager: 100 ms before the first restart, doubling each time,
 *   capped at 1 minute, and back to 100 ms once a run lasted at least 10 seconds.
 * @module
 */
import { ValidationError } from '../errors.js';

export type RestartPolicyName = 'no' | 'always' | 'unless-stopped' | 'on-failure';

/** Docker's `HostConfig.RestartPolicy`. */
export interface RestartPolicy {
  name: RestartPolicyName;
  /** For `on-failure`: restarts allowed before giving up; 0 = no limit. */
  maximumRetryCount: number;
}

/** What `restart` accepts: Docker's CLI string (`'on-failure:3'`) or the object. */
export type RestartPolicyInput = 'no' | 'always' | 'unless-stopped' | 'on-failure' | `on-failure:${number}` | RestartPolicy;

export const BACKOFF_INITIAL_MS = 100;
export const BACKOFF_MAX_MS = 60_000;
/** A run at least this long resets the backoff. */
export const BACKOFF_RESET_AFTER_MS = 10_000;

export function parseRestartPolicy(input: unknown): RestartPolicy {
  if (input === undefined || input === 'no' || input === '') return { name: 'no', maximumRetryCount: 0 };
  if (typeof input === 'string') {
    const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(input);
    if (!m) throw new ValidationError('restart', `must be "no", "always", "unless-stopped" or "on-failure[:max]", got ${JSON.stringify(input)}`);
    if (m[2] !== undefined && m[1] !== 'on-failure') throw new ValidationError('restart', `a maximum retry count is only valid with "on-failure", got ${JSON.stringify(input)}`);
    return { name: m[1] as RestartPolicyName, maximumRetryCount: m[2] === undefined ? 0 : Number(m[2]) };
  }
  if (typeof input === 'object' && input !== null) {
    const p = input as Partial<RestartPolicy>;
    const policy = parseRestartPolicy(p.name ?? 'no');
    if (p.maximumRetryCount !== undefined) {
      if (!Number.isInteger(p.maximumRetryCount) || p.maximumRetryCount < 0) throw new ValidationError('restart.maximumRetryCount', 'must be a non-negative integer');
      if (policy.name !== 'on-failure' && p.maximumRetryCount > 0) throw new ValidationError('restart.maximumRetryCount', 'is only valid with "on-failure"');
      policy.maximumRetryCount = p.maximumRetryCount;
    }
    return policy;
  }
  throw new ValidationError('restart', 'must be a string such as "on-failure:3" or { name, maximumRetryCount }');
}

/** Whether an exit should be followed by a restart. `retries`: policy restarts since the last user start. */
export function shouldRestart(policy: RestartPolicy, exit: { exitCode: number; manuallyStopped: boolean; retries: number }): boolean {
  if (exit.manuallyStopped) return false;
  switch (policy.name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return exit.exitCode !== 0 && (policy.maximumRetryCount === 0 || exit.retries < policy.maximumRetryCount);
    default:
      return false;
  }
}

/** Moby's backoff: the delay before the next restart, given the previous one and how long the run lasted. */
export function nextBackoff(previousMs: number, ranForMs: number): number {
  if (ranForMs >= BACKOFF_RESET_AFTER_MS || previousMs <= 0) return BACKOFF_INITIAL_MS;
  return Math.min(previousMs * 2, BACKOFF_MAX_MS);
}
