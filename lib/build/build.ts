/**
 * `rt.images.build()`: options checked, context opened, Dockerfile parsed and staged, the
 * stages the target needs run by the {@link Executor}, the result published and tagged. The
 * whole build holds the store's `gc` lock shared (as pull and load do), so no prune deletes a
 * layer between the step that made it and the image or cache entry that holds it.
 * @module
 */
import { arch } from 'node:os';
import { rm } from 'node:fs/promises';
import { ValidationError } from '../errors.js';
import type { BuildOptions } from '../image/build-types.js';
import type { Image } from '../image/image.js';
import type { ImageService } from '../image/image-service.js';
import type { NetworkService } from '../network/network-service.js';
import { hostPlatform, formatPlatform, parsePlatform, type ImageConfig } from '../image/manifest.js';
import { formatReference, parseReference } from '../image/reference.js';
import type { BuildCache } from './build-cache.js';
import { BuildUnsupportedError } from './build-errors.js';
import { openContext, readContextFile } from './build-context.js';
import { parseDockerfile } from './dockerfile-parser.js';
import { Executor } from './executor.js';
import { publishImage } from './image-publish.js';
import { GlobalArgs } from './stage-state.js';
import { stagesFor, toStages } from './stages.js';

const OPTION_NAMES = new Set(['context', 'dockerfile', 'target', 'buildArgs', 'tags', 'labels', 'noCache', 'pull', 'network', 'secrets', 'platform', 'onProgress', 'signal']);

function stringRecord(value: unknown, option: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ValidationError(option, 'must be an object of string values');
  for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') throw new ValidationError(`${option}.${k}`, 'must be a string');
  return value as Record<string, string>;
}

function bool(value: unknown, option: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new ValidationError(option, 'must be a boolean');
  return value;
}

/** The automatic platform args (TARGETPLATFORM, BUILDARCH, …) of BuildKit. */
function platformArgs(): Record<string, string> {
  const p = hostPlatform();
  const out: Record<string, string> = {};
  for (const prefix of ['TARGET', 'BUILD']) {
    out[`${prefix}PLATFORM`] = formatPlatform(p);
    out[`${prefix}OS`] = p.os;
    out[`${prefix}ARCH`] = p.architecture;
    out[`${prefix}VARIANT`] = p.variant ?? '';
  }
  return out;
}

/** Builds an image; see `ImageService.build` for the contract. */
export async function buildImage(images: ImageService, cache: BuildCache, options: BuildOptions, runtime: { networks?: NetworkService } = {}): Promise<Image> {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object with at least a context');
  for (const k of Object.keys(options)) if (!OPTION_NAMES.has(k)) throw new ValidationError(k, `unknown build option (known: ${[...OPTION_NAMES].join(', ')})`);
  if (options.context === undefined) throw new ValidationError('context', 'is required: a directory or a tar stream');
  const buildArgs = stringRecord(options.buildArgs, 'buildArgs');
  const labels = stringRecord(options.labels, 'labels');
  const secrets = stringRecord(options.secrets, 'secrets');
  const noCache = bool(options.noCache, 'noCache');
  const pull = bool(options.pull, 'pull');
  const network = options.network ?? 'none';
  if (typeof network !== 'string' || network === '') throw new ValidationError('network', "must be 'none', 'host' or a network's name");
  if (options.target !== undefined && (typeof options.target !== 'string' || options.target === '')) throw new ValidationError('target', 'must be a stage name');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new ValidationError('onProgress', 'must be a function');
  if (options.tags !== undefined && !Array.isArray(options.tags)) throw new ValidationError('tags', 'must be an array of name[:tag] strings');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new ValidationError('signal', 'must be an AbortSignal');
  const tags = (options.tags ?? []).map((t, i) => {
    if (typeof t !== 'string') throw new ValidationError(`tags[${i}]`, 'must be a string');
    const ref = parseReference(t, `tags[${i}]`);
    if (ref.digest !== undefined) throw new ValidationError(`tags[${i}]`, 'a tag cannot contain a digest');
    return formatReference(ref);
  });
  const platform = hostPlatform();
  if (options.platform !== undefined) {
    const want = parsePlatform(options.platform, 'platform');
    if (want.os !== platform.os || want.architecture !== platform.architecture || (want.variant ?? platform.variant) !== platform.variant) {
      throw new BuildUnsupportedError({ file: 'options', line: 1, column: 1 }, `platform ${formatPlatform(want)}: berth builds only for the host's platform (${formatPlatform(platform)}, ${arch()})`);
    }
  }
  let epoch: number | undefined;
  if (buildArgs.SOURCE_DATE_EPOCH !== undefined) {
    if (!/^[0-9]+$/.test(buildArgs.SOURCE_DATE_EPOCH)) throw new ValidationError('buildArgs.SOURCE_DATE_EPOCH', 'must be whole seconds since the epoch');
    epoch = Number(buildArgs.SOURCE_DATE_EPOCH);
  }
  const { signal } = options;
  signal?.throwIfAborted();
  const store = images.store;
  const gc = await store.lock('gc', { mode: 'shared', signal });
  let scratch: string | undefined;
  try {
    const context = await openContext(options.context, store, signal);
    try {
      let text: string;
      let file: string;
      if (typeof options.dockerfile === 'object' && options.dockerfile !== null) {
        if (typeof options.dockerfile.content !== 'string') throw new ValidationError('dockerfile.content', 'must be a string');
        text = options.dockerfile.content;
        file = 'Dockerfile';
      } else {
        file = options.dockerfile ?? 'Dockerfile';
        if (typeof file !== 'string' || file === '') throw new ValidationError('dockerfile', 'must be a path in the context or { content }');
        const bytes = readContextFile(context.view, file, 'dockerfile');
        if (bytes === undefined) throw new ValidationError('dockerfile', `${file} is not a file in the build context`);
        text = bytes.toString('utf8');
      }
      const dockerfile = toStages(parseDockerfile(text, file));
      const globals = new GlobalArgs(buildArgs, dockerfile.escape, platformArgs());
      for (const a of dockerfile.globalArgs) globals.declare(a);
      const stages = stagesFor(dockerfile, globals, options.target);
      const total = stages.reduce((n, s) => n + 1 + s.instructions.length, 0);
      scratch = await store.stagingDir();
      const executor = new Executor({
        images, cache, context, dockerfile, globals, platform, noCache, pull, network, secrets,
        ...(runtime.networks ? { networks: runtime.networks } : {}),
        ...(epoch !== undefined ? { epoch } : {}),
        scratchDir: scratch,
        onProgress: options.onProgress ?? (() => {}),
        ...(signal ? { signal } : {}),
        total,
      });
      let result;
      try {
        result = await executor.run(stages);
      } finally {
        await executor.close();
      }
      const created = result.config.history?.at(-1)?.created ?? new Date().toISOString();
      const config: ImageConfig = {
        ...result.config,
        created,
        config: { ...(result.config.config ?? {}), ...(Object.keys(labels).length > 0 ? { Labels: { ...(result.config.config?.Labels ?? {}), ...labels } } : {}) },
      };
      const record = await publishImage(store, images.table, config, result.layers, platform, tags);
      return await images.get(record.id);
    } finally {
      await context.close();
    }
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
    gc.release();
  }
}
