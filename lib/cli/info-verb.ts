/**
 * `info`: what the runtime reports about itself and its host. A `Runtime.info()`, once the
 * library has one, is printed as it is; until then the CLI counts what the public API lists
 * and adds what Node knows about the host.
 * @module
 */
import { readFileSync } from 'node:fs';
import { arch, cpus, release, totalmem } from 'node:os';
import type { Runtime } from '../index.js';
import type { Command } from './command.js';
import { humanSize, writeJson } from './output.js';

/** `PRETTY_NAME` of /etc/os-release, as `docker info`'s Operating System. */
function operatingSystem(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

/** Docker's `info` fields that the public API can answer. */
export async function describeRuntime(rt: Runtime): Promise<Record<string, unknown>> {
  const own = (rt as unknown as { info?: () => Promise<Record<string, unknown>> }).info;
  if (typeof own === 'function') return own.call(rt);
  const [containers, images, volumes, networks] = await Promise.all([rt.containers.list({ all: true }), rt.images.list(), rt.volumes.list(), rt.networks.list()]);
  const count = (state: string) => containers.filter((c) => c.State === state).length;
  return {
    Containers: containers.length,
    ContainersRunning: count('running'),
    ContainersPaused: count('paused'),
    ContainersStopped: containers.length - count('running') - count('paused'),
    Images: images.length,
    Volumes: volumes.length,
    Networks: networks.length,
    RootDir: rt.root,
    KernelVersion: release(),
    OperatingSystem: operatingSystem(),
    Architecture: arch(),
    NCPU: cpus().length,
    MemTotal: totalmem(),
    NodeVersion: process.version,
  };
}

const info: Command = {
  name: 'info',
  usage: '',
  summary: 'Display system-wide information',
  options: {},
  maxArgs: 0,
  async run(ctx) {
    const facts = await describeRuntime(await ctx.runtime());
    if (ctx.json) {
      writeJson(ctx.stdout, facts);
      return 0;
    }
    for (const [key, value] of Object.entries(facts)) {
      const text = key === 'MemTotal' && typeof value === 'number' ? humanSize(value) : typeof value === 'object' ? JSON.stringify(value) : String(value);
      ctx.stdout.write(`${key}: ${text}\n`);
    }
    return 0;
  },
};

export const INFO_VERBS: readonly Command[] = [info];
