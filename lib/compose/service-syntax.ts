/**
 * The short and long syntaxes of a service's keys, brought to one long form per key before
 * files are merged (the merge rules are stated over the long forms: a port or volume is one
 * entry whatever way it was written). Only shapes change here; meanings are checked later by
 * `service-options.ts`.
 * @module
 */
import { ValidationError } from '../errors.js';
import { isMapping } from './interpolate.js';
import { Override, RESET } from './yaml-tags.js';

/** A published port in the long syntax. */
export interface PortEntry {
  target: number;
  /** A host port or range (`'8080-8081'`); absent: any free port. */
  published?: string;
  host_ip?: string;
  protocol: 'tcp' | 'udp';
}

/** A mount in the long syntax. */
export interface VolumeEntry {
  type: 'volume' | 'bind' | 'tmpfs';
  /** A volume's key in the top-level `volumes`, a host path, or absent (anonymous volume, tmpfs). */
  source?: string;
  target: string;
  read_only: boolean;
  bind?: { create_host_path?: boolean; propagation?: string };
  volume?: { nocopy?: boolean };
  tmpfs?: { size?: number | string; mode?: number };
}

/** A `depends_on` entry in the long syntax. */
export interface DependsOnEntry {
  condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  required: boolean;
  restart?: boolean;
}

const CONDITIONS = new Set(['service_started', 'service_healthy', 'service_completed_successfully']);

function str(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ValidationError(where, 'must be a string');
}

function list(value: unknown, where: string): unknown[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) throw new ValidationError(where, 'must be a list (or a single string)');
  return value;
}

/**
 * `environment`, `labels`, `extra_hosts` and the like: a mapping, or a list of `KEY=VALUE`
 * (`KEY` alone is null: taken from the environment). `sep` is the list form's separator;
 * extra_hosts also accepts `host:ip`.
 */
export function toMapping(value: unknown, where: string, seps: readonly string[] = ['=']): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (isMapping(value)) {
    for (const [k, v] of Object.entries(value)) out[k] = v === null || v === undefined ? null : Array.isArray(v) ? v.map((x, i) => str(x, `${where}.${k}[${i}]`)).join(',') : str(v, `${where}.${k}`);
    return out;
  }
  if (!Array.isArray(value)) throw new ValidationError(where, 'must be a mapping or a list of "KEY=VALUE"');
  value.forEach((item, i) => {
    const s = str(item, `${where}[${i}]`);
    const at = Math.min(...seps.map((sep) => s.indexOf(sep)).filter((n) => n >= 0));
    if (!Number.isFinite(at)) out[s] = null;
    else out[s.slice(0, at)] = s.slice(at + 1);
  });
  return out;
}

function toDependsOn(value: unknown, where: string): Record<string, DependsOnEntry> {
  const out: Record<string, DependsOnEntry> = {};
  if (Array.isArray(value)) {
    value.forEach((name, i) => (out[str(name, `${where}[${i}]`)] = { condition: 'service_started', required: true }));
    return out;
  }
  if (!isMapping(value)) throw new ValidationError(where, 'must be a list of service names or a mapping of service -> { condition, required }');
  for (const [name, entry] of Object.entries(value)) {
    const at = `${where}.${name}`;
    if (entry === null) {
      out[name] = { condition: 'service_started', required: true };
      continue;
    }
    if (!isMapping(entry)) throw new ValidationError(at, 'must be a mapping { condition, required, restart }');
    const condition = entry.condition ?? 'service_started';
    if (typeof condition !== 'string' || !CONDITIONS.has(condition)) throw new ValidationError(`${at}.condition`, 'must be service_started, service_healthy or service_completed_successfully');
    for (const key of ['required', 'restart'] as const) {
      if (entry[key] !== undefined && typeof entry[key] !== 'boolean') throw new ValidationError(`${at}.${key}`, 'must be a boolean');
    }
    for (const key of Object.keys(entry)) if (!['condition', 'required', 'restart'].includes(key)) throw new ValidationError(`${at}.${key}`, 'is not a depends_on key (condition, required, restart)');
    out[name] = { condition: condition as DependsOnEntry['condition'], required: entry.required !== false, ...(entry.restart !== undefined ? { restart: entry.restart as boolean } : {}) };
  }
  return out;
}

function toServiceNetworks(value: unknown, where: string): Record<string, Record<string, unknown> | null> {
  const out: Record<string, Record<string, unknown> | null> = {};
  if (Array.isArray(value)) {
    value.forEach((name, i) => (out[str(name, `${where}[${i}]`)] = null));
    return out;
  }
  if (!isMapping(value)) throw new ValidationError(where, 'must be a list of network names or a mapping of network -> { aliases, ipv4_address }');
  for (const [name, entry] of Object.entries(value)) {
    if (entry !== null && !isMapping(entry)) throw new ValidationError(`${where}.${name}`, 'must be a mapping { aliases, ipv4_address } or empty');
    out[name] = entry;
  }
  return out;
}

