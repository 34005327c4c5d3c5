/**
 * Resolves the `image` option at create time into what a container keeps: the image's
 * layer directories and config (so later starts need no image lookup), a rootfs directory,
 * or the host. An image reference that is not in the store is pulled, as `docker create` does.
 * @module
 */
import { statSync } from 'node:fs';
import { NotFoundError, ValidationError, isBerthError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { ContainerConfig } from '../image/manifest.js';
import type { ContainerImage } from './container-options.js';
import type { ContainerSource } from './container-record.js';

export interface ResolvedSource {
  source: ContainerSource;
  imageConfig?: ContainerConfig;
}

export async function resolveImageSource(images: ImageService, image: ContainerImage, signal?: AbortSignal): Promise<ResolvedSource> {
  if (typeof image === 'object' && 'host' in image) return { source: { kind: 'host' } };
  if (typeof image === 'object' && 'rootfs' in image) {
    let isDir: boolean;
    try {
      isDir = statSync(image.rootfs).isDirectory();
    } catch {
      throw new NotFoundError(`image.rootfs: "${image.rootfs}" does not exist`, { option: 'image.rootfs', path: image.rootfs });
    }
    if (!isDir) throw new ValidationError('image.rootfs', `"${image.rootfs}" is not a directory`);
    return { source: { kind: 'rootfs', dir: image.rootfs } };
  }
  const ref = typeof image === 'string' ? image : image.id;
  if (typeof image === 'string') {
    try {
      await images.get(ref);
    } catch (error) {
      if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
      await images.pull(ref, signal ? { signal } : {});
    }
  }
  const { lowerDirs, config, image: record } = await images.rootfsFor(ref);
  return {
    source: { kind: 'image', ref, imageId: record.id, lowerDirs, chainIds: record.layers.map((l) => l.chainId) },
    ...(config.config ? { imageConfig: config.config } : {}),
  };
}
