/**
 * Variable interpolation of the compose specification, on values only (never keys):
 * `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
 * `${VAR:+replacement}`, `${VAR+replacement}`, and `$$` for a literal `$`. Defaults and
 * replacements may themselves hold interpolations (`${A:-${B}}`).
 * @module
 */
import { ValidationError } from '../errors.js';
import { Override } from './yaml-tags.js';

/** Looks a variable up; `undefined` when it is unset. */
export type Lookup = (name: string) => string | undefined;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/**
 * Interpolates one string. `where` is the dotted path of the value, for errors.
 * @throws ValidationError naming `where` for a malformed `${…}` or a required variable that is
 *   unset (`?`) or empty (`:?`), with the file's message.
 */
export function interpolateString(text: string, lookup: Lookup, where: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const close = matchingBrace(text, i + 1);
      if (close < 0) throw new ValidationError(where, `invalid interpolation format: unclosed "\${" in ${JSON.stringify(text)}`);
      out += expandBraced(text.slice(i + 2, close), lookup, where, text);
      i = close + 1;
    } else if (next !== undefined && NAME_START.test(next)) {
      let end = i + 1;
      while (end < text.length && NAME_CHAR.test(text[end]!)) end++;
      out += lookup(text.slice(i + 1, end)) ?? '';
      i = end;
    } else {
      // A lone `$` (end of string, `$ `, `$1`) stays as written, as compose does.
      out += '$';
      i++;
    }
  }
  return out;
}

/** Index of the `}` closing the `{` at `open`, counting nested `${…}`; -1 if none. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '$' && text[i + 1] === '$') {
      i++;
    } else if (text[i] === '$' && text[i + 1] === '{') {
      depth++;
      i++;
    } else if (text[i] === '{' && i === open) {
      depth++;
    } else if (text[i] === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function expandBraced(body: string, lookup: Lookup, where: string, whole: string): string {
  let end = 0;
  while (end < body.length && NAME_CHAR.test(body[end]!)) end++;
  const name = body.slice(0, end);
  if (name === '' || !NAME_START.test(name[0]!)) throw new ValidationError(where, `invalid interpolation format: ${JSON.stringify(whole)} (a variable name starts with a letter or "_")`);
  const rest = body.slice(end);
  const value = lookup(name);
  if (rest === '') return value ?? '';
  const colon = rest.startsWith(':');
  const op = colon ? rest[1] : rest[0];
  const arg = rest.slice(colon ? 2 : 1);
  // With ':' an empty value counts as unset.
  const unset = value === undefined || (colon && value === '');
  const nested = () => interpolateString(arg, lookup, where);
  switch (op) {
    case '-':
      return unset ? nested() : value!;
    case '+':
      return unset ? '' : nested();
    case '?':
      if (unset) {
        const message = nested();
        throw new ValidationError(where, `required variable ${name} is ${value === undefined ? 'missing' : 'empty'}${message ? `: ${message}` : ''}`);
      }
      return value!;
    default:
      throw new ValidationError(where, `invalid interpolation format: ${JSON.stringify(whole)} (after the name: ":-", "-", ":?", "?", ":+" or "+")`);
  }
}

/**
 * Interpolates every string value of a parsed YAML tree (keys are left alone), returning a new
 * tree. `path` names the root, e.g. the file.
 */
export function interpolateTree(value: unknown, lookup: Lookup, path: string): unknown {
  if (typeof value === 'string') return interpolateString(value, lookup, path);
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, lookup, `${path}[${i}]`));
  if (value instanceof Override) return new Override(interpolateTree(value.value, lookup, path));
  if (isMapping(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateTree(v, lookup, path === '' ? k : `${path}.${k}`);
    return out;
  }
  return value;
}

/** A plain YAML mapping (not null, not a list). */
export function isMapping(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  // Plain objects only: an `!override` mark (a class instance) is not a mapping to merge into.
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
