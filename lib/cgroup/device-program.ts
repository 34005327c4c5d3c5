/**
 * The cgroup v2 device allow-list, loaded once per process and attached to each container's
 * cgroup (see lib/security/device-filter.ts for the program and why it exists).
 * @module
 */
import { fromNativeError, native } from '../native.js';
import { deviceFilterInsns, encodeBpfInsns } from '../security/device-filter.js';
import { DEFAULT_DEVICE_RULES } from '../security/device-rules.js';

let programFd: number | undefined;

/** Attaches the default device program to the cgroup v2 directory `dir`. */
export function attachDefaultDeviceFilter(dir: string): void {
  try {
    // One program serves every container: the kernel verifies it once, not per start.
    programFd ??= native().loadDeviceFilter(encodeBpfInsns(deviceFilterInsns(DEFAULT_DEVICE_RULES)));
    native().attachDeviceFilter(dir, programFd);
  } catch (error) {
    throw fromNativeError(error);
  }
}
