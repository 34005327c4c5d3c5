/**
 * The image verbs: `images`, `pull`, `rmi`.
 * @module
 */
import type { Image } from '../index.js';
import { flag, type CliContext, type Command } from './command.js';
import { forEachRef } from './each-ref.js';
import { writeList } from './list-output.js';
import { humanSize, shortId, timeAgo, writeJson } from './output.js';
import { plainProgress, terminalProgress } from './pull-progress.js';

/** `registry:5000/a/b:tag` → [`registry:5000/a/b`, `tag`]; a digest reference keeps `<none>` as its tag. */
export function splitReference(ref: string): [repository: string, tag: string] {
  const at = ref.indexOf('@');
  if (at >= 0) return [ref.slice(0, at), '<none>'];
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return [ref.slice(0, colon), ref.slice(colon + 1)];
  return [ref, 'latest'];
}

function imageRows(images: readonly Image[]): string[][] {
  const rows: string[][] = [];
  for (const img of images) {
    const created = img.created ? timeAgo(img.created) : 'N/A';
    const tags = img.repoTags.length > 0 ? img.repoTags : ['<none>:<none>'];
    for (const t of tags) {
      const [repo, tag] = t === '<none>:<none>' ? ['<none>', '<none>'] : splitReference(t);
      rows.push([repo, tag, shortId(img.id), created, humanSize(img.size)]);
    }
  }
  return rows;
}

const images: Command = {
  name: 'images',
  aliases: ['image ls'],
  usage: '[OPTIONS]',
  summary: 'List images',
  options: { quiet: { type: 'boolean', short: 'q' } },
  maxArgs: 0,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const list = await rt.images.list();
    return writeList(ctx, flag(args, 'quiet'), {
      json: () => list.map((i) => i.toJSON()),
      ids: () => list.map((i) => shortId(i.id)),
      headers: ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
      rows: () => imageRows(list),
    });
  },
};

const pull: Command = {
  name: 'pull',
  aliases: ['image pull'],
  usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
  summary: 'Download an image from a registry',
  options: { platform: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } },
  minArgs: 1,
  maxArgs: 1,
  async run(ctx: CliContext, args) {
    const ref = args.positionals[0]!;
    const rt = await ctx.runtime();
    const quiet = ctx.json || flag(args, 'quiet');
    const view = quiet ? undefined : ctx.stdout.isTTY ? terminalProgress(ctx.stdout) : plainProgress(ctx.stdout);
    const platform = args.values.platform;
    let downloaded = false;
    const image = await rt.images.pull(ref, {
      ...(typeof platform === 'string' ? { platform } : {}),
      onProgress: (p) => {
        if (p.state === 'downloading' || p.state === 'extracting') downloaded = true;
        view?.update(p);
      },
    });
    if (ctx.json) {
      writeJson(ctx.stdout, image.toJSON());
      return 0;
    }
    if (!quiet) {
      ctx.stdout.write(`Digest: ${image.digest}\n`);
      ctx.stdout.write(`Status: ${downloaded ? 'Downloaded newer image' : 'Image is up to date'} for ${ref}\n`);
    }
    ctx.stdout.write(`${ref}\n`);
    return 0;
  },
};

const rmi: Command = {
  name: 'rmi',
  aliases: ['image rm'],
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  summary: 'Remove one or more images',
  options: { force: { type: 'boolean', short: 'f' } },
  minArgs: 1,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const force = flag(args, 'force');
    return forEachRef(ctx, args.positionals, (ref) => rt.images.remove(ref, { force }), {
      text: (_, r) => [...r.untagged.map((u) => `Untagged: ${u}\n`), ...r.deleted.map((d) => `Deleted: ${d}\n`)].join(''),
      json: (_, r) => [...r.untagged.map((u) => ({ Untagged: u })), ...r.deleted.map((d) => ({ Deleted: d }))],
    });
  },
};

export const IMAGE_VERBS: readonly Command[] = [images, pull, rmi];
