/**
 * Project names as Docker Compose v2 chooses them: the `projectName` option, else
 * `COMPOSE_PROJECT_NAME`, else the files' top-level `name`, else the project directory's base
 * name, normalised (lower case, only `a-z 0-9 _ -`, starting with a letter or digit). An
 * explicit name that is not already normal is an error, as compose's `-p` is.
 * @module
 */
import { basename } from 'node:path';
import { ValidationError } from '../errors.js';

const VALID = /^[a-z0-9][a-z0-9_-]*$/;

/** Compose's normalisation of a directory name. */
export function normalizeProjectName(raw: string): string {
  return raw.toLowerCase().replace(/[^a-z0-9_-]/g, '').replace(/^[^a-z0-9]+/, '');
}

/**
 * @throws ValidationError naming `option` when an explicit name is invalid, or when no name
 *   can be made from the directory.
 */
export function chooseProjectName(sources: { option?: string | undefined; env?: string | undefined; file?: unknown; projectDir: string }): string {
  const explicit: Array<[string, unknown]> = [
    ['projectName', sources.option],
    ['COMPOSE_PROJECT_NAME', sources.env],
    ['name', sources.file],
  ];
  for (const [option, value] of explicit) {
    if (value === undefined || value === '') continue;
    if (typeof value !== 'string' || !VALID.test(value)) throw new ValidationError(option, `${JSON.stringify(value)} is not a project name: lower-case letters, digits, "_" and "-", starting with a letter or digit`);
    return value;
  }
  const fromDir = normalizeProjectName(basename(sources.projectDir));
  if (fromDir === '') throw new ValidationError('projectName', `the project directory ${sources.projectDir} gives no usable name: pass projectName`);
  return fromDir;
}
