/**
 * The cgroup of a launch that runs without one: `limits: 'best-effort'` where berth may not
 * create cgroups (rootless on v1, no delegated v2 subtree, a read-only cgroupfs). It holds no
 * directory, so nothing is joined, limited or removed; what only a cgroup can answer (stats,
 * freeze, the member list) is refused with the reason instead of being made up.
 * @module
 */
import { UnsupportedError } from '../errors.js';
import type { Cgroup, CgroupStats } from './types.js';

/** A {@link Cgroup} that does not exist on the host: the launch was allowed to run without one. */
export class AbsentCgroup implements Cgroup {
  readonly paths: readonly string[] = [];
  readonly procsFiles: readonly string[] = [];

  /**
   * @param id the launch's id, as a real cgroup would be named.
   * @param version the host's cgroup version (2 when the host has none).
   * @param reason why there is no cgroup, quoted by every refusal.
   */
  constructor(
    readonly id: string,
    readonly version: 1 | 2,
    readonly reason: string,
  ) {}

  /** No memory cgroup, so no OOM kill can be attributed: always 0. */
  oomKillCount(): number {
    return 0;
  }

  /** @throws UnsupportedError: without a cgroup the container's processes are not listed anywhere. */
  pids(): number[] {
    throw this.#refuse('listing its processes');
  }

  /**
   * Nothing to do: the container's pid namespace ends every process in it when its PID 1
   * exits, which the caller's kill of PID 1 brings about.
   */
  kill(): void {}

  /** @throws UnsupportedError: freezing needs the freezer cgroup. */
  freeze(): void {
    throw this.#refuse('pausing it');
  }

  /** Nothing is frozen, so nothing to thaw. */
  thaw(): void {}

  /** @throws UnsupportedError: the counters live in the cgroup. */
  stats(): CgroupStats {
    throw this.#refuse('reading its resource use');
  }

  /** No directory was made: nothing to remove. */
  remove(): void {}

  #refuse(what: string): UnsupportedError {
    return new UnsupportedError(`container ${this.id} runs without a cgroup (limits: 'best-effort'), so ${what} is not possible: ${this.reason}`);
  }
}
