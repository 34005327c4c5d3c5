/**
 * `rt.compose.load()`: files -> YAML -> interpolation -> long forms -> merge -> a
 * {@link ComposeProject}. Nothing on the machine is touched; every error names the file or
 * `services.<name>.<key>` it is about.
 * @module
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ValidationError } from '../errors.js';
import { readEnvFile } from './env-file.js';
import { interpolateTree, isMapping, type Lookup } from './interpolate.js';
import { applyExtends, type FileServices } from './extends.js';
import { applyIncludes } from './include.js';
import { mergeFiles } from './merge.js';
import type { ComposeNetwork, ComposeProject, ComposeService, ComposeVolume } from './model.js';
import { chooseProjectName } from './project-name.js';
import { NETWORK_KEYS, TOP_KEYS, UNSUPPORTED_TOP_KEYS, VOLUME_KEYS } from './keys.js';
import { normalizeService, type ServiceContext } from './service-options.js';
import { canonicalService } from './service-syntax.js';
import { readComposeFile } from './yaml-file.js';
import { stripMarks } from './yaml-tags.js';
import { UnsupportedError } from '../errors.js';

/** Options of `rt.compose.load()`. */
export interface ComposeLoadOptions {
  /**
   * The compose files, merged in order (relative to `projectDir`). Default: the first of
   * `compose.yaml`, `compose.yml`, `docker-compose.yml`, `docker-compose.yaml` in `projectDir`,
   * with its `compose.override.yaml` (or `.yml`, `docker-compose.override.*`) if present.
   */
  files?: string[];
  /** Default: the directory of the first file, else `process.cwd()`. */
  projectDir?: string;
  /** Default: `COMPOSE_PROJECT_NAME`, the files' `name`, else the directory's name (normalised). */
  projectName?: string;
  /** Variables for interpolation; they win over the process environment and env files. */
  env?: Record<string, string>;
  /** Env files for interpolation, relative to `projectDir`. Default `['.env']` (if it exists). */
  envFiles?: string[];
  /** Active profiles. Default: `COMPOSE_PROFILES` (comma-separated), else none. */
  profiles?: string[];
  /** Warn about keys berth cannot honour (`gpus`, `configs`, ...) instead of throwing. Default false. */
  ignoreUnsupported?: boolean;
}

const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
const OVERRIDES = ['compose.override.yaml', 'compose.override.yml', 'docker-compose.override.yml', 'docker-compose.override.yaml'];

function checkStrings(value: unknown, option: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) throw new ValidationError(option, 'must be an array of non-empty strings');
  return value as string[];
}

function locateFiles(files: string[] | undefined, projectDir: string | undefined): { files: string[]; projectDir: string } {
  if (files !== undefined && files.length > 0) {
    const base = projectDir ?? process.cwd();
    const abs = files.map((f) => (isAbsolute(f) ? f : resolve(base, f)));
    return { files: abs, projectDir: projectDir ?? resolve(abs[0]!, '..') };
  }
  const dir = projectDir ?? process.cwd();
  const main = DEFAULT_FILES.map((f) => resolve(dir, f)).find((f) => existsSync(f));
  if (main === undefined) throw new ValidationError('files', `no compose file in ${dir} (looked for ${DEFAULT_FILES.join(', ')})`, { path: dir });
  const override = OVERRIDES.map((f) => resolve(dir, f)).find((f) => existsSync(f));
  return { files: override ? [main, override] : [main], projectDir: dir };
}

/**
 * Loads and checks a project.
 * @throws ValidationError naming the option, file or `services.<name>.<key>`; UnsupportedError
 *   naming service and key for what berth cannot honour (unless `ignoreUnsupported`).
 */
