/**
 * One merged service definition -> a {@link ComposeService}: every key the issue lists turned
 * into berth's container options, each error naming `services.<name>.<key>`.
 * @module
 */
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { ContainerCreateOptions } from '../containers/container-options.js';
import type { HealthcheckOptions } from '../containers/healthcheck.js';
import { UnsupportedError, ValidationError } from '../errors.js';
import type { SeccompProfile } from '../security/seccomp/types.js';
import { readEnvFile } from './env-file.js';
import { readTextFile } from './read-text.js';
import { isMapping, type Lookup } from './interpolate.js';
import { DEPLOY_KEYS, SERVICE_KEYS, UNSUPPORTED_SERVICE_KEYS } from './keys.js';
import type { ComposeBuild, ComposeService } from './model.js';
import { splitShellWords } from './shell-words.js';
import type { DependsOnEntry, PortEntry, VolumeEntry } from './service-syntax.js';

/** What normalising a service needs to know about its project. */
export interface ServiceContext {
  projectName: string;
  projectDir: string;
  /** The interpolation environment: `environment: [KEY]` and env files' bare keys read it. */
  lookup: Lookup;
  ignoreUnsupported: boolean;
  warnings: string[];
}

type Options = Omit<ContainerCreateOptions, 'image' | 'name' | 'labels' | 'network' | 'networks' | 'ports' | 'mounts'>;

function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new ValidationError(where, 'must be true or false');
  return v;
}

function text(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw new ValidationError(where, 'must be a string');
}

function argv(v: unknown, where: string): string[] {
  if (typeof v === 'string') return splitShellWords(v, where);
  if (Array.isArray(v)) return v.map((a, i) => text(a, `${where}[${i}]`));
  throw new ValidationError(where, 'must be a string or a list of strings');
}

/** Compose durations (`'1m30s'`, `'10s'`) are Go durations, which berth's healthcheck options accept as they are. */
function duration(v: unknown, where: string): string | number {
  if (typeof v === 'string' || typeof v === 'number') return v;
  throw new ValidationError(where, 'must be a duration such as "10s" or "1m30s"');
}

const GO_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration (`'1m30s'`, `'500ms'`) in milliseconds, for options typed as numbers. */
export function durationMs(v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v * 1000; // compose reads a bare number as seconds
  const text = typeof v === 'string' ? v.trim() : '';
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (text === '' || parts.map((p) => p[0]).join('') !== text) throw new ValidationError(where, `${JSON.stringify(v)} is not a duration such as "10s", "1m30s" or "500ms"`);
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * GO_UNITS_MS[p[2]!]!, 0));
}

/** `~/x` and relative paths against the project directory. */
export function hostPath(path: string, projectDir: string): string {
  if (path === '~' || path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? resolve(path) : resolve(projectDir, path);
}

function healthcheck(v: unknown, where: string): HealthcheckOptions | 'none' {
  if (!isMapping(v)) throw new ValidationError(where, 'must be a mapping { test, interval, timeout, retries, start_period, start_interval, disable }');
  if (v.disable === true) return 'none';
  const out: HealthcheckOptions = {};
  for (const [key, value] of Object.entries(v)) {
    const at = `${where}.${key}`;
    if (key === 'test') out.test = typeof value === 'string' ? value : argv(value, at);
    else if (key === 'interval') out.interval = duration(value, at);
    else if (key === 'timeout') out.timeout = duration(value, at);
    else if (key === 'start_period') out.startPeriod = duration(value, at);
    else if (key === 'start_interval') out.startInterval = duration(value, at);
    else if (key === 'retries') {
      if (!Number.isInteger(value) || (value as number) < 0) throw new ValidationError(at, 'must be a non-negative integer');
      out.retries = value as number;
    } else if (key !== 'disable') throw new ValidationError(at, 'is not a healthcheck key');
  }
  if (Array.isArray(out.test) && out.test[0] === 'NONE') return 'none';
  return out;
}

async function environment(s: Record<string, unknown>, ctx: ServiceContext, where: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const [i, file] of ((s.env_file as Array<{ path: string; required: boolean }> | undefined) ?? []).entries()) {
    Object.assign(env, await readEnvFile(hostPath(file.path, ctx.projectDir), `${where}.env_file[${i}]`, ctx.lookup, file.required));
  }
  for (const [key, value] of Object.entries((s.environment as Record<string, string | null> | undefined) ?? {})) {
    // `KEY` without a value: from the environment compose runs in, or left out.
    const v = value ?? ctx.lookup(key);
    if (v !== undefined) env[key] = v;
  }
  return env;
}

