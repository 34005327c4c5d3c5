/**
 * The sysctls berth sets in a container's own network namespace, as mount-plan operations the
 * child runs (`MountOpKind.WriteHost`): it is already in that namespace then, and net sysctls
 * resolve to the namespace of the process that opens them, so the host's values are never
 * touched. Planned only for a namespace the container owns (`none`, `bridge`); `host` and
 * `container:<id>` get nothing.
 * @module
 */
import { MountOpKind, type NativeMountOp } from '../native.js';
import type { NetworkKind } from './attach.js';

export const PING_GROUP_RANGE = '/proc/sys/net/ipv4/ping_group_range';

/** The highest gid `ping_group_range` takes (the kernel's `GID_T_MAX`). */
const GID_MAX = 2147483647;

/**
 * `ping_group_range` for a container: every group, so that unprivileged ICMP datagram sockets
 * (`ping` without CAP_NET_RAW, which berth does not grant by default) work for any user, as
 * Docker and Podman set it. In a user namespace the kernel reads the range in the writer's
 * namespace and refuses gids it does not map (EINVAL), so the range stops at the end of the
 * contiguous run of mapped groups that starts at 0.
 */
export function pingGroupRange(gidMap?: string): string {
  if (gidMap === undefined) return `0 ${GID_MAX}`;
  const ranges = gidMap
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number, number])
    .sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [inside, , size] of ranges) {
    if (inside > end) break;
    end = Math.max(end, inside + size);
  }
  // The child becomes gid 0 of its namespace before it runs the plan, so 0 is always mapped.
  return `0 ${Math.min(Math.max(end - 1, 0), GID_MAX)}`;
}

/** The writes for a container's network namespace; none unless it has one of its own. */
export function netnsSysctlOps(network: NetworkKind, gidMap?: string): NativeMountOp[] {
  if (network !== 'none' && network !== 'bridge') return [];
  return [{ kind: MountOpKind.WriteHost, target: PING_GROUP_RANGE, content: pingGroupRange(gidMap) }];
}
