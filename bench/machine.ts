import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { PeerInfo } from './peers.js';

export interface MachineFacts {
  date: string;
  kernel: string;
  distro: string;
  cgroupMode: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  /** 1/5/15-minute load averages when the run started and when it ended: other work on the machine shows here. */
  loadAvg: string;
  tools: Record<string, string>;
}

/** What "cgroup mode" means here: what a runtime sees when it looks at /sys/fs/cgroup. */
export function cgroupMode(): string {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => {
      const [pre, post] = l.split(' - ');
      return { target: pre?.split(' ')[4] ?? '', fstype: post?.split(' ')[0] ?? '' };
    });
  const root = mounts.filter((m) => m.target === '/sys/fs/cgroup').pop();
  if (root?.fstype === 'cgroup2') return 'v2 (unified)';
  const v1 = mounts.filter((m) => m.fstype === 'cgroup' && m.target.startsWith('/sys/fs/cgroup/')).length;
  const v2 = mounts.find((m) => m.fstype === 'cgroup2' && m.target.startsWith('/sys/fs/cgroup/'));
  if (v1 > 0 && v2) {
    let ctl = '';
    try {
      ctl = readFileSync(`${v2.target}/cgroup.controllers`, 'utf8').trim();
    } catch {
      // unreadable: leave it out
    }
    return `hybrid (${v1} v1 hierarchies + cgroup2 at ${v2.target}${ctl ? ` with controllers: ${ctl}` : ''})`;
  }
  if (v1 > 0) return `v1 (${v1} hierarchies)`;
  return 'none mounted';
}

function distro(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return m?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function loadAvg(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

export function machineFacts(peers: Map<string, PeerInfo>, loadAtStart: string): MachineFacts {
  const tools: Record<string, string> = {};
  for (const [name, info] of peers) if (info.version) tools[name] = info.version;
  return {
    date: new Date().toISOString(),
    kernel: `${os.release()} (${os.machine()})`,
    distro: distro(),
    cgroupMode: cgroupMode(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    loadAvg: `${loadAtStart} at start, ${loadAvg()} at end`,
    tools,
  };
}