export async function loadProject(options: ComposeLoadOptions = {}): Promise<ComposeProject> {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  const known = ['files', 'projectDir', 'projectName', 'env', 'envFiles', 'profiles', 'ignoreUnsupported'];
  for (const key of Object.keys(options)) if (!known.includes(key)) throw new ValidationError(key, `is not a load() option (${known.join(', ')})`);
  if (options.projectDir !== undefined && (typeof options.projectDir !== 'string' || options.projectDir === '')) throw new ValidationError('projectDir', 'must be a path');
  if (options.env !== undefined && (!isMapping(options.env) || Object.values(options.env).some((v) => typeof v !== 'string'))) throw new ValidationError('env', 'must be an object of strings');
  const located = locateFiles(checkStrings(options.files, 'files'), options.projectDir === undefined ? undefined : resolve(options.projectDir));
  const projectDir = located.projectDir;
  const explicitEnvFiles = checkStrings(options.envFiles, 'envFiles');
  const processEnv: Lookup = (name) => options.env?.[name] ?? process.env[name];
  // Later env files override earlier ones; the process environment and `env` override them all.
  const fileVars: Record<string, string> = {};
  for (const [i, f] of (explicitEnvFiles ?? ['.env']).entries()) {
    Object.assign(fileVars, await readEnvFile(resolve(projectDir, f), `envFiles[${i}]`, processEnv, explicitEnvFiles !== undefined));
  }
  const lookup: Lookup = (name) => processEnv(name) ?? fileVars[name];
  const warnings: string[] = [];
  const canonical: Record<string, unknown>[] = [];
  const readFile = async (file: string): Promise<{ raw: Record<string, unknown>; own: FileServices }> => {
    const raw = interpolateTree(await readComposeFile(file), lookup, '') as Record<string, unknown>;
    if (raw.services !== undefined && !isMapping(raw.services)) throw new ValidationError(`${file}: services`, 'must be a mapping');
    const services: Record<string, Record<string, unknown>> = {};
    for (const [name, def] of Object.entries((raw.services as Record<string, unknown> | undefined) ?? {})) services[name] = canonicalService(def, `services.${name}`);
    return { raw, own: { file, services } };
  };
  const loadModel = async (file: string, chain: string[]): Promise<Record<string, unknown>> => {
    const { raw, own } = await readFile(file);
    const services = await applyExtends(own, async (other) => (await readFile(other)).own);
    return applyIncludes({ ...raw, ...(raw.services !== undefined ? { services } : {}) }, file, chain, loadModel);
  };
  for (const file of located.files) canonical.push(await loadModel(file, []));
  const merged = stripMarks(mergeFiles(canonical)) as Record<string, unknown>;
  for (const key of Object.keys(merged)) {
    if (key.startsWith('x-') || TOP_KEYS.has(key)) continue;
    if (UNSUPPORTED_TOP_KEYS.has(key)) {
      if (options.ignoreUnsupported === true) warnings.push(`${key}: ignored: berth cannot honour it`);
      else throw new UnsupportedError(`${key}: berth cannot honour top-level "${key}" (load with ignoreUnsupported: true to ignore it)`, { option: key });
    } else warnings.push(`${key}: unknown top-level key ignored`);
  }
  if (merged.version !== undefined) warnings.push('version: obsolete, ignored (as compose v2 does)');
  const name = chooseProjectName({ option: options.projectName, env: lookup('COMPOSE_PROJECT_NAME'), file: merged.name, projectDir });
  const ctx: ServiceContext = { projectName: name, projectDir, lookup, ignoreUnsupported: options.ignoreUnsupported === true, warnings };
  const services: Record<string, ComposeService> = {};
  for (const [svc, def] of Object.entries((merged.services as Record<string, Record<string, unknown>> | undefined) ?? {})) services[svc] = await normalizeService(svc, def, ctx);
  if (Object.keys(services).length === 0) throw new ValidationError('services', `the project has no services (${located.files.join(', ')})`);
  const networks = topNetworks(merged.networks, name, services);
  const volumes = topVolumes(merged.volumes, name);
  checkReferences(services, networks, volumes);
  const active = checkStrings(options.profiles, 'profiles') ?? (lookup('COMPOSE_PROFILES')?.split(',').filter((p) => p !== '') ?? []);
  const enabled = Object.values(services)
    .filter((s) => s.profiles.length === 0 || s.profiles.some((p) => active.includes(p) || p === '*') || active.includes('*'))
    .map((s) => s.name);
  return { name, projectDir, files: located.files, services, enabled, networks, volumes, warnings };
}

function topNetworks(raw: unknown, project: string, services: Record<string, ComposeService>): Record<string, ComposeNetwork> {
  if (raw !== undefined && raw !== null && !isMapping(raw)) throw new ValidationError('networks', 'must be a mapping');
  const defs: Record<string, unknown> = { ...((raw as Record<string, unknown> | undefined) ?? {}) };
  // `<project>_default` exists when a service uses it (or the file redefines it).
  if (!('default' in defs) && Object.values(services).some((s) => 'default' in s.networks)) defs.default = null;
  const out: Record<string, ComposeNetwork> = {};
  for (const [key, def] of Object.entries(defs)) {
    const at = `networks.${key}`;
    if (def !== null && !isMapping(def)) throw new ValidationError(at, 'must be a mapping or empty');
    const d = (def ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(d)) if (!NETWORK_KEYS.has(k)) throw new ValidationError(`${at}.${k}`, `is not a network key (${[...NETWORK_KEYS].join(', ')})`);
    if (d.driver !== undefined && d.driver !== 'bridge') throw new UnsupportedError(`${at}.driver: only the bridge driver is supported, got ${JSON.stringify(d.driver)}`, { option: `${at}.driver` });
    if (d.enable_ipv6 === true) throw new UnsupportedError(`${at}.enable_ipv6: IPv6 networks are not supported`, { option: `${at}.enable_ipv6` });
    if (d.driver_opts !== undefined) throw new UnsupportedError(`${at}.driver_opts: not supported`, { option: `${at}.driver_opts` });
    const external = d.external === true;
    const ipam = isMapping(d.ipam) ? d.ipam : undefined;
    const config = Array.isArray(ipam?.config) ? (ipam.config[0] as Record<string, unknown> | undefined) : undefined;
    if (Array.isArray(ipam?.config) && ipam.config.length > 1) throw new UnsupportedError(`${at}.ipam.config: one subnet per network is supported`, { option: `${at}.ipam.config` });
    out[key] = {
      key,
      name: typeof d.name === 'string' ? d.name : external ? key : `${project}_${key}`,
      external,
      internal: d.internal === true,
      labels: labelsOf(d.labels, `${at}.labels`),
      ...(typeof config?.subnet === 'string' ? { subnet: config.subnet } : {}),
      ...(typeof config?.gateway === 'string' ? { gateway: config.gateway } : {}),
      ...(typeof config?.ip_range === 'string' ? { ipRange: config.ip_range } : {}),
    };
  }
  return out;
}

