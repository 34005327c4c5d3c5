/**
 * Argument parsing over Node's `util.parseArgs` (docs/design/decisions.md says why it is
 * enough): one option table per verb plus the global ones, and Docker's rule that a command
 * line after `IMAGE` (run) or `CONTAINER` (exec) belongs to the command, not to berth.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type OptionTable = NonNullable<ParseArgsConfig['options']>;

/** Options every verb accepts. */
export const GLOBAL_OPTIONS: OptionTable = {
  root: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/** A wrong invocation: the CLI prints it with the verb's usage and exits 125, as Docker does. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  /** The command line after the leading positionals, when the verb takes one (`run`, `exec`). */
  rest: string[];
}

/**
 * Index where a verb's own arguments end when the command line starts after `leading`
 * positionals: options are read until that many positionals were seen, and everything after
 * the last of them is the command's, dashes included (`berth run IMAGE ls -la`).
 */
function commandLineStart(args: readonly string[], table: OptionTable, leading: number): number {
  let seen = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return seen >= leading ? i : i + 1 + leading - seen;
    if (a.startsWith('-') && a !== '-') {
      if (a.includes('=') || !takesValue(a, table)) continue;
      i++;
      continue;
    }
    seen++;
    if (seen === leading) return i + 1;
  }
  return args.length;
}

/** Whether option token `a` (`--name`, `-p`, or a group such as `-itp`) consumes the next argument. */
function takesValue(a: string, table: OptionTable): boolean {
  if (a.startsWith('--')) return table[a.slice(2)]?.type === 'string';
  const shorts = a.slice(1);
  for (let i = 0; i < shorts.length; i++) {
    // A string option inside a group takes the rest of the group as its value (`-p80:80`).
    if (Object.values(table).find((o) => o.short === shorts[i])?.type === 'string') return i === shorts.length - 1;
  }
  return false;
}

/**
 * Parses a verb's arguments against its table and the global options. With `commandAfter`,
 * the arguments after that many positionals are returned as `rest`, unparsed.
 */
export function parseVerb(args: readonly string[], table: OptionTable, commandAfter?: number): Parsed {
  const options = { ...GLOBAL_OPTIONS, ...table };
  const end = commandAfter === undefined ? args.length : commandLineStart(args, options, commandAfter);
  const own = args.slice(0, end);
  let parsed;
  try {
    parsed = parseArgs({ args: own, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const rest = args.slice(end);
  if (rest[0] === '--') rest.shift();
  return { values: parsed.values as Parsed['values'], positionals: parsed.positionals, rest };
}
