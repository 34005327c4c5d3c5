/**
 * `compose [-f FILE]... [-p NAME] [--project-directory DIR] [--profile P]... up|down|ps|logs`
 * over `rt.compose.load()`. The project options come before the subcommand and the
 * subcommand's own after it, as `docker compose` reads them (so `compose -f x.yaml logs -f`
 * has a file and a follow). berth's containers are detached, so `up` returns once the stack is
 * started; `--wait` also waits for running/healthy.
 * @module
 */
import { resolve } from 'node:path';
import { ValidationError, isBerthError, type Stack, type StackContainer } from '../index.js';
import { UsageError, parseVerb, type OptionTable, type Parsed } from './args.js';
import { flag, listOption, stringOption, type CliContext, type Command } from './command.js';
import { portsColumn } from './container-verbs.js';
import { commandColumn, shortId, timeAgo, writeJson, writeTable } from './output.js';

/** A subcommand of `compose`: its table, and how it runs on the loaded stack. */
interface ComposeSubcommand {
  name: string;
  usage: string;
  summary: string;
  options: OptionTable;
  /** Whether it takes SERVICE... positionals. */
  services: boolean;
  run(ctx: CliContext, args: Parsed, stack: Stack): Promise<number>;
}

/** A container's name as compose prints it (no leading slash). */
function nameOf(c: StackContainer): string {
  return (c.Names[0] ?? shortId(c.Id)).replace(/^\//, '');
}

/** `Running` for `running`: compose's capitalised states. */
function stateWord(state: string): string {
  return state.charAt(0).toUpperCase() + state.slice(1);
}

/** Only the containers of `services`, all of them when none is named. */
function ofServices(list: readonly StackContainer[], services: readonly string[]): StackContainer[] {
  return services.length === 0 ? [...list] : list.filter((c) => services.includes(c.service));
}

/** Service names on the command line must be the project's: a typo is a named error, not silence. */
function checkServices(stack: Stack, services: readonly string[]): void {
  for (const s of services) if (!(s in stack.project.services)) throw new ValidationError('SERVICE', `no service named ${JSON.stringify(s)} in project ${stack.name}`);
}

const up: ComposeSubcommand = {
  name: 'up',
  usage: '[OPTIONS] [SERVICE...]',
  summary: 'Create and start the stack (or these services and their dependencies); returns once it is started, containers stay detached',
  options: {
    detach: { type: 'boolean', short: 'd' },
    wait: { type: 'boolean' },
    'no-build': { type: 'boolean' },
    pull: { type: 'string' },
  },
  services: true,
  async run(ctx, args, stack) {
    const services = args.positionals;
    checkServices(stack, services);
    const pull = stringOption(args, 'pull');
    if (pull !== undefined && pull !== 'missing' && pull !== 'always' && pull !== 'never') throw new UsageError('--pull must be missing, always or never');
    // -d is accepted for scripts written for docker compose: berth's containers are detached anyway.
    await stack.up({ ...(services.length > 0 ? { services } : {}), wait: flag(args, 'wait'), build: !flag(args, 'no-build'), ...(pull !== undefined ? { pull } : {}) });
    const list = ofServices(await stack.ps(), services);
    if (ctx.json) writeJson(ctx.stdout, list);
    else for (const c of list) ctx.stdout.write(` Container ${nameOf(c)}  ${stateWord(c.State)}\n`);
    return 0;
  },
};

const down: ComposeSubcommand = {
  name: 'down',
  usage: '[OPTIONS]',
  summary: "Stop and remove the stack's containers and networks (and volumes with -v)",
  options: {
    volumes: { type: 'boolean', short: 'v' },
    'remove-orphans': { type: 'boolean' },
    timeout: { type: 'string', short: 't' },
  },
  services: false,
  async run(ctx, args, stack) {
    const timeout = stringOption(args, 'timeout');
    const seconds = timeout === undefined ? undefined : Number(timeout);
    if (seconds !== undefined && (!Number.isInteger(seconds) || seconds < 0)) throw new UsageError(`--timeout ${JSON.stringify(timeout)}: must be a whole number of seconds`);
    const known = new Set(Object.keys(stack.project.services));
    const orphans = flag(args, 'remove-orphans');
    const removed = (await stack.ps()).filter((c) => orphans || known.has(c.service));
    await stack.down({ volumes: flag(args, 'volumes'), removeOrphans: orphans, ...(seconds !== undefined ? { timeout: seconds * 1000 } : {}) });
    if (ctx.json) writeJson(ctx.stdout, removed.map(nameOf));
    else for (const c of removed) ctx.stdout.write(` Container ${nameOf(c)}  Removed\n`);
    return 0;
  },
};

const ps: ComposeSubcommand = {
  name: 'ps',
  usage: '[OPTIONS] [SERVICE...]',
  summary: "List the stack's containers (running ones; all with -a)",
  options: { all: { type: 'boolean', short: 'a' }, quiet: { type: 'boolean', short: 'q' } },
  services: true,
  async run(ctx, args, stack) {
    checkServices(stack, args.positionals);
    const all = flag(args, 'all');
    const list = ofServices(await stack.ps(), args.positionals).filter((c) => all || c.State === 'running');
    if (ctx.json) {
      writeJson(ctx.stdout, list);
      return 0;
    }
    if (flag(args, 'quiet')) {
      for (const c of list) ctx.stdout.write(`${c.Id}\n`);
      return 0;
    }
    const rt = await ctx.runtime();
    const rows: string[][] = [];
    for (const c of list) {
      const ports = await rt.containers.get(c.Id).then((x) => x.inspect()).then((i) => portsColumn(i.NetworkSettings.Ports), () => '');
      rows.push([nameOf(c), c.Image, commandColumn(c.Command), c.service, timeAgo(c.Created * 1000), c.Status, ports]);
    }
    writeTable(ctx.stdout, ['NAME', 'IMAGE', 'COMMAND', 'SERVICE', 'CREATED', 'STATUS', 'PORTS'], rows);
    return 0;
  },
};

const logs: ComposeSubcommand = {
  name: 'logs',
  usage: '[OPTIONS] [SERVICE...]',
  summary: "Print the output of the stack's containers, each line after its container's name; -f follows until they stop or Ctrl-C",
  options: { follow: { type: 'boolean', short: 'f' }, tail: { type: 'string', short: 'n' }, 'no-log-prefix': { type: 'boolean' } },
  services: true,
  async run(ctx, args, stack) {
    const services = args.positionals;
    checkServices(stack, services);
    const tailText = stringOption(args, 'tail');
    const tail = tailText === undefined || tailText === 'all' ? undefined : Number(tailText);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError(`--tail ${JSON.stringify(tailText)}: must be a number of lines or "all"`);
    const width = Math.max(0, ...ofServices(await stack.ps(), services).map((c) => nameOf(c).length));
    const noPrefix = flag(args, 'no-log-prefix');
    // Ctrl-C ends a follow as docker compose's does: the lines so far were printed, exit 0.
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      for await (const e of stack.logs({ follow: flag(args, 'follow'), ...(tail !== undefined ? { tail } : {}), ...(services.length > 0 ? { services } : {}), signal: stop.signal })) {
        const out = e.stream === 'stderr' ? ctx.stderr : ctx.stdout;
        if (ctx.json) ctx.stdout.write(`${JSON.stringify(e)}\n`);
        else for (const line of e.text.replace(/\n$/, '').split('\n')) out.write(noPrefix ? `${line}\n` : `${e.container.padEnd(width)}  | ${line}\n`);
      }
    } catch (error) {
      if (!(stop.signal.aborted && isBerthError(error) && error.code === 'ABORT_ERR')) throw error;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return 0;
  },
};

const SUBCOMMANDS: readonly ComposeSubcommand[] = [up, down, ps, logs];

/** `berth compose SUB --help`. */
function subUsage(sub: ComposeSubcommand): string {
  const flags = Object.entries(sub.options).map(([name, o]) => `  ${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' VALUE' : ''}`);
  return [`Usage:  berth compose [PROJECT OPTIONS] ${sub.name} ${sub.usage}`, '', sub.summary, '', 'Options:', ...flags, ''].join('\n');
}

const compose: Command = {
  name: 'compose',
  usage: `[-f FILE]... [-p NAME] [--project-directory DIR] [--profile P]... COMMAND [ARGS...]\n\nCommands:\n${SUBCOMMANDS.map((s) => `  ${s.name.padEnd(5)}  ${s.summary}`).join('\n')}\n\n'up' returns once the stack is started (berth's containers are detached; -d is accepted and changes nothing); 'up --wait' also waits until every service runs and is healthy.`,
  summary: 'Run and look into compose stacks (up, down, ps, logs)',
  options: {
    file: { type: 'string', short: 'f', multiple: true },
    'project-name': { type: 'string', short: 'p' },
    'project-directory': { type: 'string' },
    profile: { type: 'string', multiple: true },
  },
  // The subcommand is the one positional; what follows it is parsed against its own table.
  commandAfter: 1,
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const name = args.positionals[0]!;
    const sub = SUBCOMMANDS.find((s) => s.name === name);
    if (!sub) throw new UsageError(`'${name}' is not a compose command (${SUBCOMMANDS.map((s) => s.name).join(', ')})`);
    const own = parseVerb(args.rest, sub.options);
    if (own.values.help === true) {
      ctx.stdout.write(subUsage(sub));
      return 0;
    }
    if (own.values.root !== undefined) throw new UsageError('--root goes before the verb: berth --root DIR compose ...');
    if (!sub.services && own.positionals.length > 0) throw new UsageError(`"compose ${sub.name}" accepts no arguments`);
    // Docker reads -f from the current directory, whatever --project-directory says.
    const files = listOption(args, 'file').map((f) => resolve(f));
    const projectName = stringOption(args, 'project-name');
    const projectDir = stringOption(args, 'project-directory');
    const profiles = listOption(args, 'profile');
    const rt = await ctx.runtime();
    const stack = await rt.compose.load({
      ...(files.length > 0 ? { files } : {}),
      ...(projectName !== undefined ? { projectName } : {}),
      ...(projectDir !== undefined ? { projectDir } : {}),
      ...(profiles.length > 0 ? { profiles } : {}),
    });
    for (const w of stack.warnings) ctx.stderr.write(`WARN: ${w}\n`);
    return sub.run({ ...ctx, json: ctx.json || own.values.json === true }, own, stack);
  },
};

export const COMPOSE_VERBS: readonly Command[] = [compose];
