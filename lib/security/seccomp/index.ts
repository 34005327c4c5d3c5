/**
 * Seccomp for berth containers: Docker-compatible profiles compiled to classic BPF in
 * TypeScript. See `docs/design/seccomp.md`.
 * @module
 */
import { ValidationError } from '../../errors.js';
import { compileSeccomp, normalizeCap } from './compile.js';
import { DEFAULT_SECCOMP_PROFILE } from './default-profile.js';
import type { SeccompProfile } from './types.js';

export type {
  SeccompAction,
  SeccompArchMap,
  SeccompArg,
  SeccompFilter,
  SeccompOperator,
  SeccompProfile,
  SeccompRule,
} from './types.js';
export { compileSeccomp, validateSeccompProfile, type CompileSeccompOptions } from './compile.js';
export { DEFAULT_SECCOMP_PROFILE } from './default-profile.js';

/** What a container's `seccomp` option accepts. */
export type SeccompSetting = SeccompProfile | 'default' | 'unconfined';

// Per profile object, per capability set. A WeakMap so a caller's one-off profiles are not kept
// alive by the cache.
const programs = new WeakMap<object, Map<string, Buffer>>();

function capsKey(capabilities: Iterable<string>): string {
  return [...new Set([...capabilities].map(normalizeCap))].sort().join(',');
}

/**
 * The BPF program for a container's seccomp setting and effective capabilities, or `null` for
 * `'unconfined'`. Compiles once per (profile object, capability set) and returns a fresh copy
 * of the cached bytes each time, so callers may keep or modify it.
 *
 * Profiles are cached by identity: mutating a profile object after passing it here is not
 * noticed. Pass a new object instead.
 *
 * @throws {ValidationError} `seccomp` if the setting is unknown, `seccomp.…` if the profile is malformed.
 */
export function seccompProgramFor(setting: SeccompSetting, capabilities: Iterable<string>): Buffer | null {
  if (setting === 'unconfined') return null;
  const profile = setting === 'default' ? DEFAULT_SECCOMP_PROFILE : setting;
  if (typeof profile !== 'object' || profile === null) {
    throw new ValidationError('seccomp', `must be "default", "unconfined" or a profile object, got ${JSON.stringify(setting)}`);
  }
  const key = capsKey(capabilities);
  let byCaps = programs.get(profile);
  if (!byCaps) programs.set(profile, (byCaps = new Map()));
  let program = byCaps.get(key);
  if (!program) {
    program = compileSeccomp(profile, { capabilities: key === '' ? [] : key.split(',') });
    byCaps.set(key, program);
  }
  return Buffer.from(program);
}
