/**
 * `volume ls|rm|prune`.
 * @module
 */
import { flag, type Command } from './command.js';
import { confirm } from './confirm.js';
import { humanSize, writeJson, writeTable } from './output.js';

const ls: Command = {
  name: 'volume ls',
  usage: '[OPTIONS]',
  summary: 'List volumes',
  options: { quiet: { type: 'boolean', short: 'q' } },
  maxArgs: 0,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const volumes = await rt.volumes.list();
    if (ctx.json) writeJson(ctx.stdout, await Promise.all(volumes.map((v) => v.inspect())));
    else if (flag(args, 'quiet')) for (const v of volumes) ctx.stdout.write(`${v.name}\n`);
    else writeTable(ctx.stdout, ['DRIVER', 'VOLUME NAME'], volumes.map((v) => [v.driver, v.name]));
    return 0;
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
    const removed: string[] = [];
    let failed = false;
    for (const name of args.positionals) {
      try {
        await rt.volumes.remove(name, { force: flag(args, 'force') });
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
  name: 'volume prune',
  usage: '[OPTIONS]',
  summary: 'Remove unused volumes (anonymous ones; all unused with -a)',
  options: { all: { type: 'boolean', short: 'a' }, force: { type: 'boolean', short: 'f' } },
  maxArgs: 0,
  async run(ctx, args) {
    const all = flag(args, 'all');
    if (!flag(args, 'force') && !ctx.json) {
      const what = all ? 'all volumes not used by at least one container' : 'all anonymous volumes not used by at least one container';
      if (!(await confirm(ctx, `WARNING! This will remove ${what}.`))) return 0;
    }
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