async function securityOpts(list: string[], where: string, o: Options, ctx: ServiceContext): Promise<void> {
  for (const [i, opt] of list.entries()) {
    const at = `${where}[${i}]`;
    const [key, value] = opt.split(/[=:](.*)/s, 2) as [string, string | undefined];
    if (key === 'no-new-privileges') {
      // berth sets no_new_privs on every container; asking it off cannot be honoured.
      if (value !== undefined && value !== 'true') unsupported(ctx, at, 'berth always sets no-new-privileges');
    } else if (key === 'seccomp') {
      if (value === undefined || value === '') throw new ValidationError(at, 'seccomp needs a value: seccomp=unconfined or seccomp=<profile.json>');
      o.seccomp = value === 'unconfined' ? 'unconfined' : await seccompProfile(hostPath(value, ctx.projectDir), at);
    } else {
      unsupported(ctx, at, `security option ${JSON.stringify(key)} is not supported (no-new-privileges, seccomp=)`);
    }
  }
}

/**
 * A Docker-format seccomp profile file, read at load (as the docker CLI reads it before the
 * daemon sees it), so the hash `up` compares covers the profile's content, not its path.
 * Its rules are validated by `rt.containers.create()`, which names them.
 */
async function seccompProfile(path: string, where: string): Promise<SeccompProfile> {
  const text = (await readTextFile(path, where))!;
  let profile: unknown;
  try {
    profile = JSON.parse(text);
  } catch (error) {
    throw new ValidationError(where, `${path} is not JSON: ${(error as Error).message}`, { path, cause: error });
  }
  if (!isMapping(profile)) throw new ValidationError(where, `${path} must hold a JSON object (a Docker seccomp profile)`, { path });
  return profile as unknown as SeccompProfile;
}

function unsupported(ctx: ServiceContext, where: string, why: string): void {
  if (ctx.ignoreUnsupported) ctx.warnings.push(`${where}: ignored: ${why}`);
  else throw new UnsupportedError(`${where}: ${why} (load with ignoreUnsupported: true to ignore it)`, { option: where });
}

function replicas(s: Record<string, unknown>, where: string, ctx: ServiceContext, o: Options): number {
  let n = 1;
  if (s.scale !== undefined) n = Number(s.scale);
  const deploy = s.deploy;
  if (deploy !== undefined) {
    if (!isMapping(deploy)) throw new ValidationError(`${where}.deploy`, 'must be a mapping');
    for (const key of Object.keys(deploy)) if (!DEPLOY_KEYS.has(key)) unsupported(ctx, `${where}.deploy.${key}`, 'is not supported (deploy.replicas and deploy.resources.limits are)');
    if (deploy.replicas !== undefined) n = Number(deploy.replicas);
    const limits = isMapping(deploy.resources) ? deploy.resources.limits : undefined;
    if (isMapping(deploy.resources)) for (const key of Object.keys(deploy.resources)) if (key !== 'limits') unsupported(ctx, `${where}.deploy.resources.${key}`, 'is not supported (limits is)');
    if (isMapping(limits)) {
      for (const [key, value] of Object.entries(limits)) {
        const at = `${where}.deploy.resources.limits.${key}`;
        if (key === 'memory') o.memory = text(value, at);
        else if (key === 'cpus') o.cpus = text(value, at);
        else if (key === 'pids') o.pids = Number(value);
        else unsupported(ctx, at, 'is not supported (memory, cpus, pids are)');
      }
    }
  }
  if (!Number.isInteger(n) || n < 0) throw new ValidationError(`${where}.${s.scale !== undefined ? 'scale' : 'deploy.replicas'}`, 'must be a non-negative integer');
  return n;
}

function build(v: unknown, where: string, projectDir: string): ComposeBuild {
  if (!isMapping(v)) throw new ValidationError(where, 'must be a path or a mapping { context, dockerfile, args, target }');
  for (const key of Object.keys(v)) if (!['context', 'dockerfile', 'args', 'target'].includes(key)) throw new UnsupportedError(`${where}.${key}: is not supported (context, dockerfile, args, target are)`, { option: `${where}.${key}` });
  const args: Record<string, string> = {};
  for (const [k, val] of Object.entries((v.args as Record<string, string | null> | undefined) ?? {})) if (val !== null) args[k] = val;
  return {
    context: hostPath(v.context === undefined ? '.' : text(v.context, `${where}.context`), projectDir),
    args,
    ...(v.dockerfile !== undefined ? { dockerfile: text(v.dockerfile, `${where}.dockerfile`) } : {}),
    ...(v.target !== undefined ? { target: text(v.target, `${where}.target`) } : {}),
  };
}

