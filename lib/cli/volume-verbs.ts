/**
 * `volume ls|rm|prune`.
 * @module
 */
import { flag, type Command } from './command.js';
import { confirmPrune } from './confirm.js';
import { forEachRef } from './each-ref.js';
import { writeList } from './list-output.js';
import { humanSize, writeJson } from './output.js';

const ls: Command = {
  name: 'volume ls',
  usage: '[OPTIONS]',
  summary: 'List volumes',
  options: { quiet: { type: 'boolean', short: 'q' } },
  maxArgs: 0,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const volumes = await rt.volumes.list();
    return writeList(ctx, flag(args, 'quiet'), {
      json: () => Promise.all(volumes.map((v) => v.inspect())),
      ids: () => volumes.map((v) => v.name),
      headers: ['DRIVER', 'VOLUME NAME'],
      rows: () => volumes.map((v) => [v.driver, v.name]),
    });
  },
};

const rm: Command = {
  name: 'volume rm',
  usage: '[OPTIONS] VOLUME [VOLUME...]',
  summary: 'Remove one or more volumes',
  options: { force: { type: 'boolean', short: 'f' } },
  minArgs: 1,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const force = flag(args, 'force');
    return forEachRef(ctx, args.positionals, (name) => rt.volumes.remove(name, { force }));
  },
};

const prune: Command = {
  name: 'volume prune',
  usage: '[OPTIONS]',
  summary: 'Remove unused volumes (anonymous ones; all unused with -a)',
  options: { all: { type: 'boolean', short: 'a' }, force: { type: 'boolean', short: 'f' } },
  maxArgs: 0,
  async run(ctx, args) {
    const all = flag(args, 'all');
    const what = all ? 'all volumes not used by at least one container' : 'all anonymous volumes not used by at least one container';
    if (!(await confirmPrune(ctx, flag(args, 'force'), `WARNING! This will remove ${what}.`))) return 0;
    const rt = await ctx.runtime();
    const result = await rt.volumes.prune({ all });
    if (ctx.json) {
      writeJson(ctx.stdout, result);
      return 0;
    }
    if (result.VolumesDeleted.length > 0) ctx.stdout.write(`Deleted Volumes:\n${result.VolumesDeleted.map((v) => `${v}\n`).join('')}\n`);
    ctx.stdout.write(`Total reclaimed space: ${humanSize(result.SpaceReclaimed)}\n`);
    return 0;
  },
};

export const VOLUME_VERBS: readonly Command[] = [ls, rm, prune];
