/**
 * What a verb is: its name (`ps`, or `volume ls` for a verb of an object), its usage line, its
 * option table and the function that runs it. The CLI is the table of these in `verbs.ts`; a
 * new verb is one more module exporting `Command`s, added there.
 * @module
 */
import type { Readable, Writable } from 'node:stream';
import type { Runtime } from '../index.js';
import type { OptionTable, Parsed } from './args.js';

/** What a verb runs with: the streams, the global options and the runtime, opened on first use. */
export interface CliContext {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: Writable;
  /** `--json`: print JSON documents instead of tables and text. */
  json: boolean;
  /** The runtime of `--root` (default: the library's default state directory). */
  runtime(): Promise<Runtime>;
}

export interface Command {
  /** `ps`, `volume ls`. */
  name: string;
  /** Other names for the same verb (`container ls` for `ps`). */
  aliases?: string[];
  /** The arguments after the verb, as the help prints them. */
  usage: string;
  /** One line for `berth --help`. */
  summary: string;
  options: OptionTable;
  /** Positionals before a command line that belongs to the container (`run IMAGE CMD…`: 1). */
  commandAfter?: number;
  /** Fewest positionals (the command line not counted). */
  minArgs?: number;
  /** Most positionals; default: no limit. */
  maxArgs?: number;
  /**
   * Runs the verb; resolves with the exit code. Errors thrown are reported by the CLI:
   * exit 125 for `run`/`create`-like verbs (`failureExitCode`), 1 for the others, as Docker.
   */
  run(ctx: CliContext, args: Parsed): Promise<number>;
  /** Exit code of a berth error thrown by this verb. Default 1; `run` uses Docker's 125. */
  failureExitCode?: number;
}

/** The value of a string option, or undefined. */
export function stringOption(args: Parsed, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The values of a repeatable string option (`-e A=1 -e B=2`). */
export function listOption(args: Parsed, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];
}

/** Whether a boolean flag was given. */
export function flag(args: Parsed, name: string): boolean {
  return args.values[name] === true;
}

/**
 * The string options among `names` that were given, as an object to spread into library
 * options: an absent one has no key at all (the library's options do not take `undefined`).
 */
export function givenStrings<K extends string>(args: Parsed, names: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const name of names) {
    const v = stringOption(args, name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}