const SERVICE_NAME = /^[a-zA-Z0-9._-]+$/;

/**
 * Normalises one service (already interpolated, canonical and merged).
 * @throws ValidationError naming `services.<name>.<key>`; UnsupportedError for a key berth
 *   cannot honour, unless `ctx.ignoreUnsupported` (then a warning).
 */
export async function normalizeService(name: string, s: Record<string, unknown>, ctx: ServiceContext): Promise<ComposeService> {
  const where = `services.${name}`;
  if (!SERVICE_NAME.test(name)) throw new ValidationError(where, 'a service name has only letters, digits, ".", "_" and "-"');
  const unknown: string[] = [];
  for (const key of Object.keys(s)) {
    if (key.startsWith('x-') || SERVICE_KEYS.has(key)) continue;
    if (UNSUPPORTED_SERVICE_KEYS.has(key)) unsupported(ctx, `${where}.${key}`, `berth cannot honour "${key}"`);
    else unknown.push(key);
  }
  if (unknown.length > 0) ctx.warnings.push(`${where}: unknown keys ignored: ${unknown.join(', ')}`);
  const at = (key: string) => `${where}.${key}`;
  const o: Options = {};
  if (s.command !== undefined && s.command !== null) o.cmd = argv(s.command, at('command'));
  if (s.entrypoint !== undefined && s.entrypoint !== null) o.entrypoint = argv(s.entrypoint, at('entrypoint'));
  const env = await environment(s, ctx, where);
  if (Object.keys(env).length > 0) o.env = env;
  if (s.user !== undefined) o.user = text(s.user, at('user'));
  if (s.working_dir !== undefined) o.workdir = text(s.working_dir, at('working_dir'));
  if (s.hostname !== undefined) o.hostname = text(s.hostname, at('hostname'));
  if (s.privileged !== undefined) o.privileged = bool(s.privileged, at('privileged'));
  if (s.read_only !== undefined) o.readonlyRootfs = bool(s.read_only, at('read_only'));
  if (s.init !== undefined) o.init = bool(s.init, at('init'));
  if (s.tty !== undefined) o.tty = bool(s.tty, at('tty'));
  if (s.stdin_open !== undefined) o.openStdin = bool(s.stdin_open, at('stdin_open'));
  if (s.cap_add !== undefined) o.capAdd = s.cap_add as string[];
  if (s.cap_drop !== undefined) o.capDrop = s.cap_drop as string[];
  if (s.dns !== undefined) o.dns = s.dns as string[];
  if (s.extra_hosts !== undefined) {
    const hosts: Record<string, string> = {};
    for (const [host, ip] of Object.entries(s.extra_hosts as Record<string, string | null>)) {
      if (ip === null) throw new ValidationError(`${at('extra_hosts')}.${host}`, 'needs an address ("host:ip" or host: ip)');
      hosts[host] = ip;
    }
    o.extraHosts = hosts;
  }
  if (s.expose !== undefined) o.exposedPorts = s.expose as string[];
  if (s.ulimits !== undefined) {
    if (!isMapping(s.ulimits)) throw new ValidationError(at('ulimits'), 'must be a mapping of name -> limit or { soft, hard }');
    o.ulimits = s.ulimits as Record<string, number | { soft: number; hard: number }>;
  }
  if (s.mem_limit !== undefined) o.memory = text(s.mem_limit, at('mem_limit'));
  if (s.cpus !== undefined) o.cpus = text(s.cpus, at('cpus'));
  if (s.pids_limit !== undefined) o.pids = Number(s.pids_limit);
  if (s.stop_signal !== undefined) o.stopSignal = text(s.stop_signal, at('stop_signal')) as NodeJS.Signals;
  if (s.stop_grace_period !== undefined) o.stopTimeout = durationMs(s.stop_grace_period, at('stop_grace_period'));
  if (s.restart !== undefined) o.restart = text(s.restart, at('restart')) as Options['restart'];
  if (s.healthcheck !== undefined) o.healthcheck = healthcheck(s.healthcheck, at('healthcheck'));
  if (s.volumes_from !== undefined) o.volumesFrom = s.volumes_from as string[];
  if (s.security_opt !== undefined) await securityOpts(s.security_opt as string[], at('security_opt'), o, ctx);
  const count = replicas(s, where, ctx, o);
  const tmpfs = ((s.tmpfs as string[] | undefined) ?? []).map((spec, i): VolumeEntry => tmpfsEntry(spec, `${at('tmpfs')}[${i}]`));
  const volumes = [...((s.volumes as VolumeEntry[] | undefined) ?? []), ...tmpfs].map((v) =>
    v.type === 'bind' && v.source !== undefined ? { ...v, source: hostPath(v.source, ctx.projectDir) } : v,
  );
  if (s.image === undefined && s.build === undefined) throw new ValidationError(where, 'needs an image or a build section');
  const image = s.image !== undefined ? text(s.image, at('image')) : `${ctx.projectName}-${name}`;
  let networkMode: string | undefined;
  if (s.network_mode !== undefined) {
    networkMode = text(s.network_mode, at('network_mode'));
    if (!/^(host|none|bridge|service:.+|container:.+)$/.test(networkMode)) throw new ValidationError(at('network_mode'), 'must be host, none, bridge, service:<name> or container:<name>');
    if (s.networks !== undefined) throw new ValidationError(at('network_mode'), 'cannot be used with networks');
  }
  const networks: Record<string, { aliases: string[]; ipv4Address?: string }> = {};
  for (const [key, entry] of Object.entries((s.networks as Record<string, Record<string, unknown> | null> | undefined) ?? {})) {
    const nAt = `${at('networks')}.${key}`;
    const aliases = entry?.aliases === undefined ? [] : argvList(entry.aliases, `${nAt}.aliases`);
    networks[key] = { aliases, ...(entry?.ipv4_address !== undefined ? { ipv4Address: text(entry.ipv4_address, `${nAt}.ipv4_address`) } : {}) };
    for (const k of Object.keys(entry ?? {})) if (!['aliases', 'ipv4_address', 'priority'].includes(k)) unsupported(ctx, `${nAt}.${k}`, 'is not supported (aliases, ipv4_address are)');
  }
  if (networkMode === undefined && s.networks === undefined) networks.default = { aliases: [] };
  const pullPolicy = s.pull_policy;
  if (pullPolicy !== undefined && !['missing', 'always', 'never', 'build', 'if_not_present'].includes(pullPolicy as string)) throw new ValidationError(at('pull_policy'), 'must be missing, always, never or build');
  const containerName = s.container_name !== undefined ? text(s.container_name, at('container_name')) : undefined;
  if (containerName !== undefined && count > 1) throw new ValidationError(at('container_name'), `cannot name ${count} replicas with one container name`);
  return {
    name,
    image,
    ...(s.build !== undefined ? { build: build(s.build, at('build'), ctx.projectDir) } : {}),
    ...(pullPolicy !== undefined ? { pullPolicy: pullPolicy === 'if_not_present' ? 'missing' : (pullPolicy as ComposeService['pullPolicy']) } : {}),
    profiles: (s.profiles as string[] | undefined) ?? [],
    replicas: count,
    ...(containerName !== undefined ? { containerName } : {}),
    dependsOn: (s.depends_on as Record<string, DependsOnEntry> | undefined) ?? {},
    networks,
    ...(networkMode !== undefined ? { networkMode } : {}),
    volumes,
    ports: (s.ports as PortEntry[] | undefined) ?? [],
    labels: Object.fromEntries(Object.entries((s.labels as Record<string, string | null> | undefined) ?? {}).map(([k, v]) => [k, v ?? ''])),
    options: o,
  };
}

