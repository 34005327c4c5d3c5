/**
 * Docker's image filters (`docker images --filter`, `docker image prune --filter`), parsed
 * once into predicates: `reference` (glob on the familiar `name:tag`), `dangling`, `label`,
 * `before`/`since` (another image), `until` (a time), `id`.
 *
 * Docker's combination rule: values of one filter are alternatives (any may match), different
 * filters must all match; `label` is the exception — every label given must match.
 * @module
 */
import { ValidationError } from '../errors.js';
import { familiarName, parseReference } from './reference.js';

/** A filter's value: one string, several, or (for `dangling`) a boolean. */
export type FilterValue = string | number | boolean | Date | ReadonlyArray<string>;

/**
 * Filters of `rt.images.list()`. Also accepted in Docker's API form, `{ name: [values] }`.
 */
export interface ImageListFilters {
  /** Glob(s) on `name:tag` or `name` in familiar form, e.g. `busybox`, `127.0.0.1:5000/*:1`, `*:latest`. `*` does not match `/`. */
  reference?: string | readonly string[];
  /** `true`: only images without a tag; `false`: only images with one. */
  dangling?: boolean | 'true' | 'false';
  /** `key` (present) or `key=value`; every one given must match. */
  label?: string | readonly string[];
  /** Images created before this image (a reference or id). */
  before?: string;
  /** Images created after this image (a reference or id). */
  since?: string;
  /** Images created before this time: a `Date`, Unix seconds, an RFC 3339 date, or a duration back from now (`24h`, `90m`). */
  until?: string | number | Date;
  /** Image ids or id prefixes (`sha256:` optional). */
  id?: string | readonly string[];
}

/** Filters of `rt.images.prune()`. */
export interface ImagePruneFilters {
  /** `true` (default): only untagged images; `false`: every image no container uses. */
  dangling?: boolean | 'true' | 'false';
  /** Only images created before this time (as {@link ImageListFilters.until}). */
  until?: string | number | Date;
  /** `key`, `key=value`; `!key` / `!key=value` (Docker's `label!=`) for images without it. */
  label?: string | readonly string[];
}

/** Filters normalised to Docker's wire form: name -> values. */
export type FilterMap = Map<string, string[]>;

/** Validates filter names and values; returns name -> values. */
export function normaliseFilters(filters: unknown, allowed: readonly string[], option = 'filters'): FilterMap {
  const out: FilterMap = new Map();
  if (filters === undefined || filters === null) return out;
  if (typeof filters !== 'object' || Array.isArray(filters)) throw new ValidationError(option, 'must be an object mapping filter names to values');
  for (const [name, raw] of Object.entries(filters as Record<string, unknown>)) {
    if (raw === undefined) continue;
    if (!allowed.includes(name)) throw new ValidationError(`${option}.${name}`, `unknown filter (known: ${allowed.join(', ')})`);
    const values = Array.isArray(raw) ? raw : [raw];
    const strings = values.map((v, i) => {
      if (typeof v === 'string') return v;
      if (typeof v === 'boolean' || typeof v === 'number') return String(v);
      if (v instanceof Date) return v.toISOString();
      throw new ValidationError(`${option}.${name}${Array.isArray(raw) ? `[${i}]` : ''}`, 'must be a string');
    });
    if (strings.length > 0) out.set(name, strings);
  }
  return out;
}

/** The value of a filter that takes at most one (`before`, `since`, `until`, `dangling`). */
export function single(filters: FilterMap, name: string, option = 'filters'): string | undefined {
  const v = filters.get(name);
  if (v === undefined) return undefined;
  if (v.length > 1) throw new ValidationError(`${option}.${name}`, 'takes a single value');
  return v[0];
}

/** `dangling`'s value as a boolean. */
export function danglingFilter(filters: FilterMap, option = 'filters'): boolean | undefined {
  const v = single(filters, 'dangling', option);
  if (v === undefined) return undefined;
  const lower = v.toLowerCase();
  if (lower === 'true' || lower === '1') return true;
  if (lower === 'false' || lower === '0') return false;
  throw new ValidationError(`${option}.dangling`, `must be true or false, got ${JSON.stringify(v)}`);
}

/**
 * Go's `path.Match`, which Docker uses for `reference`: `*` is any run of characters other than
 * `/`, `?` one such character, `[a-z]`/`[^…]` a class, `\` escapes.
 * @throws ValidationError for a malformed pattern
 */
export function globToRegExp(pattern: string, option = 'filters.reference'): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '\\') {
      i++;
      if (i >= pattern.length) throw new ValidationError(option, `pattern ${JSON.stringify(pattern)} ends with a lone backslash`);
      re += escapeRe(pattern[i]!);
    } else if (c === '[') {
      // Exactly Go's rules: a range is lo or lo-hi with hi >= lo; '-' and ']' must be escaped
      // to be members; a class may match '/'; anything else is a malformed pattern.
      const bad = () => new ValidationError(option, `pattern ${JSON.stringify(pattern)} has a malformed [class]`);
      let j = i + 1;
      const getEsc = (): string => {
        let ch = pattern[j];
        if (ch === undefined || ch === '-' || ch === ']') throw bad();
        if (ch === '\\') {
          j++;
          ch = pattern[j];
          if (ch === undefined) throw bad();
        }
        const cp = String.fromCodePoint(pattern.codePointAt(j)!);
        j += cp.length;
        if (j >= pattern.length) throw bad();
        return cp;
      };
      if (j >= pattern.length) throw bad();
      const negated = pattern[j] === '^';
      if (negated) j++;
      let cls = '';
      for (let ranges = 0; ; ranges++) {
        if (pattern[j] === ']' && ranges > 0) {
          j++;
          break;
        }
        const lo = getEsc();
        let hi = lo;
        if (pattern[j] === '-') {
          j++;
          hi = getEsc();
        }
        if (hi.codePointAt(0)! < lo.codePointAt(0)!) throw bad();
        cls += hi === lo ? escapeClass(lo) : `${escapeClass(lo)}-${escapeClass(hi)}`;
      }
      re += negated ? `[^${cls}]` : `[${cls}]`;
      i = j - 1;
    } else {
      re += escapeRe(c);
    }
  }
  return new RegExp(`${re}$`, 'u');
}

function escapeRe(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

function escapeClass(c: string): string {
  return /[\\\]^-]/.test(c) ? `\\${c}` : c;
}

/**
 * Docker's `FamiliarMatch`: the pattern against `name:tag` (or `name@digest`) in familiar form,
 * then against the familiar name alone.
 */
export function referenceMatches(pattern: RegExp, canonicalRefs: readonly string[]): boolean {
  for (const ref of canonicalRefs) {
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch {
      continue;
    }
    const full = familiarName(parsed);
    const nameOnly = familiarName({ ...parsed, tag: undefined, digest: undefined } as typeof parsed);
    if (pattern.test(full) || pattern.test(nameOnly)) return true;
  }
  return false;
}

/** `key` (present), `key=value`; a leading `!` negates (Docker's `label!=`). */
export function labelMatches(labels: Readonly<Record<string, string>> | undefined, filter: string): boolean {
  const negate = filter.startsWith('!');
  const f = negate ? filter.slice(1) : filter;
  const eq = f.indexOf('=');
  const key = eq === -1 ? f : f.slice(0, eq);
  const has = labels !== undefined && Object.hasOwn(labels, key) && (eq === -1 || labels[key] === f.slice(eq + 1));
  return negate ? !has : has;
}

