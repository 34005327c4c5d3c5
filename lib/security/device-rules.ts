/**
 * The devices a container may use: one list, enforced by the v1 devices controller
 * (`devices.allow`) and by a BPF_CGROUP_DEVICE program on v2 (./device-filter.ts).
 * @module
 */

/** One device-cgroup rule: `type major:minor access`. */
export interface DeviceRule {
  readonly type: 'c' | 'b';
  readonly major: number;
  readonly minor: number | '*';
  readonly access: string;
}

/**
 * The only devices a container may open or mknod; everything else is denied. Berth keeps
 * CAP_MKNOD (Docker's default set), so without this list a container could mknod the host's
 * disks and read them. On v1 the driver writes it to `devices.allow`; on v2, which has no
 * devices controller, it becomes a BPF_CGROUP_DEVICE program (./device-filter.ts).
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = Object.freeze([
  { type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { type: 'c', major: 5, minor: 1, access: 'rwm' }, // console
  { type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { type: 'c', major: 136, minor: '*', access: 'rwm' }, // /dev/pts/*
] as const);

/** The kernel's text form of a device rule, e.g. `c 1:3 rwm`. */
export function deviceRuleString(rule: DeviceRule): string {
  return `${rule.type} ${rule.major}:${rule.minor} ${rule.access}`;
}
