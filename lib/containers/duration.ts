/**
 * Duration options as users write them: milliseconds as numbers (Node's convention) or Go
 * duration strings (`'1m30s'`, `'500ms'`, Docker's healthcheck syntax). Points in time
 * (`since`/`until`) are `parseTimePoint` in `lib/units.ts`.
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
