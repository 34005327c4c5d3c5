/**
 * `berth`: Docker's verbs over berth's public API, on one state directory, with no daemon and
 * no state of its own. This file reads the global options, finds the verb, runs it, and turns
 * what went wrong into Docker's exit codes: 125 for a wrong invocation or a berth failure in
 * `run`, 1 for a failure of the other verbs, and otherwise the verb's own code (the
 * container's, for `run` and `exec`).
 * @module
 */
import type { Writable } from 'node:stream';
import { DEFAULT_ROOT, Runtime, isBerthError } from '../index.js';
import { UsageError, parseVerb } from './args.js';
import type { CliContext, Command } from './command.js';
import { VERBS, findVerb } from './verbs.js';

/** The streams the CLI talks to (the process's own in `bin.ts`; tests may pass theirs). */
export interface CliStreams {
  stdin: CliContext['stdin'];
  stdout: CliContext['stdout'];
  stderr: Writable;
}

/** Exit code of a wrong invocation (Docker's, for flags it does not know). */
export const USAGE_EXIT_CODE = 125;

function overview(): string {
  const width = Math.max(...VERBS.map((c) => c.name.length));
  return [
    'Usage:  berth [--root DIR] [--json] COMMAND [ARGS...]',
    '',
    "Run and look into berth's containers, images, volumes and networks from a shell.",
    '',
    'Global options:',
    `  --root DIR   the state directory (default ${DEFAULT_ROOT})`,
    '  --json       print JSON instead of tables and text',
    '',
    'Commands:',
    ...VERBS.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`),
    '',
    "Run 'berth COMMAND --help' for more information on a command.",
    '',
  ].join('\n');
}

function usageOf(command: Command): string {
  const flags = Object.entries(command.options).map(([name, o]) => `  ${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' VALUE' : ''}${o.multiple ? ' (repeatable)' : ''}`);
  return [`Usage:  berth ${command.name} ${command.usage}`.trimEnd(), '', command.summary, ...(flags.length > 0 ? ['', 'Options:', ...flags] : []), ''].join('\n');
}

/** Global options before the verb: `--root DIR`, `--root=DIR`, `--json`, `-h`. */
function leadingGlobals(argv: readonly string[]): { root?: string; json: boolean; help: boolean; rest: string[] } {
  const out: { root?: string; json: boolean; help: boolean; rest: string[] } = { json: false, help: false, rest: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') out.json = true;
    else if (a === '-h' || a === '--help') out.help = true;
    else if (a.startsWith('--root=')) out.root = a.slice('--root='.length);
    else if (a === '--root') {
      if (i + 1 >= argv.length) throw new UsageError('--root needs a directory');
      out.root = argv[++i]!;
    } else if (a.startsWith('-')) throw new UsageError(`unknown flag: ${a}`);
    else break;
  }
  out.rest = argv.slice(i);
  return out;
}

/** Runs the CLI on `argv` (without `node` and the script) and resolves with its exit code. */
export async function main(argv: readonly string[], streams: CliStreams): Promise<number> {
  let command: Command | undefined;
  try {
    const globals = leadingGlobals(argv);
    if (globals.rest.length === 0) {
      // As `docker` alone: the overview, and success.
      streams.stdout.write(overview());
      return 0;
    }
    const found = findVerb(globals.rest);
    if (!found) throw new UsageError(`'${globals.rest[0]}' is not a berth command`);
    command = found.command;
    const args = parseVerb(globals.rest.slice(found.words), command.options, command.commandAfter);
    if (globals.help || args.values.help === true) {
      streams.stdout.write(usageOf(command));
      return 0;
    }
    const count = args.positionals.length;
    if (command.minArgs !== undefined && count < command.minArgs) throw new UsageError(`"${command.name}" requires at least ${command.minArgs} argument${command.minArgs === 1 ? '' : 's'}`);
    if (command.maxArgs !== undefined && count > command.maxArgs) throw new UsageError(`"${command.name}" accepts ${command.maxArgs === 0 ? 'no arguments' : `at most ${command.maxArgs}`}`);
    const root = typeof args.values.root === 'string' ? args.values.root : globals.root;
    let opened: Promise<Runtime> | undefined;
    const ctx: CliContext = {
      ...streams,
      json: globals.json || args.values.json === true,
      runtime: () => (opened ??= Runtime.open(root !== undefined ? { root } : {})),
    };
    try {
      return await command.run(ctx, args);
    } finally {
      // What the verb's runtime holds in this process (event loops, pending restarts) ends here.
      if (opened) await opened.then((rt) => rt.close(), () => {});
    }
  } catch (error) {
    if (error instanceof UsageError) {
      streams.stderr.write(`berth: ${error.message}\nSee 'berth ${command ? `${command.name} ` : ''}--help'.\n`);
      return USAGE_EXIT_CODE;
    }
    if (isBerthError(error)) {
      streams.stderr.write(`Error: ${error.message}\n`);
      return command?.failureExitCode ?? 1;
    }
    // Not berth's family: a bug of the CLI or of berth; the stack is what a report needs.
    streams.stderr.write(`berth: unexpected failure: ${(error as Error)?.stack ?? String(error)}\n`);
    return USAGE_EXIT_CODE;
  }
}

