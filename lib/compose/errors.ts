/**
 * The error of a stack whose dependency failed: `up` rejects with it as soon as a dependency
 * exits or turns unhealthy before its `depends_on` condition holds.
 * @module
 */
import { BerthError } from '../errors.js';

/**
 * A `depends_on` condition that can no longer hold (or, from `up({ wait })`, a service that
 * exited or turned unhealthy; then `service` and `dependency` are the same). Code
 * `ERR_COMPOSE_DEPENDENCY`.
 */
export class DependencyFailedError extends BerthError {
  /** The service that waited. */
  readonly service: string;
  /** The dependency that failed. */
  readonly dependency: string;
  /** The condition that cannot hold. */
  readonly condition: string;
  /** The dependency container's exit code when it exited, else `null` (e.g. unhealthy). */
  readonly exitCode: number | null;
  /** The dependency container's name. */
  readonly container: string;
  /** The last lines of its output (at most 10). */
  readonly lastLogLines: readonly string[];

  constructor(facts: { service: string; dependency: string; condition: string; container: string; exitCode: number | null; reason: string; lastLogLines: string[] }) {
    const tail = facts.lastLogLines.length > 0 ? `; last output:\n${facts.lastLogLines.map((l) => `  ${l}`).join('\n')}` : '';
    // up({ wait }) reports a service's own failure with service === dependency.
    const who = facts.service === facts.dependency ? `service ${facts.service} (${facts.container})` : `service ${facts.service}: dependency ${facts.dependency} (${facts.container})`;
    super('ERR_COMPOSE_DEPENDENCY', `${who} failed ${facts.condition}: ${facts.reason}${tail}`);
    this.service = facts.service;
    this.dependency = facts.dependency;
    this.condition = facts.condition;
    this.exitCode = facts.exitCode;
    this.container = facts.container;
    this.lastLogLines = facts.lastLogLines;
  }
}
