/**
 * `inspect NAME|ID…`: the first object of that name among containers, images, volumes and
 * networks (Docker's order), printed as Docker does: one JSON array for all of them.
 * @module
 */
import { NotFoundError, isBerthError, type Runtime } from '../index.js';
import { stringOption, type Command } from './command.js';
import { UsageError } from './args.js';
import { writeJson } from './output.js';

const TYPES = ['container', 'image', 'volume', 'network'] as const;
type ObjectType = (typeof TYPES)[number];

/** A lookup that answers undefined for "no such object", and throws every other failure. */
async function orMissing<T>(lookup: () => Promise<T>): Promise<T | undefined> {
  try {
    return await lookup();
  } catch (error) {
    if (isBerthError(error) && error.code === 'ERR_NOT_FOUND') return undefined;
    throw error;
  }
}

async function inspectAs(rt: Runtime, type: ObjectType, ref: string): Promise<unknown> {
  switch (type) {
    case 'container':
      return orMissing(async () => (await rt.containers.get(ref)).inspect());
    case 'image':
      return orMissing(() => rt.images.inspect(ref));
    case 'volume':
      return orMissing(() => rt.volumes.inspect(ref));
    case 'network':
      return orMissing(() => rt.networks.inspect(ref));
  }
}

const inspect: Command = {
  name: 'inspect',
  usage: '[--type container|image|volume|network] NAME|ID [NAME|ID...]',
  summary: 'Return low-level information on berth objects',
  options: { type: { type: 'string' } },
  minArgs: 1,
  async run(ctx, args) {
    const only = stringOption(args, 'type');
    if (only !== undefined && !(TYPES as readonly string[]).includes(only)) throw new UsageError(`--type: "${only}" is not one of ${TYPES.join(', ')}`);
    const rt = await ctx.runtime();
    const found: unknown[] = [];
    let missing = false;
    for (const ref of args.positionals) {
      let doc: unknown;
      for (const type of only ? [only as ObjectType] : TYPES) {
        doc = await inspectAs(rt, type, ref).catch((error: unknown) => {
          // A reference that is not valid for this kind of object (an image reference rule) is not this kind.
          if (isBerthError(error) && error.code === 'ERR_INVALID_OPTION') return undefined;
          throw error;
        });
        if (doc !== undefined) break;
      }
      if (doc === undefined) {
        missing = true;
        ctx.stderr.write(`Error: ${new NotFoundError(`No such object: ${ref}`).message}\n`);
      } else {
        found.push(doc);
      }
    }
    writeJson(ctx.stdout, found);
    return missing ? 1 : 0;
  },
};

export const INSPECT_VERBS: readonly Command[] = [inspect];
