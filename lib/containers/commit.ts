/**
 * `commit()`: a container's changes as a new image. The upper dir becomes one layer (overlay
 * whiteouts written as OCI `.wh.` entries) on top of the image's layers; a container made from
 * a rootfs directory becomes a one-layer image of its merged root. The result goes into the
 * store through the image service's `load()` as a `docker save` archive, so it is verified
 * and committed exactly as any loaded image (digests, diff ids, atomic visibility).
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { arch } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { UnsupportedError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { ContainerConfig, ImageConfig } from '../image/manifest.js';
import { tarHeader, tarPadding, tarTrailer } from '../image/tar-writer.js';
import { applyConfigChanges } from '../image/config-changes.js';
import type { ContainerRecord } from './container-record.js';
import { GENERATED_FILES } from './diff.js';
import type { ContainerLayerPaths, StorageDriver } from '../storage/driver.js';
import { containerMergedArchive } from '../storage/rootfs-archive.js';

export interface CommitOptions {
  /** Tag for the new image (`'app:snapshot'`). Default: untagged. */
  ref?: string;
  /** Recorded in the image history's comment. */
  message?: string;
  author?: string;
  /** Dockerfile instructions, as `docker commit --change` and `images.import({ changes })` (one parser): `['CMD ["sh"]', 'ENV A=1']`. */
  changes?: string[];
  /** Freeze the container while its files are read (Docker's default). Default true. */
  pause?: boolean;
  signal?: AbortSignal;
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The container's config for the new image: what the container runs now, as Docker commits it. */
export function committedConfig(record: ContainerRecord, changes: readonly string[]): ContainerConfig {
  const base: ContainerConfig = { ...(record.imageConfig ?? {}) };
  const cfg: ContainerConfig = {
    ...base,
    Env: record.env,
    Cmd: record.cmd ?? (record.entrypoint === null ? base.Cmd ?? null : null),
    Entrypoint: record.entrypoint ?? base.Entrypoint ?? null,
    Labels: { ...(base.Labels ?? {}), ...record.labels },
    ...(record.options.workdir ?? base.WorkingDir ? { WorkingDir: record.options.workdir ?? base.WorkingDir } : {}),
    ...(record.options.user ?? base.User ? { User: record.options.user ?? base.User } : {}),
    ...(record.stopSignal !== 'SIGTERM' ? { StopSignal: record.stopSignal } : {}),
  };
  return applyConfigChanges(cfg, changes);
}

async function* archiveOf(members: Array<{ name: string; size: number; body: () => AsyncIterable<Buffer> }>): AsyncGenerator<Buffer> {
  for (const m of members) {
    yield tarHeader({ name: m.name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: m.size, mtime: 0 });
    for await (const c of m.body()) yield c;
    yield tarPadding(m.size);
  }
  yield tarTrailer();
}

/**
 * Builds the new layer into `tmpDir`, then loads base layers + new layer + config through
 * `images.load`. Returns the new image's id (`sha256:` of its config).
 */
export async function commitContainer(
  images: ImageService,
  record: ContainerRecord,
  storage: { driver: StorageDriver; layer: ContainerLayerPaths },
  tmpDir: string,
  options: CommitOptions,
): Promise<string> {
  if (record.source.kind === 'host') throw new UnsupportedError('a container running on the host\'s root ({ host: true }) has no writable layer to commit');
  const { signal } = options;
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const layerPath = join(tmpDir, `commit-${process.pid}-${Math.random().toString(36).slice(2, 10)}.tar`);
  try {
    // The image's own layers stay as they are; a rootfs directory is flattened into the one layer.
    // berth's generated /etc files belong to the container, not to the image (Docker: bind mounts).
    const { driver, layer } = storage;
    const source = record.source.kind === 'image'
      ? driver.layerArchive(layer, record.source.lowerDirs, signal, GENERATED_FILES)
      : containerMergedArchive(driver, layer, [record.source.dir], signal, GENERATED_FILES);
    const hash = createHash('sha256');
    await pipeline(
      Readable.from(source),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          hash.update(c);
          yield c;
        }
      },
      createWriteStream(layerPath, { mode: 0o600 }),
    );
    const diffId = `sha256:${hash.digest('hex')}`;
    const layerSize = (await stat(layerPath)).size;

    let baseConfig: ImageConfig;
    const baseLayers: Array<{ path: string; size: number }> = [];
    if (record.source.kind === 'image') {
      const base = await images.rootfsFor(record.source.imageId);
      baseConfig = base.config;
      for (const l of base.image.layers) baseLayers.push({ path: images.store.blobPath(l.digest), size: l.size });
    } else {
      baseConfig = { architecture: GOARCH[arch()] ?? arch(), os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, history: [] };
    }
    const created = new Date().toISOString();
    const config: ImageConfig = {
      ...baseConfig,
      created,
      ...(options.author ? { author: options.author } : {}),
      config: committedConfig(record, options.changes ?? []),
      rootfs: { type: 'layers', diff_ids: [...baseConfig.rootfs.diff_ids, diffId] },
      history: [
        ...(baseConfig.history ?? []),
        { created, created_by: record.argv.join(' '), ...(options.message ? { comment: options.message } : {}), ...(options.author ? { author: options.author } : {}) },
      ],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configHex = createHash('sha256').update(configBytes).digest('hex');
    const layers = [...baseLayers, { path: layerPath, size: layerSize }];
    const layerNames = layers.map((_, i) => `layers/${i}/layer.tar`);
    const manifest = Buffer.from(JSON.stringify([{ Config: `${configHex}.json`, RepoTags: options.ref ? [options.ref] : [], Layers: layerNames }]));
    const members = [
      { name: 'manifest.json', size: manifest.length, body: async function* () { yield manifest; } },
      { name: `${configHex}.json`, size: configBytes.length, body: async function* () { yield configBytes; } },
      ...layers.map((l, i) => ({ name: layerNames[i]!, size: l.size, body: () => createReadStream(l.path) as AsyncIterable<Buffer> })),
    ];
    await images.load(archiveOf(members), signal ? { signal } : {});
    return `sha256:${configHex}`;
  } finally {
    await rm(layerPath, { force: true });
  }
}
