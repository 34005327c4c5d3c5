import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/** Undo steps, run last-in first-out; every step runs even if an earlier one failed. */
export class CleanupStack {
  private readonly steps: { what: string; fn: () => Promise<void> | void }[] = [];

  push(what: string, fn: () => Promise<void> | void): void {
    this.steps.push({ what, fn });
  }

  async run(log: (s: string) => void): Promise<void> {
    while (this.steps.length) {
      const { what, fn } = this.steps.pop()!;
      try {
        await fn();
      } catch (e) {
        log(`cleanup: ${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}

/** Mount points at or below `dir` in this process's mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((t) => t === dir || t.startsWith(`${dir}/`))
    .map((t) => t.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
}

/**
 * Remove the benchmark's temp dir. Anything a peer left mounted below it (a podman or docker
 * overlay after a crash) is unmounted first, so rm never descends into a live mount.
 */
export function removeTree(dir: string, log: (s: string) => void): void {
  for (const m of mountsUnder(dir)) {
    const r = spawnSync('umount', ['-l', m], { encoding: 'utf8' });
    log(`cleanup: unmounted leftover ${m}${r.status === 0 ? '' : ` (failed: ${r.stderr.trim()})`}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Parent cgroups the engines create on first use and never remove (docker/, libpod_parent/), in
 * every hierarchy. Snapshot which exist before the run; afterwards remove, deepest first, the
 * ones the run created, and only those: other cgroups (berth's own tests run beside this) are
 * never touched. rmdir fails on a cgroup that still has processes or children, which is the
 * safety net.
 */
export const ENGINE_CGROUP_PARENTS = ['docker', 'libpod_parent'];

export function engineCgroups(): Set<string> {
  const found = new Set<string>();
  let hierarchies: string[] = [];
  try {
    hierarchies = readdirSync('/sys/fs/cgroup').map((h) => `/sys/fs/cgroup/${h}`);
  } catch {
    return found;
  }
  const walk = (dir: string): void => {
    found.add(dir);
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(`${dir}/${e.name}`);
  };
  for (const h of hierarchies) for (const p of ENGINE_CGROUP_PARENTS) if (existsSync(`${h}/${p}`)) walk(`${h}/${p}`);
  return found;
}

export function removeNewEngineCgroups(before: Set<string>, log: (s: string) => void): void {
  const created = [...engineCgroups()].filter((d) => !before.has(d)).sort((a, b) => b.length - a.length);
  for (const d of created) {
    try {
      rmdirSync(d);
    } catch (e) {
      log(`cleanup: could not remove cgroup ${d}: ${(e as Error).message}`);
    }
  }
}

/**
 * Remember which of `paths` exist now; the returned function removes, deepest first, the ones
 * that did not: files by unlink, directories by rmdir, so a directory that someone else has put
 * something into since is left alone. For state the peers write outside the directories they
 * were pointed at (podman: netavark's IPAM database in /run/containers/networks and /run/netns;
 * dockerd: /run/docker/plugins and containerd's /run/containerd/s, whatever --exec-root says).
 */
export function removeLaterIfNew(paths: string[]): () => void {
  const fresh = paths.filter((p) => !existsSync(p)).sort((a, b) => b.length - a.length);
  return () => {
    for (const p of fresh) {
      try {
        if (statSync(p).isDirectory()) rmdirSync(p);
        else unlinkSync(p);
      } catch {
        // gone already, or no longer ours alone
      }
    }
  };
}
