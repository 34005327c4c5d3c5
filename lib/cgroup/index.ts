/**
 * Cgroups for berth's containers: a v1 and a v2 driver behind one {@link CgroupDriver}
 * interface, chosen at run time by {@link probeCgroups}. Layout, quirks and rules:
 * `docs/design/cgroups.md`.
 * @module
 */

export {
  BERTH_PARENT,
  CPU_PERIOD_US,
  DEFAULT_DEVICE_RULES,
  deviceRuleString,
  isCgroupId,
  nodeCgroupFs,
  parseCpuList,
  resolveLimits,
  validateCgroupId,
  type Cgroup,
  type CgroupDriver,
  type CgroupFs,
  type CgroupLimits,
  type CgroupOptions,
  type CgroupStats,
  type DeviceRule,
  type ResolvedLimits,
} from './types.js';
export { CgroupV1, CgroupV1Driver, parseBlkio, type CgroupV1DriverOptions, type V1Hierarchy } from './v1.js';
export { CgroupV2, CgroupV2Driver, cpuSharesToWeight, parseIoStat, type CgroupV2DriverOptions } from './v2.js';
export {
  detectCgroupLayout,
  parseMountinfo,
  parseProcCgroup,
  probeCgroups,
  type CgroupLayout,
  type MountEntry,
  type ProbeOptions,
  type ProcCgroupEntry,
} from './probe.js';
export { CgroupUnavailableError, cgroupWithin, placeInMount, type CgroupPlacement } from './nesting.js';
export { LIMIT_CONTROLLERS, describeCgroups, type CgroupInfo, type CgroupInfoSource, type ControllerStatus, type LimitController } from './controllers.js';
