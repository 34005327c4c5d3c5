/**
 * `inspect()`: a container in the shape of `docker inspect`, built from config.json and
 * state.json. Durations are Docker's (nanoseconds in Healthcheck, seconds in StopTimeout).
 * @module
 */
import { networkKind } from '../network/attach.js';
import { exposedPortsOf, type NetworkSettings } from './container-network.js';
import { isActive, type ContainerRecord, type ContainerState } from './container-record.js';
import { storedMounts } from './container-volumes.js';
import type { ContainerLayerPaths, StorageDriver, StorageDriverName } from '../storage/driver.js';
import { overlayDriver } from '../storage/overlay-driver.js';
import type { HealthLogEntry } from './healthcheck.js';

export interface ContainerInspect {
  Id: string;
  /** RFC 3339. */
  Created: string;
  Path: string;
  Args: string[];
  State: {
    Status: ContainerState['status'];
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    Dead: boolean;
    Pid: number;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
    Health?: { Status: string; FailingStreak: number; Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }> };
    /**
     * berth's own: present when the run has no cgroup (the `limits` option, e.g. rootless on
     * cgroup v1): the limit options not in force, why, and the fix.
     */
    LimitsSkipped?: { Options: string[]; Reason: string; Fix: string };
  };
  /** The image id (`sha256:…`), or '' for a rootfs directory or host container. */
  Image: string;
  /** `/name`, as Docker. */
  Name: string;
  RestartCount: number;
  LogPath: string;
  Platform: 'linux';
  HostConfig: {
    Memory: number;
    MemorySwap: number;
    NanoCpus: number;
    CpuShares: number;
    CpusetCpus: string;
    PidsLimit: number;
    Privileged: boolean;
    ReadonlyRootfs: boolean;
    CapAdd: string[] | null;
    CapDrop: string[] | null;
    /** `none`, `host`, `container:<ref>`, or the primary network's name (`bridge`, a user network). */
    NetworkMode: string;
    /** Published ports as asked (`HostPort` '' when berth picks one; the chosen one is in NetworkSettings.Ports). */
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    Dns: string[];
    ExtraHosts: string[] | null;
    RestartPolicy: { Name: string; MaximumRetryCount: number };
    AutoRemove: boolean;
    Init: boolean;
    LogConfig: { Type: 'json-file'; Config: Record<string, string> };
  };
  /** The storage driver of the container's root and where its layers are (`host` for `{ host: true }`). */
  GraphDriver: { Name: StorageDriverName | 'host'; Data: Record<string, string> | null };
  /** Volumes have their `Name` and `Driver`; `Source` is the data directory on the host. */
  Mounts: Array<{ Type: 'bind' | 'tmpfs' | 'volume'; Name?: string; Driver?: 'local'; Source: string; Destination: string; RW: boolean; Propagation: string }>;
  Config: {
    Hostname: string;
    User: string;
    Env: string[];
    Cmd: string[] | null;
    Entrypoint: string[] | null;
    Image: string;
    WorkingDir: string;
    Labels: Record<string, string>;
    StopSignal: string;
    /** Seconds. */
    StopTimeout: number;
    Tty: boolean;
    OpenStdin: boolean;
    /** The image's exposed ports, `exposedPorts` and the published ones: `{ "8080/tcp": {} }`. */
    ExposedPorts: Record<string, Record<string, never>>;
    Healthcheck?: { Test: string[]; Interval: number; Timeout: number; StartPeriod: number; StartInterval: number; Retries: number };
  };
  NetworkSettings: NetworkSettings;
  /** berth's own facts. */
  Berth: { Lifetime: ContainerRecord['lifetime']; OwnerPid: number | null; Source: ContainerRecord['source']['kind'] };
}

function imageName(record: ContainerRecord): string {
  const s = record.source;
  return s.kind === 'image' ? s.ref : s.kind === 'rootfs' ? `rootfs:${s.dir}` : 'host';
}

export function imageAttribute(record: ContainerRecord): string {
  return imageName(record);
}

function healthLog(log: HealthLogEntry[]) {
  return log.map((l) => ({ Start: l.start, End: l.end, ExitCode: l.exitCode, Output: l.output }));
}

function graphDriverOf(driver: StorageDriver, layer: ContainerLayerPaths, lowerDirs: readonly string[]): { Name: StorageDriverName; Data: Record<string, string> } {
  return { Name: driver.name, Data: driver.graphDriverData(layer, lowerDirs) };
}

/** `NetworkMode` as Docker reports it: the primary network's name for bridge networking. */
export function networkModeOf(record: Pick<ContainerRecord, 'options'>): string {
  const o = record.options;
  if (networkKind(o) === 'bridge') return o.network ?? o.networks![0]!.network;
  return o.network ?? 'none';
}

