/**
 * Container names: Docker's rule for what a name may be, and generated names when none is
 * given (an adjective and a noun, as Docker's `eager_turing`).
 * @module
 */
import { randomInt } from 'node:crypto';
import { ValidationError } from '../errors.js';

/** Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional leading `/`. */
const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Validates and strips a leading `/` (Docker stores names as `/name`). */
export function normalizeName(name: unknown, option = 'name'): string {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name.length > 255) {
    throw new ValidationError(option, `invalid container name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters`);
  }
  return name.startsWith('/') ? name.slice(1) : name;
}

const ADJECTIVES = [
  'amber', 'brave', 'calm', 'deft', 'eager', 'fond', 'gentle', 'hardy', 'keen', 'lucid', 'merry', 'nimble',
  'patient', 'quiet', 'rapid', 'steady', 'tidy', 'upbeat', 'vivid', 'witty', 'young', 'zesty',
];
const NOUNS = [
  'anchor', 'barge', 'buoy', 'cove', 'dinghy', 'dock', 'ferry', 'harbor', 'hull', 'jetty', 'keel', 'lagoon',
  'marina', 'mooring', 'pier', 'quay', 'rudder', 'schooner', 'skiff', 'tug', 'wharf', 'yawl',
];

/** A random `adjective_noun_NNNN` name; the caller retries on the (rare) collision. */
export function generateName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NOUNS[randomInt(NOUNS.length)]}_${randomInt(10_000).toString().padStart(4, '0')}`;
}
