/**
 * `extends`: a service starts from another service's definition, of the same file or of
 * `file:` (relative to the extending file), and merges its own keys over it with the same
 * rules as several files (`merge.ts`). Resolved per file, on the long forms, before the files
 * are merged. Relative host paths of a service taken from another file (build context,
 * env files, bind sources, a seccomp profile) are made absolute against that file's directory,
 * as compose does, so they do not silently move to the project directory.
 * @module
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { ValidationError } from '../errors.js';
import { isMapping } from './interpolate.js';
import { mergeService } from './merge.js';
import type { VolumeEntry } from './service-syntax.js';

/** The canonical services of one compose file, and where the file is. */
export interface FileServices {
  file: string;
  services: Record<string, Record<string, unknown>>;
}

/** Reads another compose file's canonical services (interpolated with the project's variables). */
export type ReadServices = (file: string) => Promise<FileServices>;

/** At most this many `extends` in a chain: deeper is a mistake, not a design. */
const MAX_DEPTH = 32;

function relativeTo(dir: string, path: string): string {
  return isAbsolute(path) || path === '~' || path.startsWith('~/') ? path : resolve(dir, path);
}

/** The service with its relative host paths made absolute against `dir`. */
export function rebase(s: Record<string, unknown>, dir: string): Record<string, unknown> {
  const out = { ...s };
  if (isMapping(out.build) && typeof out.build.context === 'string' && !/^[a-z]+:\/\//.test(out.build.context)) out.build = { ...out.build, context: relativeTo(dir, out.build.context) };
  else if (isMapping(out.build) && out.build.context === undefined) out.build = { ...out.build, context: dir };
  if (Array.isArray(out.env_file)) out.env_file = (out.env_file as Array<{ path: string }>).map((f) => ({ ...f, path: relativeTo(dir, f.path) }));
  if (Array.isArray(out.volumes)) out.volumes = (out.volumes as VolumeEntry[]).map((v) => (v.type === 'bind' && v.source !== undefined ? { ...v, source: relativeTo(dir, v.source) } : v));
  if (Array.isArray(out.security_opt)) out.security_opt = (out.security_opt as string[]).map((o) => o.replace(/^seccomp([=:])(?!unconfined$)(.+)$/s, (_, sep: string, p: string) => `seccomp${sep}${relativeTo(dir, p)}`));
  return out;
}

function extendsOf(raw: unknown, where: string): { service: string; file?: string } {
  if (typeof raw === 'string') return { service: raw };
  if (!isMapping(raw)) throw new ValidationError(where, 'must be a service name or { service, file }');
  for (const key of Object.keys(raw)) if (key !== 'service' && key !== 'file') throw new ValidationError(`${where}.${key}`, 'is not an extends key (service, file)');
  if (typeof raw.service !== 'string' || raw.service === '') throw new ValidationError(`${where}.service`, 'must be a service name');
  if (raw.file !== undefined && (typeof raw.file !== 'string' || raw.file === '')) throw new ValidationError(`${where}.file`, 'must be a path');
  return { service: raw.service, ...(raw.file !== undefined ? { file: raw.file as string } : {}) };
}

/**
 * Every service of `own` with its `extends` chain applied (and `extends` removed).
 * @throws ValidationError naming `services.<name>.extends` for a missing service or file, a
 *   cycle, or a chain deeper than 32.
 */
export async function applyExtends(own: FileServices, read: ReadServices): Promise<Record<string, Record<string, unknown>>> {
  const files = new Map<string, FileServices>([[own.file, own]]);
  const done = new Map<string, Record<string, unknown>>();
  const resolveOne = async (at: FileServices, name: string, chain: string[]): Promise<Record<string, unknown>> => {
    const id = `${at.file}#${name}`;
    const cached = done.get(id);
    if (cached) return cached;
    if (chain.includes(id)) throw new ValidationError(`services.${name}.extends`, `extends cycle: ${[...chain, id].join(' -> ')}`);
    if (chain.length >= MAX_DEPTH) throw new ValidationError(`services.${name}.extends`, `more than ${MAX_DEPTH} services in an extends chain`);
    const def = at.services[name];
    if (def === undefined) {
      const by = chain.at(-1)?.split('#').at(-1) ?? name;
      throw new ValidationError(`services.${by}.extends`, `no service ${name} in ${at.file}`, { path: at.file });
    }
    let result = def;
    if (def.extends !== undefined) {
      const where = `services.${name}.extends`;
      const ext = extendsOf(def.extends, where);
      let from = at;
      if (ext.file !== undefined) {
        const path = resolve(dirname(at.file), ext.file);
        from = files.get(path) ?? (await read(path));
        files.set(path, from);
      }
      const base = await resolveOne(from, ext.service, [...chain, id]);
      const { extends: _, ...rest } = def;
      result = mergeService(from === at ? base : rebase(base, dirname(from.file)), rest);
    }
    done.set(id, result);
    return result;
  };
  const out: Record<string, Record<string, unknown>> = {};
  for (const name of Object.keys(own.services)) out[name] = await resolveOne(own, name, []);
  return out;
}