const PORT_SHORT = /^(?:(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):)?(?:(\d+(?:-\d+)?)?:)?(\d+(?:-\d+)?)(?:\/(tcp|udp))?$/;

/**
 * One port of the short syntax: `'80'`, `'8080:80'`, `'127.0.0.1:8080:80'`, `'127.0.0.1::80'`,
 * `'8080-8081:80-81/udp'`. Ranges of equal length become one entry per port.
 */
export function parseShortPort(spec: string, where: string): PortEntry[] {
  const m = PORT_SHORT.exec(spec);
  if (!m) throw new ValidationError(where, `${JSON.stringify(spec)} is not a port ("80", "8080:80", "127.0.0.1:8080:80", "8080-8081:80-81/udp")`);
  const hostIp = m[1] ?? m[2];
  const [tLow, tHigh] = range(m[4]!, where);
  const protocol = (m[5] ?? 'tcp') as 'tcp' | 'udp';
  const base = { protocol, ...(hostIp !== undefined ? { host_ip: hostIp } : {}) };
  if (m[3] === undefined) return portsOf(tLow, tHigh).map((target) => ({ target, ...base }));
  const [pLow, pHigh] = range(m[3], where);
  if (pHigh - pLow !== tHigh - tLow) throw new ValidationError(where, `${JSON.stringify(spec)}: the host range and the container range differ in length (one port picked from a host range is not supported)`);
  return portsOf(tLow, tHigh).map((target, i) => ({ target, published: String(pLow + i), ...base }));
}

function range(text: string, where: string): [number, number] {
  const [low, high = low] = text.split('-').map(Number) as [number, number?];
  if (!(low >= 1 && high! <= 65535 && low <= high!)) throw new ValidationError(where, `${text} is not a port or port range in 1-65535`);
  return [low, high!];
}

function portsOf(low: number, high: number): number[] {
  return Array.from({ length: high - low + 1 }, (_, i) => low + i);
}

function toPorts(value: unknown, where: string): PortEntry[] {
  if (!Array.isArray(value)) throw new ValidationError(where, 'must be a list');
  return value.flatMap((item, i): PortEntry[] => {
    const at = `${where}[${i}]`;
    if (typeof item === 'string' || typeof item === 'number') return parseShortPort(String(item), at);
    if (!isMapping(item)) throw new ValidationError(at, 'must be a port string or a mapping { target, published, host_ip, protocol }');
    const target = Number(item.target);
    if (!Number.isInteger(target) || target < 1 || target > 65535) throw new ValidationError(`${at}.target`, 'must be a port number in 1-65535');
    const protocol = item.protocol ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp') throw new ValidationError(`${at}.protocol`, 'must be "tcp" or "udp"');
    if (item.mode !== undefined && item.mode !== 'host' && item.mode !== 'ingress') throw new ValidationError(`${at}.mode`, 'must be "host" or "ingress"');
    for (const key of Object.keys(item)) if (!['target', 'published', 'host_ip', 'protocol', 'mode', 'name', 'app_protocol'].includes(key)) throw new ValidationError(`${at}.${key}`, 'is not a port key');
    return [{ target, protocol, ...(item.published !== undefined ? { published: str(item.published, `${at}.published`) } : {}), ...(item.host_ip !== undefined ? { host_ip: str(item.host_ip, `${at}.host_ip`) } : {}) }];
  });
}

