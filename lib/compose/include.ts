/**
 * Top-level `include`: other compose files whose services, networks and volumes join the
 * project, each included file loaded on its own (its `extends` and its own `include`s
 * applied, its relative host paths against its own directory or `project_directory`), then
 * added; a name the including file also defines is an error, as in compose.
 * @module
 */
import { dirname, resolve } from 'node:path';
import { UnsupportedError, ValidationError } from '../errors.js';
import { rebase } from './extends.js';
import { isMapping } from './interpolate.js';
import { mergeFiles } from './merge.js';

/** Loads one file into its model (canonical services, extends and includes applied); `chain` is for cycles. */
export type LoadModel = (file: string, chain: string[]) => Promise<Record<string, unknown>>;

interface IncludeEntry {
  paths: string[];
  projectDirectory?: string;
}

function entryOf(raw: unknown, where: string): IncludeEntry {
  if (typeof raw === 'string' && raw !== '') return { paths: [raw] };
  if (!isMapping(raw)) throw new ValidationError(where, 'must be a path or { path, project_directory }');
  for (const key of Object.keys(raw)) {
    if (key === 'env_file') throw new UnsupportedError(`${where}.env_file: is not supported (the project's variables interpolate included files)`, { option: `${where}.env_file` });
    if (key !== 'path' && key !== 'project_directory') throw new ValidationError(`${where}.${key}`, 'is not an include key (path, project_directory)');
  }
  const paths = typeof raw.path === 'string' ? [raw.path] : raw.path;
  if (!Array.isArray(paths) || paths.length === 0 || paths.some((p) => typeof p !== 'string' || p === '')) throw new ValidationError(`${where}.path`, 'must be a path or a list of paths');
  if (raw.project_directory !== undefined && (typeof raw.project_directory !== 'string' || raw.project_directory === '')) throw new ValidationError(`${where}.project_directory`, 'must be a path');
  return { paths: paths as string[], ...(raw.project_directory !== undefined ? { projectDirectory: raw.project_directory as string } : {}) };
}

/**
 * `model` (of `file`) with its `include` list loaded and added, and `include` removed.
 * @throws ValidationError naming `include[i]` for a bad entry, a cycle, or a service, network
 *   or volume the file defines too.
 */
export async function applyIncludes(model: Record<string, unknown>, file: string, chain: string[], load: LoadModel): Promise<Record<string, unknown>> {
  const { include, ...rest } = model;
  if (include === undefined) return model;
  if (!Array.isArray(include)) throw new ValidationError('include', 'must be a list');
  const out: Record<string, unknown> = { ...rest };
  for (const [i, raw] of include.entries()) {
    const where = `include[${i}]`;
    const entry = entryOf(raw, where);
    const files = entry.paths.map((p) => resolve(dirname(file), p));
    for (const f of files) if (f === file || chain.includes(f)) throw new ValidationError(where, `include cycle: ${[...chain, file, f].join(' -> ')}`, { path: f });
    const dir = entry.projectDirectory !== undefined ? resolve(dirname(file), entry.projectDirectory) : dirname(files[0]!);
    const sub = mergeFiles(await Promise.all(files.map((f) => load(f, [...chain, file]))));
    for (const section of ['services', 'networks', 'volumes'] as const) {
      const theirs = (sub[section] as Record<string, Record<string, unknown>> | undefined) ?? {};
      const ours = { ...((out[section] as Record<string, unknown> | undefined) ?? {}) };
      for (const [name, def] of Object.entries(theirs)) {
        if (name in ours) throw new ValidationError(where, `${section}.${name} is defined both in ${file} and in the included ${files.join(', ')}`, { path: files[0]! });
        ours[name] = section === 'services' ? rebase(def, dir) : def;
      }
      if (Object.keys(ours).length > 0) out[section] = ours;
    }
  }
  return out;
}
