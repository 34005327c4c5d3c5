/**
 * The removal verbs' shape (`rm`, `stop`, `rmi`, `network rm`, `volume rm`): act on each named
 * object in turn; as Docker's CLI, print what succeeded as it goes, report each failure on
 * stderr without stopping, and exit 1 if any failed. With `--json`, one array at the end.
 * @module
 */
import type { CliContext } from './command.js';
import { writeJson } from './output.js';

/** How one success prints; default: the reference as given, and the reference in the JSON array. */
export interface EachRefOutput<R> {
  /** The text printed for it (with its newlines). */
  text?(ref: string, result: R): string;
  /** The entries it adds to the JSON array. */
  json?(ref: string, result: R): unknown[];
}

/** Runs `action` on each of `refs`; resolves with the exit code (1 if any failed). */
export async function forEachRef<R>(ctx: CliContext, refs: readonly string[], action: (ref: string) => Promise<R>, output: EachRefOutput<R> = {}): Promise<number> {
  const done: unknown[] = [];
  let failed = false;
  for (const ref of refs) {
    try {
      const result = await action(ref);
      if (ctx.json) done.push(...(output.json ? output.json(ref, result) : [ref]));
      else ctx.stdout.write(output.text ? output.text(ref, result) : `${ref}\n`);
    } catch (error) {
      failed = true;
      ctx.stderr.write(`Error: ${(error as Error).message}\n`);
    }
  }
  if (ctx.json) writeJson(ctx.stdout, done);
  return failed ? 1 : 0;
}
