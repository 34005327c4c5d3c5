/**
 * The compose specification's rules for merging several files (each already in the long
 * form of `service-syntax.ts`), later files overriding earlier ones:
 *
 * - mappings merge key by key, recursively;
 * - `command`, `entrypoint` and `healthcheck.test` are replaced, not appended;
 * - `ports` are unique by host address, host port, container port and protocol; `volumes`
 *   are unique by target: a later entry replaces an earlier one with the same key;
 * - other lists are appended, without repeating an entry already there;
 * - scalars are replaced;
 * - a value tagged `!reset` removes the earlier one, `!override` replaces it whole.
 * @module
 */
import { isMapping } from './interpolate.js';
import { Override, RESET } from './yaml-tags.js';

/** Paths (from a service) whose value a later file replaces whole. */
const REPLACED = new Set(['command', 'entrypoint', 'healthcheck.test']);

/** Lists of entries that a key identifies; a later entry with the same key replaces the earlier one. */
const KEYED_LISTS: Record<string, (entry: unknown) => string> = {
  ports: (p) => {
    const e = p as { host_ip?: string; published?: string; target: number; protocol: string };
    return `${e.host_ip ?? ''}:${e.published ?? ''}:${e.target}/${e.protocol}`;
  },
  volumes: (v) => (v as { target: string }).target,
};

function mergeLists(base: unknown[], over: unknown[], keyOf?: (entry: unknown) => string): unknown[] {
  if (keyOf) {
    const replaced = new Set(over.map(keyOf));
    return [...base.filter((e) => !replaced.has(keyOf(e))), ...over];
  }
  const seen = new Set(base.map((e) => JSON.stringify(e)));
  return [...base, ...over.filter((e) => !seen.has(JSON.stringify(e)))];
}

function mergeValue(base: unknown, over: unknown, path: string): unknown {
  if (over === undefined) return base;
  // `!reset` drops what came before (stripMarks removes the mark after the last file);
  // `!override` replaces it whole.
  if (over === RESET || over instanceof Override) return over;
  if (base instanceof Override) base = base.value;
  if (REPLACED.has(path)) return over;
  if (isMapping(base) && isMapping(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = mergeValue(base[k], v, path === '' ? k : `${path}.${k}`);
    return out;
  }
  if (Array.isArray(base) && Array.isArray(over)) return mergeLists(base, over, KEYED_LISTS[path]);
  return over;
}

/** Merges one service definition over another. */
export function mergeService(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  return mergeValue(base, over, '') as Record<string, unknown>;
}

/**
 * Merges whole files (canonical services). Top-level `networks`, `volumes` and extension
 * keys merge as mappings; `name` is replaced.
 */
export function mergeFiles(files: readonly Record<string, unknown>[]): Record<string, unknown> {
  let out: Record<string, unknown> = {};
  for (const file of files) {
    const next: Record<string, unknown> = { ...out };
    for (const [key, value] of Object.entries(file)) {
      if (key === 'services' && isMapping(value)) {
        const services: Record<string, unknown> = { ...((out.services as Record<string, unknown>) ?? {}) };
        for (const [name, def] of Object.entries(value)) {
          const prev = services[name];
          services[name] = isMapping(prev) ? mergeService(prev, def as Record<string, unknown>) : def;
        }
        next.services = services;
      } else {
        next[key] = key === 'name' ? value : mergeValue(out[key], value, `#${key}`);
      }
    }
    out = next;
  }
  return out;
}
