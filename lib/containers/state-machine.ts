/**
 * Which operation each state allows, with Docker's wording for refusals. Pure, so every
 * transition is unit-tested; the container checks under its lock and throws the result.
 *
 *   created ──start──> running ──exit──> exited ──start──> running
 *                      running ──pause──> paused ──unpause──> running
 *                      running ──exit (restart policy)──> restarting ──backoff──> running
 *   any ──remove──> removing ──> (gone)      removal that fails half-way ──> dead
 * @module
 */
import { ConflictError } from '../errors.js';
import type { ContainerStatus } from './container-record.js';

export type ContainerOperation = 'start' | 'stop' | 'kill' | 'pause' | 'unpause' | 'exec' | 'attach' | 'resize' | 'remove' | 'rename' | 'stats' | 'top';

/** Why `op` is refused in `status`, or undefined when it is allowed. */
export function refusal(op: ContainerOperation, status: ContainerStatus, name: string, opts: { force?: boolean } = {}): string | undefined {
  const c = `container ${name}`;
  if (status === 'removing' && op !== 'remove') return `${c} is marked for removal and cannot be used`;
  if (status === 'dead' && op !== 'remove') return `${c} is dead (its removal failed); remove it with force`;
  switch (op) {
    case 'start':
      if (status === 'running') return `${c} is already running`;
      if (status === 'paused') return `cannot start a paused container ${name}, try unpause instead`;
      if (status === 'restarting') return `${c} is restarting`;
      return undefined;
    case 'stop':
    case 'rename':
      return undefined;
    case 'kill':
      return status === 'running' || status === 'paused' || status === 'restarting' ? undefined : `${c} is not running`;
    case 'pause':
      if (status === 'paused') return `${c} is already paused`;
      if (status === 'restarting') return `${c} is restarting, wait until it is running`;
      return status === 'running' ? undefined : `${c} is not running`;
    case 'unpause':
      return status === 'paused' ? undefined : `${c} is not paused`;
    case 'exec':
      if (status === 'paused') return `${c} is paused, unpause the container before exec`;
      if (status === 'restarting') return `${c} is restarting, wait until the container is running`;
      return status === 'running' ? undefined : `${c} is not running`;
    case 'attach':
    case 'resize':
    case 'top':
    case 'stats':
      if (status === 'restarting') return `${c} is restarting, wait until the container is running`;
      return status === 'running' || status === 'paused' ? undefined : `${c} is not running${op === 'attach' ? ': you cannot attach to a stopped container, start it first' : ''}`;
    case 'remove':
      if (status === 'removing') return `removal of ${c} is already in progress`;
      if ((status === 'running' || status === 'paused' || status === 'restarting') && !opts.force) {
        return `cannot remove ${status} ${c}: stop the container before removing or use remove({ force: true })`;
      }
      return undefined;
  }
}

/** Throws a {@link ConflictError} when `op` does not fit `status`. */
export function assertAllowed(op: ContainerOperation, status: ContainerStatus, name: string, opts: { force?: boolean } = {}): void {
  const why = refusal(op, status, name, opts);
  if (why !== undefined) throw new ConflictError(why);
}
