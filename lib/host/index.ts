/**
 * Facts about the host berth runs on that no service owns: kernel features, the user's id
 * mapping helpers and ranges, the filesystem under a directory, the distribution. Read by
 * `rt.info()`; every probe reports a missing piece instead of throwing.
 * @module
 */
export { kernelVersionOf, probeKernelFeatures, seccompFeature, userNamespacesFeature, type FeatureProbe, type KernelFeatures, type ProbeMethod, type ProcSource } from './kernel-features.js';
export { parseSubIds, probeIdMapping, userNameOf, type IdMapHelper, type IdMappingInfo, type IdMappingMode, type SubIdRange } from './id-mapping.js';
export { filesystemTypeOf } from './filesystem.js';
export { operatingSystem } from './os-release.js';
