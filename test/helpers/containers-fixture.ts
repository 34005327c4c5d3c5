/**
 * Shared setup of the container suites: a throw-away state dir per suite, containers created
 * from the busybox rootfs and tracked for removal in `after()`, and small host-side probes.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime } from '../../lib/runtime.js';
import type { Container } from '../../lib/containers/container.js';
import type { ContainerCreateOptions } from '../../lib/containers/container-options.js';
import { busyboxRootfs } from './busybox-rootfs.js';
import { berthCgroupDirs } from './leaks.js';

export interface Fixture {
  root: string;
  rt: Runtime;
  /** Creates a busybox container running `cmd`, removed in cleanup(). */
  create(cmd: string[], options?: Partial<ContainerCreateOptions>): Promise<Container>;
  sh(script: string, options?: Partial<ContainerCreateOptions>): Promise<Container>;
  cleanup(): Promise<void>;
  /**
   * Removes every container of the runtime (also those other processes made in the root) and
   * then every network, before `cleanup()` deletes the root: a network with a running
   * container cannot be removed, and its bridge and rules would outlive the root.
   */
  removeContainersAndNetworks(): Promise<void>;
}

export async function openFixture(prefix = 'berth-ct-'): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const rt = await Runtime.open({ root });
  const made: Container[] = [];
  const create = async (cmd: string[], options: Partial<ContainerCreateOptions> = {}) => {
    const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd, ...options });
    made.push(c);
    return c;
  };
  return {
    root,
    rt,
    create,
    sh: (script, options) => create(['sh', '-c', script], options),
    async cleanup() {
      for (const c of made) {
        await c.remove({ force: true }).catch(() => {});
      }
      rmSync(root, { recursive: true, force: true });
    },
    async removeContainersAndNetworks() {
      for (const c of await rt.containers.list({ all: true }).catch(() => [])) await (await rt.containers.get(c.Id)).remove({ force: true }).catch(() => {});
      for (const n of await rt.networks.list().catch(() => [])) await n.remove().catch(() => {});
    },
  };
}

/** The cgroup directories of container `id` (every hierarchy). */
export function cgroupDirsOf(id: string): string[] {
  return berthCgroupDirs().filter((d) => d.endsWith(`/${id}`));
}

/** A process's state letter (R, S, Z, ...) and parent, or undefined when it is gone. */
export function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Children of `ppid` in state Z. */
export function zombieChildrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s && s.ppid === ppid && s.state === 'Z') out.push(Number(name));
  }
  return out;
}

/** Polls `fn` until it is truthy (bounded); returns the last value. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 5000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await fn();
  while (!v && Date.now() < deadline) {
    await sleep(stepMs);
    v = await fn();
  }
  return v;
}

export function pathExists(p: string): boolean {
  return existsSync(p);
}