function portBindings(record: Pick<ContainerRecord, 'options'>): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of record.options.ports ?? []) (out[`${p.container}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: p.host === 0 ? '' : String(p.host) });
  return out;
}

export function buildInspect(
  record: ContainerRecord,
  state: ContainerState,
  paths: { log: string; upper: string; work: string; volumeData(name: string): string; storage?: StorageDriver },
  network: NetworkSettings,
): ContainerInspect {
  const o = record.options;
  const s = record.source;
  const hc = record.healthcheck;
  const ms2ns = (ms: number) => Math.round(ms * 1e6);
  return {
    Id: record.id,
    Created: record.created,
    Path: record.argv[0]!,
    Args: record.argv.slice(1),
    State: {
      Status: state.status,
      Running: isActive(state.status),
      Paused: state.status === 'paused',
      Restarting: state.status === 'restarting',
      OOMKilled: state.oomKilled,
      Dead: state.status === 'dead',
      Pid: state.pid,
      ExitCode: state.exitCode,
      Error: state.error,
      StartedAt: state.startedAt,
      FinishedAt: state.finishedAt,
      ...(state.health ? { Health: { Status: state.health.status, FailingStreak: state.health.failingStreak, Log: healthLog(state.health.log) } } : {}),
      ...(state.limitsSkipped ? { LimitsSkipped: { Options: [...state.limitsSkipped.options], Reason: state.limitsSkipped.reason, Fix: state.limitsSkipped.fix } } : {}),
    },
    Image: s.kind === 'image' ? s.imageId : '',
    Name: `/${record.name}`,
    RestartCount: state.restartCount,
    LogPath: paths.log,
    Platform: 'linux',
    HostConfig: {
      Memory: o.memory ?? 0,
      MemorySwap: o.memorySwap ?? 0,
      NanoCpus: o.cpus !== undefined ? Math.round(o.cpus * 1e9) : 0,
      CpuShares: o.cpuShares ?? 0,
      CpusetCpus: o.cpuset ?? '',
      PidsLimit: o.pids ?? 0,
      Privileged: o.privileged === true,
      ReadonlyRootfs: o.readonlyRootfs === true,
      CapAdd: o.capAdd ?? null,
      CapDrop: o.capDrop ?? null,
      NetworkMode: networkModeOf(record),
      PortBindings: portBindings(record),
      Dns: o.dns ?? [],
      ExtraHosts: o.extraHosts ? o.extraHosts.map((h) => `${h.host}:${h.ip}`) : null,
      RestartPolicy: { Name: record.restart.name, MaximumRetryCount: record.restart.maximumRetryCount },
      AutoRemove: record.autoRemove,
      Init: o.init === true,
      LogConfig: { Type: 'json-file', Config: { 'max-size': String(record.log.maxSize), 'max-file': String(record.log.maxFiles) } },
    },
    GraphDriver:
      s.kind === 'host'
        ? { Name: 'host', Data: null }
        : graphDriverOf(paths.storage ?? overlayDriver, { upperDir: paths.upper, workDir: paths.work }, s.kind === 'image' ? s.lowerDirs : [s.dir]),
    Mounts: storedMounts(record).map((m) =>
      m.type === 'bind'
        ? { Type: 'bind' as const, Source: m.source, Destination: m.target, RW: m.readonly !== true, Propagation: m.propagation ?? 'rprivate' }
        : m.type === 'volume'
          ? { Type: 'volume' as const, Name: m.name, Driver: 'local' as const, Source: paths.volumeData(m.name), Destination: m.target, RW: !m.readonly, Propagation: '' }
          : { Type: 'tmpfs' as const, Source: '', Destination: m.target, RW: true, Propagation: '' },
    ),
    Config: {
      Hostname: record.hostname,
      User: o.user ?? record.imageConfig?.User ?? '',
      Env: record.env,
      Cmd: record.cmd ?? (record.entrypoint === null ? record.imageConfig?.Cmd ?? null : null),
      Entrypoint: record.entrypoint ?? record.imageConfig?.Entrypoint ?? null,
      Image: imageName(record),
      WorkingDir: o.workdir ?? record.imageConfig?.WorkingDir ?? '',
      Labels: { ...(record.imageConfig?.Labels ?? {}), ...record.labels },
      StopSignal: record.stopSignal,
      StopTimeout: Math.round(record.stopTimeoutMs / 1000),
      Tty: o.tty === true,
      OpenStdin: record.openStdin,
      ExposedPorts: exposedPortsOf(record),
      ...(hc
        ? { Healthcheck: { Test: hc.test, Interval: ms2ns(hc.intervalMs), Timeout: ms2ns(hc.timeoutMs), StartPeriod: ms2ns(hc.startPeriodMs), StartInterval: ms2ns(hc.startIntervalMs), Retries: hc.retries } }
        : {}),
    },
    NetworkSettings: network,
    Berth: { Lifetime: record.lifetime, OwnerPid: state.owner?.pid ?? null, Source: s.kind },
  };
}
