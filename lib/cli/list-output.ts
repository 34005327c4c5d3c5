/**
 * The listing verbs' shape (`ps`, `images`, `network ls`, `volume ls`): the JSON documents with
 * `--json`, one id a line with `-q`, else Docker's table. Each view is computed only when it is
 * the one printed (the JSON one may inspect every object).
 * @module
 */
import type { CliContext } from './command.js';
import { writeJson, writeTable } from './output.js';

export interface ListView {
  json(): unknown;
  ids(): readonly string[];
  headers: readonly string[];
  rows(): readonly (readonly string[])[] | Promise<readonly (readonly string[])[]>;
}

/** Prints the view `--json` and `-q` select; resolves with exit code 0. */
export async function writeList(ctx: CliContext, quiet: boolean, view: ListView): Promise<number> {
  if (ctx.json) writeJson(ctx.stdout, await view.json());
  else if (quiet) for (const id of view.ids()) ctx.stdout.write(`${id}\n`);
  else writeTable(ctx.stdout, view.headers, await view.rows());
  return 0;
}
