/**
 * berth without root (issue 15): where a non-root user's state and runtime files live, the
 * user namespace its containers run in, and what the host must allow first. Below `launch/`,
 * which applies it to every launch of a non-root process.
 * @module
 */
export { ROOTFUL_RUNTIME_DIR, ROOTFUL_STATE_DIR, defaultRuntimeDir, delegatedCgroupParent, defaultStateDir, type UserDirsSource } from './paths.js';
export { CONTAINER_IDS, checkIdsMapped, rootlessIdMaps, subordinateFix, type IdMapLine, type RootlessIdMaps } from './id-maps.js';
export { assertUserNamespaces } from './preflight.js';
export { isRootless } from './identity.js';
export { heldUsernsPid, leaseHeldUserns, releaseHeldUserns, retainHeldUserns, type HeldUsernsLease } from './held-userns.js';
