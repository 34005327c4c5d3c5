import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { spawnTimed } from './spawn-timed.js';

/** A peer tool: the program to look for, the Debian package that provides it, how to ask its version. */
export interface PeerSpec {
  name: string;
  bin: string;
  debian: string;
  versionArgs: string[];
}

export const PEERS: readonly PeerSpec[] = [
  { name: 'crun', bin: 'crun', debian: 'crun', versionArgs: ['--version'] },
  { name: 'runc', bin: 'runc', debian: 'runc', versionArgs: ['--version'] },
  { name: 'bwrap', bin: 'bwrap', debian: 'bubblewrap', versionArgs: ['--version'] },
  { name: 'podman', bin: 'podman', debian: 'podman', versionArgs: ['--version'] },
  // Debian's docker.io ships dockerd; a docker CLI alone (as some images carry) is not enough.
  { name: 'docker', bin: 'dockerd', debian: 'docker.io', versionArgs: ['--version'] },
  { name: 'buildah', bin: 'buildah', debian: 'buildah', versionArgs: ['--version'] },
  { name: 'docker-compose', bin: 'docker-compose', debian: 'docker-compose', versionArgs: ['--version'] },
  // Helpers for the pull workload and for the fixtures; not benchmark subjects themselves.
  { name: 'skopeo', bin: 'skopeo', debian: 'skopeo', versionArgs: ['--version'] },
  { name: 'umoci', bin: 'umoci', debian: 'umoci', versionArgs: ['--version'] },
  { name: 'docker-registry', bin: 'docker-registry', debian: 'docker-registry', versionArgs: ['--version'] },
];

export function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export interface PeerInfo {
  spec: PeerSpec;
  path?: string;
  version?: string;
}

export async function probePeers(): Promise<Map<string, PeerInfo>> {
  const out = new Map<string, PeerInfo>();
  for (const spec of PEERS) {
    const path = which(spec.bin);
    const info: PeerInfo = { spec };
    if (path) {
      info.path = path;
      try {
        const r = await spawnTimed([path, ...spec.versionArgs], { timeoutMs: 10_000 });
        info.version = (r.stdout || r.stderr).trim().split('\n')[0];
      } catch {
        info.version = 'unknown';
      }
    }
    out.set(spec.name, info);
  }
  return out;
}

/**
 * Install the missing peers from Debian. Only called for --peers: a benchmark run must not change
 * the machine unless asked. One apt-get call per package so that one that fails (docker.io is
 * large, podman pulls many dependencies) does not stop the others.
 */
export async function installMissingPeers(log: (s: string) => void): Promise<void> {
  const missing = PEERS.filter((p) => !which(p.bin));
  if (missing.length === 0) {
    log('peers: all present, nothing to install');
    return;
  }
  log(`peers: apt-get update, then install ${missing.map((p) => p.debian).join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const upd = await spawnTimed(['apt-get', 'update', '-q'], { env, timeoutMs: 600_000 });
  if (upd.code !== 0) log(`peers: apt-get update failed: ${upd.stderr.trim().split('\n').pop()}`);
  for (const p of missing) {
    const r = await spawnTimed(['apt-get', 'install', '-y', '-q', '--no-install-recommends', p.debian], {
      env,
      timeoutMs: 1_200_000,
    });
    log(
      r.code === 0
        ? `peers: installed ${p.debian} (${(r.ms / 1000).toFixed(0)} s)`
        : `peers: installing ${p.debian} failed: ${r.stderr.trim().split('\n').pop()}`,
    );
  }
}
