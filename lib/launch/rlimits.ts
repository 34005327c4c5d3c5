/**
 * `ulimits`: Docker's names, checked against what this process may grant. Root without
 * CAP_SYS_RESOURCE (as on some CI hosts and inside containers) cannot raise a hard limit above
 * its own, so asking for it is a validation error rather than a failure deep in the child.
 * @module
 */
import { readFileSync } from 'node:fs';
import { ValidationError } from '../errors.js';
import type { Ulimit } from './run-options.js';

/** RLIMIT_* numbers on Linux (x86_64 and most architectures). */
export const RLIMITS: Readonly<Record<string, number>> = Object.freeze({
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7, memlock: 8, as: 9,
  locks: 10, sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
});

/** The names /proc/self/limits uses for each resource. */
const PROC_LIMIT_NAMES: Readonly<Record<string, string>> = Object.freeze({
  cpu: 'Max cpu time', fsize: 'Max file size', data: 'Max data size', stack: 'Max stack size',
  core: 'Max core file size', rss: 'Max resident set', nproc: 'Max processes', nofile: 'Max open files',
  memlock: 'Max locked memory', as: 'Max address space', locks: 'Max file locks',
  sigpending: 'Max pending signals', msgqueue: 'Max msgqueue size', nice: 'Max nice priority',
  rtprio: 'Max realtime priority', rttime: 'Max realtime timeout',
});

const UNLIMITED = 2n ** 64n - 1n;

/** This process's hard limits, from /proc/self/limits (`undefined` = unlimited). */
export function currentHardLimits(text = readFileSync('/proc/self/limits', 'utf8')): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [name, label] of Object.entries(PROC_LIMIT_NAMES)) {
    const line = text.split('\n').find((l) => l.startsWith(label));
    if (!line) continue;
    const fields = line.slice(label.length).trim().split(/\s+/);
    const hard = fields[1];
    out.set(name, hard === undefined || hard === 'unlimited' ? UNLIMITED : BigInt(hard));
  }
  return out;
}

let canRaiseHard: boolean | undefined;

/** Whether this process holds CAP_SYS_RESOURCE (bit 24) in its effective set. */
export function hasSysResource(status = readFileSync('/proc/self/status', 'utf8')): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? ((BigInt(`0x${m[1]}`) >> 24n) & 1n) === 1n : false;
}

function toBig(value: number, option: string): bigint {
  if (value === -1) return UNLIMITED;
  if (!Number.isSafeInteger(value) || value < 0) throw new ValidationError(option, 'must be a non-negative integer or -1 (unlimited)');
  return BigInt(value);
}

function normalize(ulimits: NonNullable<import('./run-options.js').RunOptions['ulimits']>): Ulimit[] {
  if (Array.isArray(ulimits)) return ulimits;
  if (typeof ulimits !== 'object' || ulimits === null) throw new ValidationError('ulimits', 'must be a list or an object');
  return Object.entries(ulimits).map(([name, v]) =>
    typeof v === 'number' ? { name, soft: v, hard: v } : { name, soft: v?.soft, hard: v?.hard } as Ulimit,
  );
}

/**
 * Resolves `ulimits` into rlimit entries for the launcher.
 * @throws ValidationError for unknown names, soft > hard, or a hard limit above this process's
 *   own when it lacks CAP_SYS_RESOURCE.
 */
export function resolveRlimits(
  ulimits: import('./run-options.js').RunOptions['ulimits'],
  facts: { hard?: Map<string, bigint>; privileged?: boolean } = {},
): Array<{ resource: number; soft: bigint; hard: bigint }> {
  if (ulimits === undefined) return [];
  const list = normalize(ulimits);
  if (list.length === 0) return [];
  canRaiseHard ??= hasSysResource();
  const mayRaise = facts.privileged ?? canRaiseHard;
  const hardNow = facts.hard ?? currentHardLimits();
  return list.map((u, i) => {
    const at = Array.isArray(ulimits) ? `ulimits[${i}]` : `ulimits.${u.name}`;
    const name = String(u.name ?? '').toLowerCase().replace(/^rlimit_/, '');
    const resource = RLIMITS[name];
    if (resource === undefined) throw new ValidationError(`${at}.name`, `unknown ulimit "${u.name}" (known: ${Object.keys(RLIMITS).join(', ')})`);
    const soft = toBig(u.soft, `${at}.soft`);
    const hard = toBig(u.hard, `${at}.hard`);
    if (soft > hard) throw new ValidationError(at, `soft limit ${u.soft} is above hard limit ${u.hard}`);
    const max = hardNow.get(name);
    if (!mayRaise && max !== undefined && hard > max) {
      throw new ValidationError(
        `${at}.hard`,
        `${u.hard} is above this process's own hard limit ${max === UNLIMITED ? 'unlimited' : max}; raising a hard ` +
          'limit needs CAP_SYS_RESOURCE, which this process does not have',
      );
    }
    return { resource, soft, hard };
  });
}
