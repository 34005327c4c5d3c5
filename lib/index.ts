/**
 * berth: run Linux containers straight from a Node process — no daemon, no CLI.
 *
 * ```ts
 * import { run } from 'berth';
 * const r = await run({ host: true }, ['sh', '-c', 'echo hello from $(hostname)']);
 * ```
 * @packageDocumentation
 */
export { run, spawn, type OutputOf, type RunResult } from './run.js';
export { Sandbox, type SandboxEvents, type SandboxExit } from './launch/sandbox.js';
export type { SpawnOptions, SpawnStdin } from './launch/spawn-options.js';
export { Pool, type PoolStats, type AcquireOptions } from './pool/pool.js';
export { PooledSandbox } from './pool/pooled-sandbox.js';
export type { PoolOptions, PoolSandboxOptions, PooledRunOptions } from './pool/pool-options.js';
export type { ReadyCondition, ReadyOnHealthcheck, ReadyOnLog, ReadyOnPort } from './pool/prewarm.js';
export type { ExitStatus } from './launch/container-process.js';
export { Runtime, DEFAULT_ROOT, type RuntimeOptions } from './runtime.js';
export type { LimitsInfo, RuntimeInfo, StorageInfo } from './runtime-info.js';
export type { LimitsMode, LimitsSkipped } from './launch/limits.js';
export type { StorageDriverName } from './storage/driver.js';
export type { Advice } from './runtime-advice.js';
export type { FeatureProbe, IdMapHelper, IdMappingInfo, IdMappingMode, KernelFeatures, ProbeMethod, SubIdRange } from './host/index.js';
export type { CgroupInfo, ControllerStatus, LimitController } from './cgroup/controllers.js';
export { CgroupUnavailableError } from './cgroup/nesting.js';
export type { NetworkToolsInfo } from './network/host-tools.js';
export type { UserModeStackInfo, UserModeStackName } from './network/usermode-stack.js';
export type {
  BindMount,
  BindPropagation,
  IdMapping,
  MountSpec,
  RunOptions,
  RunSource,
  TmpfsMount,
  Ulimit,
  VolumeMount,
  VolumeSource,
} from './launch/run-options.js';
export { Image, PullTask, type ImageEvents, type ImageLayer, type LayerProgress, type LayerState, type PullEvents, type PullProgress, type TotalProgress } from './image/image.js';
export type {
  ImageHistoryItem,
  ImageInspect,
  ImageListFilters,
  ImagePruneFilters,
  ImageService,
  ImportOptions,
  ListOptions,
  PruneOptions,
  PruneResult,
  PullOptions,
  RemoveResult,
  UnpackOptions,
} from './image/image-service.js';
export type { ContainerConfig, ImageConfig, Platform } from './image/manifest.js';
export type { BuildCachePruneResult, BuildOptions, BuildProgress } from './image/build-types.js';
export { BuildSourceNotFoundError, BuildStepFailedError, BuildUnsupportedError, DockerfileSyntaxError, type SourceLocation } from './build/build-errors.js';
export type { RegistryAuth } from './image/auth.js';
export {
  ContentTooLargeError,
  DigestMismatchError,
  ImageFormatError,
  InvalidReferenceError,
  LayerFormatError,
  LayerTooLargeError,
  PlatformNotFoundError,
  RegistryError,
  SizeMismatchError,
  UnauthorizedError,
  UnsafeLayerEntryError,
  type CappedContent,
} from './image/errors.js';
export { Volume, type VolumeEvents, type VolumeInspect, type VolumeMountEvent, type VolumeUserRef } from './volumes/volume.js';
export { VolumeService, type CreateVolumeOptions, type VolumePruneResult } from './volumes/volume-service.js';
export type { VolumeDriverOpts } from './volumes/volume-backend.js';
export type { VolumeFilters } from './volumes/volume-filters.js';
export { Container, type AttachSession, type ContainerRemoveOptions, type StopOptions, type WaitForExitOptions } from './containers/container.js';
export { ContainerService, type ContainerListFilters, type ContainerListOptions, type ContainerSummary } from './containers/container-service.js';
export type { ContainerCreateOptions, ContainerImage } from './containers/container-options.js';
export type { ContainerStatus, Lifetime } from './containers/container-record.js';
export { EventSubscription, type ContainerAction, type ContainerEvents, type EventsOptions, type ExitInfo, type RuntimeEvent } from './containers/events.js';
export type { ExecOptions, ExecResult, ExecSession } from './containers/exec.js';
export type { HealthcheckOptions, HealthLogEntry, HealthState, HealthStatus } from './containers/healthcheck.js';
export type { ContainerInspect } from './containers/inspect.js';
export type { EndpointSettings, NetworkSettings, PortBinding, SummaryPort } from './containers/container-network.js';
export { ContainerLogs, type LogEntry, type LogsOptions } from './containers/log-reader.js';
export type { RestartPolicy, RestartPolicyInput } from './containers/restart-policy.js';
export type { ContainerStats } from './containers/stats.js';
export type { TopProcess, TopResult } from './containers/top.js';
export type { Change, ChangeKind } from './containers/diff.js';
export type { CommitOptions } from './containers/commit.js';
export type { ArchiveOptions, ArchiveStream, CopyOptions, PathStat } from './containers/archive-copy.js';
export { ArchiveConflictError, UnsafeArchiveEntryError } from './containers/archive-errors.js';
export { WaitTimeoutError, type WaitEvidence, type WaitForHttpOptions, type WaitOptions } from './containers/wait-strategies.js';
export type {
  SeccompAction,
  SeccompArg,
  SeccompOperator,
  SeccompProfile,
  SeccompRule,
} from './security/seccomp/types.js';
export {
  AbortError,
  BerthError,
  ConflictError,
  NotFoundError,
  SystemError,
  UnsupportedError,
  ValidationError,
  isBerthError,
  type BerthErrorDetails,
} from './errors.js';
export { PrebuildMismatchError } from './native/prebuild.js';
export { Network, type ConnectOptions, type NetworkEndpointEvent, type NetworkEvents } from './network/network.js';
export type {
  NetworkAttachmentOptions,
  NetworkCreateOptions,
  NetworkInspect,
  NetworkMode,
  PortMapping,
  PortProtocol,
  PortSpec,
  PublishedPort,
} from './network/types.js';
export { NetworkService } from './network/network-service.js';
export { Compose } from './compose/compose.js';
export { Stack, type ComposeRuntime, type StackContainer, type StackDownOptions, type StackLogEntry, type StackUpOptions } from './compose/stack.js';
export type { ComposeLoadOptions } from './compose/load.js';
export type { ComposeBuild, ComposeNetwork, ComposeProject, ComposeService, ComposeVolume, DependsOnEntry, PortEntry, VolumeEntry } from './compose/model.js';
export { DependencyFailedError } from './compose/errors.js';
