/**
 * Volume names: Docker's rule for what a name may be, and the names of anonymous volumes.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../errors.js';

/**
 * Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. No leading dot, so berth's own `.new-*` and `.trash-*`
 * entries in the volumes directory can never collide with a volume.
 */
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** True when `name` is a valid volume name. */
export function isVolumeName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= 255 && NAME_RE.test(name);
}

/** Validates a volume name; the error says how to mount a host directory instead, as Docker's does. */
export function checkVolumeName(name: unknown, option = 'name'): string {
  if (isVolumeName(name)) return name;
  const hint = typeof name === 'string' && name.startsWith('/') ? ' (to mount a host directory, use { type: "bind", source })' : '';
  throw new ValidationError(option, `invalid volume name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters${hint}`);
}

/** A new anonymous volume's name: 64 hex digits, as Docker's. */
export function anonymousVolumeName(): string {
  return randomBytes(32).toString('hex');
}

/** The label Docker (23+) puts on anonymous volumes; `prune()` removes only these unless `all`. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';
