/**
 * The protocol between a kernel test and a program it runs in another process (as the rootless
 * test user, or in a mount namespace of its own): the program runs named cases and prints one
 * JSON line per case, `{ name, ok, result | error }`; the test parses the lines and asserts.
 * The program only reports, so that every assertion is made by the test runner, which sees the
 * host as root.
 * @module
 */
import assert from 'node:assert/strict';
import { isBerthError } from '../../lib/index.js';
import type { RootlessUser, RunAsOptions } from './rootless-user.js';

/** One case's report, as printed by {@link report}. */
export interface Case {
  name: string;
  ok: boolean;
  result?: any;
  error?: { name: string; code?: string; option?: string; message: string };
}

/** A program's cases, by name. */
export type Cases = Record<string, () => Promise<unknown>>;

/**
 * Runs `body` and prints its outcome as one line. A berth error keeps its `code` and `option`
 * (what the tests assert on); any other error only its name and message.
 */
export async function report(name: string, body: () => Promise<unknown>): Promise<void> {
  try {
    console.log(JSON.stringify({ name, ok: true, result: await body() }));
  } catch (error) {
    const e = error as Error & { code?: string; option?: string };
    console.log(JSON.stringify({ name, ok: false, error: { name: e.name, code: isBerthError(e) ? e.code : undefined, option: e.option, message: e.message } }));
  }
}

/** Reports each of `names` in turn; an unknown name is the caller's mistake and throws. */
export async function reportCases(all: Cases, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const body = all[name];
    if (!body) throw new Error(`unknown case ${name}`);
    await report(name, body);
  }
}

/** The reports in a program's stdout, by case name (lines that are not reports are skipped). */
export function parseCases(stdout: string): Map<string, Case> {
  return new Map(stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Case).map((c) => [c.name, c]));
}

/** The last report in a program's stdout (programs that run one case). */
export function lastCase(stdout: string): Case {
  return JSON.parse(stdout.trim().split('\n').pop()!) as Case;
}

/** The result of a case that must have succeeded; fails with its error otherwise. */
export function ok(c: Case | undefined): any {
  assert.ok(c, 'case did not report');
  assert.equal(c.ok, true, JSON.stringify(c.error));
  return c.result;
}

/** Runs the program `script args` as `user`, which must exit 0, and returns its reports. */
export async function runUserCases(user: RootlessUser, script: string, args: string[], options: RunAsOptions = {}): Promise<Map<string, Case>> {
  const r = await user.runNode(script, args, options);
  assert.equal(r.code, 0, `rootless child failed: ${r.stderr}`);
  return parseCases(r.stdout);
}

/** Runs the one-case program `script args` as `user`, which must exit 0, and returns its last report. */
export async function runUserCase(user: RootlessUser, script: string, args: string[], options: RunAsOptions = {}): Promise<Case> {
  const r = await user.runNode(script, args, options);
  assert.equal(r.code, 0, `rootless child ${args.join(' ')} failed: ${r.stderr}`);
  return lastCase(r.stdout);
}