const VOLUME_MODES = new Set(['ro', 'rw', 'z', 'Z', 'nocopy', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave', 'cached', 'delegated', 'consistent']);

/** `'data:/var/lib/x:ro'`, `'./src:/app'`, `'/abs:/abs'`, `'~/d:/d'`, `'/anon'`. */
export function parseShortVolume(spec: string, where: string): VolumeEntry {
  const parts = spec.split(':');
  let modes: string[] = [];
  if (parts.length === 3 || (parts.length === 2 && !parts[1]!.startsWith('/'))) modes = parts.pop()!.split(',');
  if (parts.length > 2 || parts.some((p) => p === '')) throw new ValidationError(where, `${JSON.stringify(spec)} is not a volume ("name:/path[:ro]", "./dir:/path", "/path")`);
  for (const mode of modes) if (!VOLUME_MODES.has(mode)) throw new ValidationError(where, `${JSON.stringify(mode)} is not a volume mode (ro, rw, nocopy, a propagation)`);
  const readOnly = modes.includes('ro');
  const propagation = modes.find((m) => /private|shared|slave/.test(m));
  if (parts.length === 1) return { type: 'volume', target: parts[0]!, read_only: readOnly };
  const [source, target] = parts as [string, string];
  const isPath = source.startsWith('/') || source.startsWith('.') || source.startsWith('~');
  if (isPath) return { type: 'bind', source, target, read_only: readOnly, bind: { create_host_path: true, ...(propagation ? { propagation } : {}) } };
  return { type: 'volume', source, target, read_only: readOnly, ...(modes.includes('nocopy') ? { volume: { nocopy: true } } : {}) };
}

function toVolumes(value: unknown, where: string): VolumeEntry[] {
  if (!Array.isArray(value)) throw new ValidationError(where, 'must be a list');
  return value.map((item, i): VolumeEntry => {
    const at = `${where}[${i}]`;
    if (typeof item === 'string') return parseShortVolume(item, at);
    if (!isMapping(item)) throw new ValidationError(at, 'must be a volume string or a mapping { type, source, target, read_only }');
    const type = item.type;
    if (type !== 'volume' && type !== 'bind' && type !== 'tmpfs') throw new ValidationError(`${at}.type`, 'must be "volume", "bind" or "tmpfs" (npipe, cluster and image are not supported)');
    if (typeof item.target !== 'string' || !item.target.startsWith('/')) throw new ValidationError(`${at}.target`, 'must be an absolute path');
    for (const key of Object.keys(item)) if (!['type', 'source', 'target', 'read_only', 'bind', 'volume', 'tmpfs', 'consistency'].includes(key)) throw new ValidationError(`${at}.${key}`, 'is not a volume key');
    if (item.read_only !== undefined && typeof item.read_only !== 'boolean') throw new ValidationError(`${at}.read_only`, 'must be a boolean');
    const entry: VolumeEntry = { type, target: item.target, read_only: item.read_only === true };
    if (item.source !== undefined) entry.source = str(item.source, `${at}.source`);
    for (const key of ['bind', 'volume', 'tmpfs'] as const) {
      if (item[key] === undefined) continue;
      if (!isMapping(item[key])) throw new ValidationError(`${at}.${key}`, 'must be a mapping');
      (entry as unknown as Record<string, unknown>)[key] = item[key];
    }
    if (type === 'bind' && entry.source === undefined) throw new ValidationError(`${at}.source`, 'is required for a bind mount');
    return entry;
  });
}

function toEnvFiles(value: unknown, where: string): Array<{ path: string; required: boolean }> {
  return list(value, where).map((item, i) => {
    const at = `${where}[${i}]`;
    if (typeof item === 'string') return { path: item, required: true };
    if (!isMapping(item) || typeof item.path !== 'string') throw new ValidationError(at, 'must be a path or { path, required }');
    if (item.required !== undefined && typeof item.required !== 'boolean') throw new ValidationError(`${at}.required`, 'must be a boolean');
    return { path: item.path, required: item.required !== false };
  });
}

/** Keys whose single-string form is a one-item list. */
const LIST_KEYS = ['dns', 'cap_add', 'cap_drop', 'expose', 'profiles', 'security_opt', 'tmpfs', 'volumes_from'];

/**
 * A service definition with every key in its long form. `where` is `services.<name>`.
 * @throws ValidationError naming the key for a shape no syntax allows.
 */
export function canonicalService(raw: unknown, where: string): Record<string, unknown> {
  if (raw === null || raw === undefined) return {};
  if (!isMapping(raw)) throw new ValidationError(where, 'must be a mapping');
  // Keys tagged `!reset` stay marks; `!override`n ones are brought to the long form inside their mark.
  const marked = Object.entries(raw).filter(([, v]) => v === RESET || v instanceof Override);
  if (marked.length > 0) {
    const plain = canonicalService(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== RESET && !(v instanceof Override))), where);
    for (const [key, v] of marked) plain[key] = v === RESET ? RESET : new Override(canonicalService({ [key]: (v as Override).value }, where)[key]);
    return plain;
  }
  const s: Record<string, unknown> = { ...raw };
  const at = (key: string) => `${where}.${key}`;
  if (s.environment !== undefined) s.environment = toMapping(s.environment, at('environment'));
  if (s.labels !== undefined) s.labels = toMapping(s.labels, at('labels'));
  if (s.extra_hosts !== undefined) s.extra_hosts = toMapping(s.extra_hosts, at('extra_hosts'), ['=', ':']);
  if (s.depends_on !== undefined) s.depends_on = toDependsOn(s.depends_on, at('depends_on'));
  if (s.networks !== undefined) s.networks = toServiceNetworks(s.networks, at('networks'));
  if (s.ports !== undefined) s.ports = toPorts(s.ports, at('ports'));
  if (s.volumes !== undefined) s.volumes = toVolumes(s.volumes, at('volumes'));
  if (s.env_file !== undefined) s.env_file = toEnvFiles(s.env_file, at('env_file'));
  if (typeof s.build === 'string') s.build = { context: s.build };
  if (isMapping(s.build) && s.build.args !== undefined) s.build = { ...s.build, args: toMapping(s.build.args, `${at('build')}.args`) };
  for (const key of LIST_KEYS) if (s[key] !== undefined) s[key] = list(s[key], at(key)).map((v, i) => str(v, `${at(key)}[${i}]`));
  return s;
}
