/**
 * The loaded project: what `rt.compose.load()` resolved from the files (interpolated, merged,
 * normalised), before anything exists on the machine.
 * @module
 */
import type { ContainerCreateOptions } from '../containers/container-options.js';
import type { DependsOnEntry, PortEntry, VolumeEntry } from './service-syntax.js';

export type { DependsOnEntry, PortEntry, VolumeEntry };

/** A service's `build:` section. */
export interface ComposeBuild {
  /** Absolute path of the build context. */
  context: string;
  dockerfile?: string;
  args: Record<string, string>;
  target?: string;
}

/** One service of a loaded project. */
export interface ComposeService {
  readonly name: string;
  /** The image reference; for a `build:` service without one, compose's `<project>-<service>`. */
  readonly image: string;
  readonly build?: ComposeBuild;
  /** `'missing'` (default), `'always'`, `'never'`, `'build'`. */
  readonly pullPolicy?: 'missing' | 'always' | 'never' | 'build';
  readonly profiles: readonly string[];
  /** `deploy.replicas` or `scale`; default 1. */
  readonly replicas: number;
  readonly containerName?: string;
  readonly dependsOn: Readonly<Record<string, DependsOnEntry>>;
  /** The project's network keys this service joins, with its aliases and static address on each. */
  readonly networks: Readonly<Record<string, { aliases: string[]; ipv4Address?: string }>>;
  /** `host`, `none`, `bridge`, `service:<name>` or `container:<name>` instead of `networks`. */
  readonly networkMode?: string;
  readonly volumes: readonly VolumeEntry[];
  readonly ports: readonly PortEntry[];
  readonly labels: Readonly<Record<string, string>>;
  /**
   * The container options that come straight from the service's keys (command, environment,
   * user, limits, healthcheck, restart, ...). Image, name, labels, networks, ports and mounts are
   * added by the stack, which knows the project's names.
   */
  readonly options: Readonly<Omit<ContainerCreateOptions, 'image' | 'name' | 'labels' | 'network' | 'networks' | 'ports' | 'mounts'>>;
}

/** A top-level network. */
export interface ComposeNetwork {
  /** The key in the file. */
  readonly key: string;
  /** The name on the machine: `name:`, else `<project>_<key>`. */
  readonly name: string;
  /** Made elsewhere: never created nor removed by the stack. */
  readonly external: boolean;
  readonly internal: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly subnet?: string;
  readonly gateway?: string;
  readonly ipRange?: string;
}

/** A top-level volume. */
export interface ComposeVolume {
  readonly key: string;
  /** `name:`, else `<project>_<key>`. */
  readonly name: string;
  readonly external: boolean;
  readonly labels: Readonly<Record<string, string>>;
}

/** A loaded compose project. */
export interface ComposeProject {
  /** Compose v2's project name: `[a-z0-9][a-z0-9_-]*`. */
  readonly name: string;
  /** Absolute; relative paths of the files are resolved against it. */
  readonly projectDir: string;
  /** Absolute paths of the files, in merge order. */
  readonly files: readonly string[];
  /** Every service, enabled or not by profiles. */
  readonly services: Readonly<Record<string, ComposeService>>;
  /** The services enabled by the active profiles (services without `profiles` always are). */
  readonly enabled: readonly string[];
  readonly networks: Readonly<Record<string, ComposeNetwork>>;
  readonly volumes: Readonly<Record<string, ComposeVolume>>;
  /** Unknown keys and obsolete ones (`version`), one message each. */
  readonly warnings: readonly string[];
}
