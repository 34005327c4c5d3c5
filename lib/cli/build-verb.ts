/**
 * `build`: `rt.images.build()` with `docker build`'s flags and its classic output — a
 * `Step N/M : INSTR` line per step, ` ---> Using cache` for a cached one, the lines RUN steps
 * print, then `Successfully built <id>` and `Successfully tagged <tag>`. `--json` prints the
 * progress events as JSON lines and the image last; `-q` only the image id. A failed build is
 * exit 1 with the error (the failing step's location, exit code and last lines), as Docker's.
 * @module
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { ValidationError, type BuildOptions, type BuildProgress } from '../index.js';
import { flag, listOption, stringOption, type CliContext, type Command } from './command.js';
import { UsageError } from './args.js';
import { shortId } from './output.js';
import { splitReference } from './image-verbs.js';

/**
 * `K=V` flags as a record. A `--build-arg K` without `=` takes K from this process's
 * environment and is left out when unset, as Docker does; a `--label K` has the empty value.
 */
export function keyValues(items: readonly string[], flagName: string, fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (key === '') throw new UsageError(`--${flagName} ${JSON.stringify(item)}: the key is empty`);
    if (eq >= 0) out[key] = item.slice(eq + 1);
    else if (!fromEnv) out[key] = '';
    else if (process.env[key] !== undefined) out[key] = process.env[key]!;
  }
  return out;
}

/** The text of all of stdin (`-f -`). */
async function readAll(ctx: CliContext): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `-f`: Docker reads the path from the current directory, not from the context. A file inside
 * the context is passed by its path there (the builder then reports it missing, with its
 * location); one outside it, or `-`, is passed as text, as the API's `{ content }`.
 */
async function dockerfileOption(ctx: CliContext, file: string | undefined, context: string): Promise<BuildOptions['dockerfile']> {
  if (file === undefined) return undefined;
  if (file === '-') return { content: await readAll(ctx) };
  const path = resolve(file);
  const inside = relative(context, path);
  if (inside !== '' && !inside.startsWith('..') && !isAbsolute(inside)) return inside;
  try {
    return { content: readFileSync(path, 'utf8') };
  } catch (error) {
    throw new ValidationError('-f', `cannot read the Dockerfile ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { path });
  }
}

/** The human view: Docker's classic builder lines, written as the events come. */
function stepPrinter(ctx: CliContext): (e: BuildProgress) => void {
  return (e) => {
    if (e.line !== undefined) ctx.stdout.write(`${e.line}\n`);
    else ctx.stdout.write(`Step ${e.step}/${e.total} : ${e.instruction}\n${e.cached ? ' ---> Using cache\n' : ''}`);
  };
}

const build: Command = {
  name: 'build',
  aliases: ['image build'],
  usage: '[OPTIONS] PATH',
  summary: 'Build an image from a Dockerfile',
  options: {
    tag: { type: 'string', short: 't', multiple: true },
    file: { type: 'string', short: 'f' },
    target: { type: 'string' },
    'build-arg': { type: 'string', multiple: true },
    'no-cache': { type: 'boolean' },
    pull: { type: 'boolean' },
    network: { type: 'string' },
    label: { type: 'string', multiple: true },
    quiet: { type: 'boolean', short: 'q' },
  },
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const context = resolve(args.positionals[0]!);
    const tags = listOption(args, 'tag');
    const dockerfile = await dockerfileOption(ctx, stringOption(args, 'file'), context);
    const target = stringOption(args, 'target');
    const network = stringOption(args, 'network');
    const quiet = flag(args, 'quiet');
    const onProgress = ctx.json ? (e: BuildProgress) => ctx.stdout.write(`${JSON.stringify(e)}\n`) : quiet ? undefined : stepPrinter(ctx);
    const rt = await ctx.runtime();
    const image = await rt.images.build({
      context,
      ...(dockerfile !== undefined ? { dockerfile } : {}),
      ...(target !== undefined ? { target } : {}),
      buildArgs: keyValues(listOption(args, 'build-arg'), 'build-arg', true),
      labels: keyValues(listOption(args, 'label'), 'label', false),
      tags,
      noCache: flag(args, 'no-cache'),
      pull: flag(args, 'pull'),
      ...(network !== undefined ? { network } : {}),
      ...(onProgress ? { onProgress } : {}),
    });
    if (ctx.json) ctx.stdout.write(`${JSON.stringify(image.toJSON())}\n`);
    else if (quiet) ctx.stdout.write(`${image.id}\n`);
    else {
      ctx.stdout.write(`Successfully built ${shortId(image.id)}\n`);
      for (const t of tags) ctx.stdout.write(`Successfully tagged ${splitReference(t).join(':')}\n`);
    }
    return 0;
  },
};

export const BUILD_VERBS: readonly Command[] = [build];
