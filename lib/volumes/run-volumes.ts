/**
 * Volumes for one `run()`: resolved before the launch, released when it ends. The run is the
 * volumes' user (in-use for as long as it runs, in every process); its anonymous volumes (mounts
 * without a source, the image's `Volumes`) live for the run only, as with `docker run --rm`.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { normalizeRunOptions, type RunOptions } from '../launch/run-options.js';
import type { CopyUpSource } from './copy-up.js';
import { hasVolumeMounts, resolveVolumeMounts } from './volume-mounts.js';
import type { VolumeService } from './volume-service.js';

export interface RunVolumeContext {
  /** Where copy-up reads the image's files (layers top first, or the rootfs dir); absent: none. */
  copyUp?: CopyUpSource;
  /** The image config's `Volumes` paths. */
  imageVolumes?: readonly string[];
}

/**
 * Calls `launch` with the options' volume mounts (and the image's `Volumes`) turned into binds
 * of the volumes' data directories, and releases the volumes once it settles. Without any
 * volume it calls `launch` with the options unchanged and touches nothing.
 */
export async function withRunVolumes<T>(
  volumes: VolumeService,
  ctx: RunVolumeContext,
  options: RunOptions | undefined,
  launch: (options: RunOptions | undefined) => Promise<T>,
): Promise<T> {
  if (!hasVolumeMounts(options) && (ctx.imageVolumes?.length ?? 0) === 0) return launch(options);
  // Every option is checked before the state directory is touched.
  normalizeRunOptions(options ?? {});
  const resolved = await resolveVolumeMounts(options?.mounts, {
    volumes,
    user: { kind: 'run', id: randomBytes(16).toString('hex') },
    ...(ctx.copyUp ? { copyUp: ctx.copyUp } : {}),
    ...(ctx.imageVolumes ? { imageVolumes: ctx.imageVolumes } : {}),
    ...(options?.signal ? { signal: options.signal } : {}),
  });
  try {
    return await launch({ ...options, mounts: resolved.mounts });
  } finally {
    try {
      await resolved.release({ removeAnonymous: true });
    } catch (error) {
      // The run's own result matters more; a volume left behind is reported, and a stale
      // in-use record is ignored by everyone once this process is gone.
      process.emitWarning(`berth: releasing the volumes of a run failed: ${(error as Error).message}`, { code: 'BERTH_VOLUME_RELEASE' });
    }
  }
}
