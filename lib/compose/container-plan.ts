/**
 * A service replica -> the options of `rt.containers.create()`: compose's names and labels,
 * the project's networks (with the service name as an alias), published ports, mounts of the
 * project's volumes and of host paths; and the hash that tells `up` whether an existing
 * container still matches its service.
 * @module
 */
import { createHash } from 'node:crypto';
import type { ContainerCreateOptions } from '../containers/container-options.js';
import type { MountSpec } from '../launch/run-options.js';
import type { NetworkAttachmentOptions, PortMapping } from '../network/types.js';
import * as L from './labels.js';
import type { ComposeProject, ComposeService } from './model.js';

/** Compose's container name: `container_name`, else `<project>-<service>-<n>`. */
export function containerName(project: ComposeProject, service: ComposeService, n: number): string {
  return service.containerName ?? `${project.name}-${service.name}-${n}`;
}

function ports(service: ComposeService): PortMapping[] {
  return service.ports.map((p) => ({
    container: p.target,
    host: p.published === undefined ? 0 : Number(p.published),
    ...(p.host_ip !== undefined ? { hostIp: p.host_ip } : {}),
    protocol: p.protocol,
  }));
}

function mounts(project: ComposeProject, service: ComposeService): MountSpec[] {
  return service.volumes.map((v): MountSpec => {
    if (v.type === 'bind') return { type: 'bind', source: v.source!, target: v.target, readonly: v.read_only, ...(v.bind?.propagation ? { propagation: v.bind.propagation as 'rprivate' } : {}) };
    if (v.type === 'tmpfs') return { type: 'tmpfs', target: v.target, ...(v.tmpfs?.size !== undefined ? { size: v.tmpfs.size } : {}), ...(v.tmpfs?.mode !== undefined ? { mode: v.tmpfs.mode } : {}) };
    return {
      type: 'volume',
      ...(v.source !== undefined ? { source: project.volumes[v.source]!.name } : {}),
      target: v.target,
      readonly: v.read_only,
      ...(v.volume?.nocopy ? { nocopy: true } : {}),
    };
  });
}

function networking(project: ComposeProject, service: ComposeService): Pick<ContainerCreateOptions, 'network' | 'networks'> {
  const mode = service.networkMode;
  if (mode !== undefined) {
    if (mode.startsWith('service:')) {
      const other = project.services[mode.slice(8)]!;
      return { network: `container:${containerName(project, other, 1)}` };
    }
    return { network: mode };
  }
  const networks: NetworkAttachmentOptions[] = Object.entries(service.networks).map(([key, n]) => ({
    network: project.networks[key]!.name,
    // Peers find a service by its name on every network it joins, as with compose.
    aliases: [service.name, ...n.aliases],
    ...(n.ipv4Address !== undefined ? { ip: n.ipv4Address } : {}),
  }));
  return { networks };
}

/**
 * The create options of replica `n` (1-based), with its labels and config hash; `imageId` (the
 * image's config digest) is labelled and hashed, so new image content means a new container.
 */
export function createOptionsFor(project: ComposeProject, service: ComposeService, n: number, image: ContainerCreateOptions['image'], imageId?: string): ContainerCreateOptions {
  const options: ContainerCreateOptions = {
    ...service.options,
    image,
    name: containerName(project, service, n),
    lifetime: 'detached',
    ...networking(project, service),
    ...(service.ports.length > 0 ? { ports: ports(service) } : {}),
    ...(service.volumes.length > 0 ? { mounts: mounts(project, service) } : {}),
  };
  const labels = {
    ...service.labels,
    [L.PROJECT]: project.name,
    [L.SERVICE]: service.name,
    [L.NUMBER]: String(n),
    [L.ONEOFF]: 'False',
    [L.WORKING_DIR]: project.projectDir,
    [L.CONFIG_FILES]: project.files.join(','),
    ...(imageId !== undefined ? { [L.IMAGE]: imageId } : {}),
  };
  return { ...options, labels: { ...labels, [L.CONFIG_HASH]: configHash({ ...options, labels }) } };
}

/** A stable digest of the options: equal options, equal hash, whatever the key order. */
export function configHash(options: ContainerCreateOptions): string {
  return createHash('sha256').update(stableJson(options)).digest('hex');
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
