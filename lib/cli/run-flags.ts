/**
 * `docker run`'s flags turned into berth's create options: `-e`, `-v`, `-p`, `--network`,
 * `--name`, `-w`, `-u`, and berth's own sources `--rootfs DIR` / `--host` beside an image.
 * @module
 */
import { isAbsolute } from 'node:path';
import type { ContainerCreateOptions, ContainerImage, MountSpec } from '../index.js';
import { flag, listOption, stringOption } from './command.js';
import { UsageError, type OptionTable, type Parsed } from './args.js';

/** The flags `run` shares with a future `create`. */
export const CREATE_FLAGS: OptionTable = {
  rm: { type: 'boolean' },
  interactive: { type: 'boolean', short: 'i' },
  tty: { type: 'boolean', short: 't' },
  detach: { type: 'boolean', short: 'd' },
  publish: { type: 'string', short: 'p', multiple: true },
  volume: { type: 'string', short: 'v', multiple: true },
  env: { type: 'string', short: 'e', multiple: true },
  network: { type: 'string' },
  name: { type: 'string' },
  workdir: { type: 'string', short: 'w' },
  user: { type: 'string', short: 'u' },
  hostname: { type: 'string' },
  memory: { type: 'string', short: 'm' },
  init: { type: 'boolean' },
  rootfs: { type: 'string' },
  host: { type: 'boolean' },
};

/** `-e K=V` sets, `-e K` copies the CLI's own value (Docker's rule; absent stays absent). */
export function envFlags(values: readonly string[], hostEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq === 0) throw new UsageError(`invalid environment variable: ${v}`);
    if (eq > 0) env[v.slice(0, eq)] = v.slice(eq + 1);
    else if (hostEnv[v] !== undefined) env[v] = hostEnv[v]!;
  }
  return env;
}

/**
 * `-v` in Docker's short form: `/host:/ctr[:ro|rw]` is a bind mount (the source is absolute),
 * `name:/ctr[:ro|rw]` a named volume, `/ctr` an anonymous volume.
 */
export function volumeFlag(spec: string): MountSpec {
  const parts = spec.split(':');
  let mode: string | undefined;
  if (parts.length > 1 && (parts[parts.length - 1] === 'ro' || parts[parts.length - 1] === 'rw')) mode = parts.pop();
  if (parts.length > 2 || parts.some((p) => p === '')) throw new UsageError(`invalid volume specification: '${spec}'`);
  const readonly = mode === 'ro';
  if (parts.length === 1) return { type: 'volume', target: parts[0]!, ...(readonly ? { readonly } : {}) };
  const [source, target] = parts as [string, string];
  if (isAbsolute(source)) return { type: 'bind', source, target, ...(readonly ? { readonly } : {}) };
  return { type: 'volume', source, target, ...(readonly ? { readonly } : {}) };
}

/** Where the container's root comes from, and its command line. */
export function sourceAndCommand(args: Parsed): { image: ContainerImage; cmd: string[] | undefined } {
  const rootfs = stringOption(args, 'rootfs');
  const host = flag(args, 'host');
  if (rootfs !== undefined && host) throw new UsageError('--rootfs and --host cannot be used together');
  if (rootfs !== undefined || host) {
    // No IMAGE: the first positional already is the command.
    const cmd = [...args.positionals, ...args.rest];
    if (cmd.length === 0) throw new UsageError(`${host ? '--host' : '--rootfs'} needs a command to run`);
    return { image: host ? { host: true } : { rootfs }, cmd } as { image: ContainerImage; cmd: string[] };
  }
  const image = args.positionals[0];
  if (image === undefined) throw new UsageError('"run" requires at least 1 argument (an image, or --rootfs DIR / --host)');
  return { image, cmd: args.rest.length > 0 ? args.rest : undefined };
}

/** The create options the flags describe (lifetime, auto-removal and stdio are the verb's). */
export function createOptionsOf(args: Parsed): ContainerCreateOptions {
  const { image, cmd } = sourceAndCommand(args);
  const env = envFlags(listOption(args, 'env'));
  const mounts = listOption(args, 'volume').map(volumeFlag);
  const ports = listOption(args, 'publish');
  const options: ContainerCreateOptions = { image };
  if (cmd) options.cmd = cmd;
  if (Object.keys(env).length > 0) options.env = env;
  if (mounts.length > 0) options.mounts = mounts;
  if (ports.length > 0) options.ports = ports;
  for (const [flagName, key] of [['name', 'name'], ['network', 'network'], ['workdir', 'workdir'], ['user', 'user'], ['hostname', 'hostname'], ['memory', 'memory']] as const) {
    const v = stringOption(args, flagName);
    if (v !== undefined) (options as unknown as Record<string, unknown>)[key] = v;
  }
  if (flag(args, 'init')) options.init = true;
  if (flag(args, 'tty')) options.tty = true;
  if (flag(args, 'interactive')) options.openStdin = true;
  return options;
}
