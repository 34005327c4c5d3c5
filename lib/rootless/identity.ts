/**
 * Whether this process is rootless. Decided by the effective uid alone: a root process without
 * some capability (no CAP_SYS_RESOURCE here) is still rootful, with the host's ids.
 * @module
 */

/** True when this process is not root, so its containers need a user namespace of their own. */
export function isRootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0;
}
