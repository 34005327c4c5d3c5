/**
 * Paths hidden or made read-only inside every non-privileged container: Docker's lists.
 * @module
 */

/**
 * Hidden: an empty read-only tmpfs over a directory, /dev/null over a file. They expose host
 * kernel memory, keys, timers and hardware state that a container has no business reading.
 */
export const MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/asound',
  '/proc/acpi',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
]);

/** Bound read-only: writable procfs knobs that act on the whole host. */
export const READONLY_PATHS: readonly string[] = Object.freeze([
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
]);