function argvList(v: unknown, where: string): string[] {
  if (!Array.isArray(v)) throw new ValidationError(where, 'must be a list of strings');
  return v.map((a, i) => text(a, `${where}[${i}]`));
}

/** `tmpfs: ['/run', '/tmp:size=64m,mode=1777']`. */
function tmpfsEntry(spec: string, where: string): VolumeEntry {
  const [target, opts] = spec.split(/:(.*)/s, 2) as [string, string | undefined];
  if (!target.startsWith('/')) throw new ValidationError(where, 'must be an absolute path, optionally with ":size=…,mode=…"');
  const tmpfs: { size?: string; mode?: number } = {};
  for (const opt of opts ? opts.split(',') : []) {
    const [k, v] = opt.split('=', 2) as [string, string | undefined];
    if (k === 'size' && v) tmpfs.size = v;
    else if (k === 'mode' && v && /^[0-7]{3,4}$/.test(v)) tmpfs.mode = Number.parseInt(v, 8);
    else if (!['rw', 'noexec', 'nosuid', 'nodev', 'exec', 'suid', 'dev'].includes(k)) throw new ValidationError(where, `${JSON.stringify(opt)} is not a tmpfs option (size=, mode=)`);
  }
  return { type: 'tmpfs', target, read_only: false, ...(Object.keys(tmpfs).length > 0 ? { tmpfs } : {}) };
}
