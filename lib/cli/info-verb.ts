/**
 * `info`: `rt.info()` printed as `docker info` prints its server section (labels, one-space
 * indented details, warnings on stderr), or the whole document with `--json`.
 * @module
 */
import type { FeatureProbe, RuntimeInfo } from '../index.js';
import type { Command } from './command.js';
import { writeJson } from './output.js';

/** Docker's binary sizes for `Total Memory` (go-units' BytesSize: `23.54GiB`). */
export function binarySize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toPrecision(4))}${units[unit]}`;
}

function yesNo(p: FeatureProbe): string {
  return `${p.available ? 'yes' : 'no'} (${p.method}: ${p.detail})`;
}

function ranges(list: ReadonlyArray<{ start: number; count: number }>): string {
  return list.length === 0 ? 'none' : list.map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ');
}

/** The text `berth info` prints on stdout, one `Label: value` per line, details indented. */
export function formatInfo(info: RuntimeInfo): string {
  const lines: string[] = [];
  const add = (depth: number, label: string, value?: string | number | boolean) =>
    lines.push(`${' '.repeat(depth)}${label}${value === undefined ? ':' : `: ${String(value)}`}`);
  add(0, 'Containers', info.Containers);
  add(1, 'Running', info.ContainersRunning);
  add(1, 'Paused', info.ContainersPaused);
  add(1, 'Stopped', info.ContainersStopped);
  add(0, 'Images', info.Images);
  add(0, 'Volumes', info.Volumes);
  add(0, 'Networks', info.Networks);
  add(0, 'Server Version', `${info.ServerVersion} (berth)`);
  add(0, 'Storage Driver', info.Driver);
  for (const [k, v] of info.DriverStatus) add(1, k, v);
  add(0, 'Cgroup Driver', info.CgroupDriver);
  add(0, 'Cgroup Version', info.CgroupVersion === '' ? 'none' : `${info.CgroupVersion} (${info.Cgroups.mode})`);
  const controllers = Object.entries(info.Cgroups.controllers);
  add(1, 'Usable Controllers', controllers.filter(([, s]) => s.usable).map(([n]) => n).join(' ') || 'none');
  for (const [name, s] of controllers.filter(([, st]) => !st.usable)) add(1, `${name} unusable`, s.detail);
  add(0, 'Network');
  add(1, 'Bridge', `${info.Network.bridge.available ? 'yes' : 'no'} (${info.Network.bridge.detail})`);
  add(1, 'Firewall', info.Network.firewall ?? 'none');
  add(1, 'pasta', info.Network.pasta ?? 'not found');
  add(1, 'slirp4netns', info.Network.slirp4netns ?? 'not found');
  add(1, 'User-mode stack', `${info.Network.userMode.stack ?? 'none'} (${info.Network.userMode.reason})`);
  add(0, 'Id Mapping', `${info.IdMapping.mode} (${info.IdMapping.reason})`);
  for (const h of ['newuidmap', 'newgidmap'] as const) {
    const helper = info.IdMapping[h];
    add(1, h, helper.path === null ? 'not found' : `${helper.path}${helper.setuid ? ' (setuid)' : ' (not setuid)'}`);
  }
  add(1, 'subuid', ranges(info.IdMapping.subuid));
  add(1, 'subgid', ranges(info.IdMapping.subgid));
  add(0, 'Kernel Features');
  for (const [name, probe] of Object.entries(info.KernelFeatures)) add(1, name, yesNo(probe));
  add(0, 'Security Options');
  for (const opt of info.SecurityOptions) {
    const [name, ...rest] = opt.split(',');
    // A bare option name, as Docker prints ` seccomp` above its `  Profile: builtin`.
    lines.push(` ${name!.replace(/^name=/, '')}`);
    for (const kv of rest) {
      const [k, v] = kv.split('=');
      add(2, k!.charAt(0).toUpperCase() + k!.slice(1), v ?? '');
    }
  }
  add(0, 'Rootless', info.Rootless);
  add(0, 'Uid', info.Uid);
  add(0, 'Kernel Version', info.KernelVersion);
  add(0, 'Operating System', info.OperatingSystem);
  add(0, 'OSType', info.OSType);
  add(0, 'Architecture', info.Architecture);
  add(0, 'CPUs', info.NCPU);
  add(0, 'Total Memory', binarySize(info.MemTotal));
  add(0, 'Node Version', info.NodeVersion);
  add(0, 'Berth Root Dir', info.RootDir);
  return `${lines.join('\n')}\n`;
}

const info: Command = {
  name: 'info',
  usage: '',
  summary: 'Display system-wide information',
  options: {},
  maxArgs: 0,
  async run(ctx) {
    const facts = await (await ctx.runtime()).info();
    if (ctx.json) {
      writeJson(ctx.stdout, facts);
      return 0;
    }
    ctx.stdout.write(formatInfo(facts));
    // As docker info: the warnings go to stderr, after the facts.
    for (const line of facts.Warnings) ctx.stderr.write(`${line}\n`);
    return 0;
  },
};

export const INFO_VERBS: readonly Command[] = [info];
