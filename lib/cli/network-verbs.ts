/**
 * `network ls|rm|prune`.
 * @module
 */
import { flag, type Command } from './command.js';
import { confirmPrune } from './confirm.js';
import { forEachRef } from './each-ref.js';
import { writeList } from './list-output.js';
import { shortId, writeJson } from './output.js';

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
    return writeList(ctx, flag(args, 'quiet'), {
      json: () => inspected,
      ids: () => inspected.map((n) => shortId(n.Id)),
      headers: ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'],
      rows: () => inspected.map((n) => [shortId(n.Id), n.Name, n.Driver, n.Scope]),
    });
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
    return forEachRef(ctx, args.positionals, (name) => rt.networks.remove(name));
  },
};

const prune: Command = {
  name: 'network prune',
  usage: '[OPTIONS]',
  summary: 'Remove all unused networks',
  options: { force: { type: 'boolean', short: 'f' } },
  maxArgs: 0,
  async run(ctx, args) {
    if (!(await confirmPrune(ctx, flag(args, 'force'), 'WARNING! This will remove all custom networks not used by at least one container.'))) return 0;
    const rt = await ctx.runtime();
    const result = await rt.networks.prune();
    if (ctx.json) writeJson(ctx.stdout, result);
    else if (result.NetworksDeleted.length > 0) ctx.stdout.write(`Deleted Networks:\n${result.NetworksDeleted.map((n) => `${n}\n`).join('')}`);
    return 0;
  },
};

export const NETWORK_VERBS: readonly Command[] = [ls, rm, prune];
