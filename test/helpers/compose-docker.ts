/**
 * Debian's `docker-compose` (1.29) against a private dockerd, for the compose differential test:
 * the daemon is started exactly as the benchmark starts it (bench/dockerd.ts: data root, exec
 * root, pidfile and socket in a temp dir; no default bridge, no iptables), stopped by its pid,
 * and what it writes outside its roots (/run/docker, /run/containerd, its `docker` cgroups) is
 * removed when it did not exist before.
 */
import { join } from 'node:path';
import { engineCgroups, removeLaterIfNew, removeNewEngineCgroups, removeTree } from '../../bench/cleanup.js';
import { Dockerd } from '../../bench/dockerd.js';
import { which } from '../../bench/peers.js';
import { spawnTimed, type TimedExit } from '../../bench/spawn-timed.js';

/** Why the differential cannot run here (a tool is missing), or false. */
export function composePeerMissing(): string | false {
  for (const [bin, pkg] of [['dockerd', 'docker.io'], ['docker', 'docker.io'], ['docker-compose', 'docker-compose']] as const) {
    if (!which(bin)) return `needs ${bin} (apt-get install ${pkg}; scripts/test-deps.sh installs it)`;
  }
  return false;
}

/** A private dockerd and the CLIs pointed at it. */
export class DockerPeer {
  private constructor(
    private readonly daemon: Dockerd,
    private readonly undo: Array<() => void>,
  ) {}

  /**
   * Starts a dockerd under `dir`.
   * @throws Error with the daemon's last log lines when it does not come up (the caller skips).
   */
  static async start(dir: string): Promise<DockerPeer> {
    const hostState = removeLaterIfNew(['/run/docker', '/run/docker/plugins', '/run/containerd', '/run/containerd/s']);
    const cgroups = engineCgroups();
    const undo = [hostState, () => removeNewEngineCgroups(cgroups, () => {})];
    try {
      return new DockerPeer(await Dockerd.start(join(dir, 'docker'), () => {}), undo);
    } catch (error) {
      for (const u of undo.reverse()) u();
      throw error;
    }
  }

  get host(): string {
    return this.daemon.host;
  }

  /** `docker <args>` against this daemon; rejects on a non-zero exit with its stderr. */
  async docker(args: string[], timeoutMs = 60_000): Promise<string> {
    return ok(await spawnTimed(['docker', '-H', this.host, ...args], { timeoutMs }), `docker ${args.join(' ')}`);
  }

  /** `docker-compose <args>` in `projectDir` against this daemon. */
  async compose(projectDir: string, args: string[], timeoutMs = 120_000): Promise<TimedExit> {
    const r = await spawnTimed(['sh', '-c', 'cd "$0" && exec docker-compose "$@"', projectDir, ...args], {
      env: { ...process.env, DOCKER_HOST: this.host, COMPOSE_INTERACTIVE_NO_CLI: '1' },
      timeoutMs,
    });
    ok(r, `docker-compose ${args.join(' ')}`);
    return r;
  }

  /** Stops the daemon (by its pid) and removes what it left outside its roots. */
  async stop(): Promise<void> {
    await this.daemon.stop();
    for (const u of this.undo.reverse()) u();
  }
}

function ok(r: TimedExit, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  return r.stdout;
}

/**
 * Removes `dir`, unmounting first whatever dockerd left mounted below it (network namespaces
 * and overlays live under its roots there).
 */
export function removeDockerTree(dir: string): void {
  removeTree(dir, () => {});
}
