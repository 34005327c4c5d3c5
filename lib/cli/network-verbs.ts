/**
 * `network ls|rm|prune`.
 * @module
 */
import { flag, type Command } from './command.js';
import { confirm } from './confirm.js';
import { shortId, writeJson, writeTable } from './output.js';

const ls: Command = {
  name: 'network ls',
  usage: '[OPTIONS]',
  summary: 'List networks',
  options: { quiet: { type: 'boolean', short: 'q' } },
  maxArgs: 0,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const networks = await rt.networks.list();
    const inspected = await Promise.all(networks.map((n) => n.inspect()));
    if (ctx.json) writeJson(ctx.stdout, inspected);
    else if (flag(args, 'quiet')) for (const n of inspected) ctx.stdout.write(`${shortId(n.Id)}\n`);
    else writeTable(ctx.stdout, ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], inspected.map((n) => [shortId(n.Id), n.Name, n.Driver, n.Scope]));
    return 0;
  },
};

const rm: Command = {
  name: 'network rm',
  usage: 'NETWORK [NETWORK...]',
  summary: 'Remove one or more networks',
  options: {},
  minArgs: 1,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const removed: string[] = [];
    let failed = false;
    for (const name of args.positionals) {
      try {
        await rt.networks.remove(name);
        removed.push(name);
        if (!ctx.json) ctx.stdout.write(`${name}\n`);
      } catch (error) {
        failed = true;
        ctx.stderr.write(`Error: ${(error as Error).message}\n`);
      }
    }
    if (ctx.json) writeJson(ctx.stdout, removed);
    return failed ? 1 : 0;
  },
};

const prune: Command = {
  name: 'network prune',
  usage: '[OPTIONS]',
  summary: 'Remove all unused networks',
  options: { force: { type: 'boolean', short: 'f' } },
  maxArgs: 0,
  async run(ctx, args) {
    if (!flag(args, 'force') && !ctx.json) {
      if (!(await confirm(ctx, 'WARNING! This will remove all custom networks not used by at least one container.'))) return 0;
    }
    const rt = await ctx.runtime();
    const result = await rt.networks.prune();
    if (ctx.json) writeJson(ctx.stdout, result);
    else if (result.NetworksDeleted.length > 0) ctx.stdout.write(`Deleted Networks:\n${result.NetworksDeleted.map((n) => `${n}\n`).join('')}`);
    return 0;
  },
};

export const NETWORK_VERBS: readonly Command[] = [ls, rm, prune];
