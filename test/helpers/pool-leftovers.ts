/**
 * What a pool of this test process could leave on the host, told apart from what other
 * processes on the shared machine make meanwhile (their containers come and go in the same
 * `berth/` cgroup parents).
 */

/** The cgroups of this process's sandboxes (`run-<our pid>-…`). */
export function ownCgroups(dirs: string[]): string[] {
  return dirs.filter((d) => d.split('/').pop()!.startsWith(`run-${process.pid}-`));
}

/**
 * Host mounts a pool of this process could leave: a sandbox mounts only in its own mount
 * namespace, so a leak on the host would be under berth's staging dir, a state dir of these
 * tests or a network namespace file of ours (network tests of other processes add their own).
 */
export function ownMounts(lines: string[]): string[] {
  return lines.filter((l) => l.includes('/run/berth/') || l.includes('berth-pool-'));
}
