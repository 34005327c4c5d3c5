/**
 * Who uses a volume, recorded in its metadata under its lock so that every process sharing the
 * state directory sees the same answer, and when such a record is stale.
 *
 * - `run`: a `run()` in some process. Stale once that process is gone: the container died with
 *   it (parent-death signal), so the mount is gone too.
 * - `container`: a container (running or not: Docker refuses to remove a volume a stopped
 *   container still references). Stale once the container's directory is gone and the process
 *   that attached it is gone too (so a container being created, whose directory is not renamed
 *   into place yet, is never mistaken for a removed one).
 *
 * Processes are named by pid *and* start time (lib/state/process-identity.ts).
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, type ProcessIdentity } from '../state/process-identity.js';

export type VolumeUserKind = 'run' | 'container';

/** One user of a volume as stored in its metadata. */
export interface VolumeUser {
  kind: VolumeUserKind;
  /** The run's or the container's id. */
  id: string;
  /** The process that attached the volume. */
  owner: ProcessIdentity;
  /** RFC 3339. */
  since: string;
  /** Where it is mounted. */
  targets: string[];
}

/** Whether a recorded user no longer holds the volume. `root` is the state directory. */
export function isStaleUser(user: VolumeUser, root: string): boolean {
  if (user.kind === 'run') return !isAlive(user.owner);
  // The layout is fixed by docs/design/containers.md: <root>/containers/<id>/config.json.
  if (existsSync(join(root, 'containers', user.id, 'config.json'))) return false;
  return !isAlive(user.owner);
}

export function sameUser(a: Pick<VolumeUser, 'kind' | 'id'>, b: Pick<VolumeUser, 'kind' | 'id'>): boolean {
  return a.kind === b.kind && a.id === b.id;
}
