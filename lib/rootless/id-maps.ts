/**
 * The user namespace a rootless container runs in: container root is the caller, and, with
 * `newuidmap`/`newgidmap` and a subordinate range, container ids 1..65535 are the first 65535
 * ids of the range (Podman's layout). Without them, only root is mapped (a single-id map):
 * files the container gives to other ids cannot exist, so a user other than root in the
 * container is refused before the launch with the reason and the fix.
 * @module
 */
import { UnsupportedError } from '../errors.js';
import { probeIdMapping, type IdMappingInfo, type SubIdRange } from '../host/index.js';

/** One line of an id map (the shape of the launch option `userns`). */
export interface IdMapLine {
  containerId: number;
  hostId: number;
  size: number;
}

/** The maps of a rootless container and how they are written. */
export interface RootlessIdMaps {
  readonly mode: 'subordinate' | 'single';
  /** Why this mode (from {@link probeIdMapping}). */
  readonly reason: string;
  readonly uidMap: IdMapLine[];
  readonly gidMap: IdMapLine[];
  /** The setuid helpers that write the maps; absent for a single-id map (the caller writes it). */
  readonly helpers?: { newuidmap: string; newgidmap: string };
}

/** Ids a container has besides root: 65535, Podman's default (0..65535 in all). */
export const CONTAINER_IDS = 65536;

function firstRange(ranges: readonly SubIdRange[]): SubIdRange | undefined {
  return ranges.find((r) => r.count >= CONTAINER_IDS - 1);
}

/** The maps for a caller with `uid`/`gid` given its id-mapping facts (default: probed now). */
export function rootlessIdMaps(uid: number, gid: number, info: IdMappingInfo = probeIdMapping(uid)): RootlessIdMaps {
  const root = (hostId: number): IdMapLine => ({ containerId: 0, hostId, size: 1 });
  const subuid = firstRange(info.subuid);
  const subgid = firstRange(info.subgid);
  if (info.mode === 'subordinate' && subuid && subgid && info.newuidmap.path && info.newgidmap.path) {
    return {
      mode: 'subordinate',
      reason: info.reason,
      uidMap: [root(uid), { containerId: 1, hostId: subuid.start, size: CONTAINER_IDS - 1 }],
      gidMap: [root(gid), { containerId: 1, hostId: subgid.start, size: CONTAINER_IDS - 1 }],
      helpers: { newuidmap: info.newuidmap.path, newgidmap: info.newgidmap.path },
    };
  }
  return { mode: 'single', reason: info.reason, uidMap: [root(uid)], gidMap: [root(gid)] };
}

/** The fix for a single-id map, from what was missing. */
export function subordinateFix(userName: string): string {
  return `apt-get install uidmap (setuid newuidmap/newgidmap), and as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${userName}`;
}

/**
 * Refuses a container user the map cannot hold (only 0 exists in a single-id map; 0..65535 in
 * a subordinate one), before the launch rather than as an EINVAL of setresuid in the child.
 * @throws UnsupportedError naming the ids, the mode and the fix.
 */
export function checkIdsMapped(maps: RootlessIdMaps, user: { uid: number; gid: number; additionalGids: readonly number[] }, userName: string): void {
  const inMap = (id: number, map: readonly IdMapLine[]) => map.some((m) => id >= m.containerId && id < m.containerId + m.size);
  const missing = [
    ...(inMap(user.uid, maps.uidMap) ? [] : [`uid ${user.uid}`]),
    ...[user.gid, ...user.additionalGids].filter((g) => !inMap(g, maps.gidMap)).map((g) => `gid ${g}`),
  ];
  if (missing.length === 0) return;
  const why = maps.mode === 'single' ? `a single-id map holds only root (${maps.reason})` : `the subordinate map holds ids 0..${CONTAINER_IDS - 1}`;
  const fix = maps.mode === 'single' ? subordinateFix(userName) : 'run the container as a user below 65536';
  throw new UnsupportedError(`user: the container's ${missing.join(', ')} cannot exist without root: ${why}. Fix: ${fix}`);
}
