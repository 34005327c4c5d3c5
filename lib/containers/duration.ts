/**
 * Durations and points in time as users write them: milliseconds as numbers (Node's
 * convention) or Go duration strings (`'1m30s'`, `'500ms'`, Docker's healthcheck syntax), and
 * `since`/`until` as Dates, RFC 3339 strings, Unix seconds (Docker's API) or a duration
 * before now (`'10m'`, as `docker logs --since 10m`).
 * @module
 */
import { ValidationError } from '../errors.js';
import { parseGoDuration } from '../units.js';

/** A duration option: a non-negative number of milliseconds or a Go duration string. */
export function parseDuration(value: unknown, option: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else if (typeof value === 'string') {
    const ms = parseGoDuration(value);
    if (ms !== undefined) return ms;
  }
  throw new ValidationError(option, `must be milliseconds (a number) or a duration such as "30s" or "1m30s", got ${JSON.stringify(value)}`);
}

/** A point in time: Date, RFC 3339, Unix seconds (number or numeric string), or a duration before `now`. */
export function parseTimePoint(value: unknown, option: string, now = Date.now()): number {
  if (value instanceof Date && Number.isFinite(value.getTime())) return value.getTime();
  if (typeof value === 'number' && Number.isFinite(value)) return value * 1000;
  if (typeof value === 'string') {
    if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
    const ago = parseGoDuration(value);
    if (ago !== undefined) return now - ago;
    const t = Date.parse(value);
    if (Number.isFinite(t)) return t;
  }
  throw new ValidationError(option, `must be a Date, an RFC 3339 time, Unix seconds or a duration such as "10m", got ${JSON.stringify(value)}`);
}
