/**
 * User-namespace id maps: explicit, or `'auto'`.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { IdMapping, RunOptions } from './run-options.js';

/**
 * `'auto'` maps container ids 0..65535 onto a host range far above any real account. The
 * range is chosen per process so that two containers of one process share it (like Docker's
 * single `userns-remap` range); files they create belong to no host user.
 */
export const AUTO_HOST_BASE = 0x4000_0000;
export const AUTO_SIZE = 65536;

function render(maps: IdMapping[], option: string): string {
  // The kernel takes at most 340 lines and refuses overlapping ranges; catch the easy mistakes here.
  if (maps.length > 340) throw new ValidationError(option, 'at most 340 ranges');
  const sorted = [...maps].sort((a, b) => a.containerId - b.containerId);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.containerId < sorted[i - 1]!.containerId + sorted[i - 1]!.size) {
      throw new ValidationError(option, `ranges overlap at container id ${sorted[i]!.containerId}`);
    }
  }
  return maps.map((m) => `${m.containerId} ${m.hostId} ${m.size}\n`).join('');
}

/** The uid_map and gid_map texts the launcher writes for the child. */
export function resolveIdMaps(userns: NonNullable<RunOptions['userns']>): { uidMap: string; gidMap: string } {
  if (userns === 'auto') {
    const line = `0 ${AUTO_HOST_BASE} ${AUTO_SIZE}\n`;
    return { uidMap: line, gidMap: line };
  }
  return { uidMap: render(userns.uidMap, 'userns.uidMap'), gidMap: render(userns.gidMap, 'userns.gidMap') };
}