function topVolumes(raw: unknown, project: string): Record<string, ComposeVolume> {
  if (raw !== undefined && raw !== null && !isMapping(raw)) throw new ValidationError('volumes', 'must be a mapping');
  const out: Record<string, ComposeVolume> = {};
  for (const [key, def] of Object.entries((raw as Record<string, unknown> | undefined) ?? {})) {
    const at = `volumes.${key}`;
    if (def !== null && !isMapping(def)) throw new ValidationError(at, 'must be a mapping or empty');
    const d = (def ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(d)) if (!VOLUME_KEYS.has(k)) throw new ValidationError(`${at}.${k}`, `is not a volume key (${[...VOLUME_KEYS].join(', ')})`);
    if (d.driver !== undefined && d.driver !== 'local') throw new UnsupportedError(`${at}.driver: only the local driver is supported, got ${JSON.stringify(d.driver)}`, { option: `${at}.driver` });
    if (d.driver_opts !== undefined) throw new UnsupportedError(`${at}.driver_opts: not supported`, { option: `${at}.driver_opts` });
    const external = d.external === true;
    out[key] = { key, name: typeof d.name === 'string' ? d.name : external ? key : `${project}_${key}`, external, labels: labelsOf(d.labels, `${at}.labels`) };
  }
  return out;
}

function labelsOf(raw: unknown, where: string): Record<string, string> {
  if (raw === undefined) return {};
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((l) => String(l).split(/=(.*)/s, 2)).map(([k, v]) => [k!, v ?? '']));
  if (!isMapping(raw)) throw new ValidationError(where, 'must be a mapping or a list of "key=value"');
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v ?? '')]));
}

function checkReferences(services: Record<string, ComposeService>, networks: Record<string, ComposeNetwork>, volumes: Record<string, ComposeVolume>): void {
  for (const s of Object.values(services)) {
    for (const dep of Object.keys(s.dependsOn)) {
      if (dep === s.name) throw new ValidationError(`services.${s.name}.depends_on.${dep}`, 'a service cannot depend on itself');
      if (!(dep in services) && s.dependsOn[dep]!.required) throw new ValidationError(`services.${s.name}.depends_on.${dep}`, `no service named ${dep}`);
    }
    for (const key of Object.keys(s.networks)) if (!(key in networks)) throw new ValidationError(`services.${s.name}.networks.${key}`, `undefined network ${key} (declare it under the top-level networks)`);
    s.volumes.forEach((v, i) => {
      if (v.type === 'volume' && v.source !== undefined && !(v.source in volumes)) throw new ValidationError(`services.${s.name}.volumes[${i}]`, `undefined volume ${v.source} (declare it under the top-level volumes)`);
    });
    const via = s.networkMode?.startsWith('service:') ? s.networkMode.slice(8) : undefined;
    if (via !== undefined && !(via in services)) throw new ValidationError(`services.${s.name}.network_mode`, `no service named ${via}`);
  }
  // A cycle would make `up` wait forever; compose refuses it at load too.
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done' || !(name in services)) return;
    if (state.get(name) === 'visiting') throw new ValidationError(`services.${name}.depends_on`, `dependency cycle: ${[...path, name].join(' -> ')}`);
    state.set(name, 'visiting');
    const s = services[name]!;
    const deps = [...Object.keys(s.dependsOn), ...(s.networkMode?.startsWith('service:') ? [s.networkMode.slice(8)] : [])];
    for (const dep of deps) visit(dep, [...path, name]);
    state.set(name, 'done');
  };
  for (const name of Object.keys(services)) visit(name, []);
}
