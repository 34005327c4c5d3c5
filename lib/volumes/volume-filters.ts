/**
 * Docker's volume filters, for `list({ filters })` and `prune({ filters })`.
 *
 * - `name`: part of the name (Docker matches substrings);
 * - `label`: `key` (present) or `key=value`; several must all match;
 * - `label!`: `key` absent, or `key=value` not that value (prune);
 * - `dangling`: `true` for volumes no container or run uses, `false` for used ones;
 * - `driver`: `local`.
 *
 * Values are one string or several (any may match, except labels: all must).
 * @module
 */
import { ValidationError } from '../errors.js';

export interface VolumeFilters {
  name?: string | string[];
  label?: string | string[];
  'label!'?: string | string[];
  dangling?: boolean | 'true' | 'false' | '1' | '0';
  driver?: string | string[];
}

/** What a filter looks at. */
export interface FilterSubject {
  name: string;
  driver: string;
  labels: Record<string, string>;
  inUse: boolean;
}

export interface CompiledFilters {
  needsUsage: boolean;
  matches(v: FilterSubject): boolean;
}

function list(value: unknown, key: string): string[] {
  const arr = Array.isArray(value) ? value : [value];
  for (const v of arr) if (typeof v !== 'string') throw new ValidationError(`filters.${key}`, 'must be a string or an array of strings');
  return arr as string[];
}

function labelMatch(labels: Record<string, string>, spec: string): boolean {
  const eq = spec.indexOf('=');
  if (eq < 0) return Object.prototype.hasOwnProperty.call(labels, spec);
  const key = spec.slice(0, eq);
  return Object.prototype.hasOwnProperty.call(labels, key) && labels[key] === spec.slice(eq + 1);
}

/** Validates and compiles filters. `allowed` is the set of keys the operation accepts. */
export function compileVolumeFilters(filters: VolumeFilters | undefined, allowed: readonly string[]): CompiledFilters {
  if (filters === undefined) return { needsUsage: false, matches: () => true };
  if (typeof filters !== 'object' || filters === null || Array.isArray(filters)) throw new ValidationError('filters', 'must be an object such as { label: "env=prod", dangling: true }');
  for (const key of Object.keys(filters)) {
    if (!allowed.includes(key)) throw new ValidationError(`filters.${key}`, `unknown filter: use ${allowed.join(', ')}`);
  }
  const names = filters.name !== undefined ? list(filters.name, 'name') : undefined;
  const labels = filters.label !== undefined ? list(filters.label, 'label') : [];
  const notLabels = filters['label!'] !== undefined ? list(filters['label!'], 'label!') : [];
  const drivers = filters.driver !== undefined ? list(filters.driver, 'driver') : undefined;
  let dangling: boolean | undefined;
  if (filters.dangling !== undefined) {
    const d = filters.dangling;
    if (d === true || d === 'true' || d === '1') dangling = true;
    else if (d === false || d === 'false' || d === '0') dangling = false;
    else throw new ValidationError('filters.dangling', `must be true or false, got ${JSON.stringify(d)}`);
  }
  return {
    needsUsage: dangling !== undefined,
    matches: (v) =>
      (names === undefined || names.some((n) => v.name.includes(n))) &&
      (drivers === undefined || drivers.includes(v.driver)) &&
      labels.every((l) => labelMatch(v.labels, l)) &&
      notLabels.every((l) => !labelMatch(v.labels, l)) &&
      (dangling === undefined || dangling === !v.inUse),
  };
}
