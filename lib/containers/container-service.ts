/**
 * `rt.containers`: create, find and list the containers of one state directory. Keeps one
 * {@link Container} object per id, so that every `get()` of a container sees the same events.
 * @module
 */
import { readFileSync, readdirSync } from 'node:fs';
import { hostname as hostHostname } from 'node:os';
import { join } from 'node:path';
import { cgroupsForHost } from '../launch/cgroup-setup.js';
import { commandFor } from '../launch/image-config.js';
import { DEFAULT_PATH } from '../launch/launch-plan.js';
import { ConflictError, NotFoundError, ValidationError, isBerthError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { ContainerConfig } from '../image/manifest.js';
import { networkServiceOf } from '../network/network-options.js';
import type { NetnsHolder, NetworkService } from '../network/network-service.js';
import type { NetworkState } from '../network/network-store.js';
import type { VolumesFromSource } from '../volumes/volume-mounts.js';
import type { VolumeService } from '../volumes/volume-service.js';
import { Container, type ContainerContext } from './container.js';
import { forgetContainerNetwork, networkSettingsOf, releaseContainerNetwork, summaryPorts, type NetworkSettings, type SummaryPort } from './container-network.js';
import { checkBindSources, normalizeCreateOptions, signalName, type ContainerCreateOptions } from './container-options.js';
import { allocateAutoRange, releaseAutoRange } from '../launch/userns.js';
import { initialState, isActive, type ContainerRecord, type ContainerSource, type ContainerState, type ContainerStatus } from './container-record.js';
import { releaseContainerVolumes, resolveContainerMounts, storedMounts } from './container-volumes.js';
import { EventHub, type EventSubscription, type EventsOptions } from './events.js';
import { journalPath } from './event-journal.js';
import { resolveHealthcheck } from './healthcheck.js';
import { resolveImageSource } from './image-source.js';
import { imageAttribute, networkModeOf } from './inspect.js';
import { generateName } from './names.js';
import { mergeRun } from './monitor-run.js';
import { reconcileAll, runMayHaveEnded, type ReconcileHooks } from './reconcile.js';
import { LivenessCache } from '../state/process-liveness.js';
import { ContainerFilesCache } from './record-cache.js';
import { StateStore, isContainerId, newContainerId } from './state-store.js';
import type { ContainerLayerPaths, StorageDriver } from '../storage/driver.js';
import { overlayDriver } from '../storage/overlay-driver.js';

/** Filters of {@link ContainerService.list}, Docker's names. */
export interface ContainerListFilters {
  /** Only these states. */
  status?: ContainerStatus | ContainerStatus[];
  /** `key` or `key=value`; every one must match. */
  label?: string | string[];
  /** Substring of the name, or a RegExp. */
  name?: string | RegExp;
  /** Id prefix. */
  id?: string;
}

export interface ContainerListOptions {
  /** Include containers that are not running. Default false (as `docker ps`). */
  all?: boolean;
  filters?: ContainerListFilters;
}

/** One row of {@link ContainerService.list} (Docker's `ContainerSummary`). */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string;
  /** Unix seconds. */
  Created: number;
  State: ContainerStatus;
  /** Human text: `Up 3 seconds`, `Exited (0) 2 minutes ago`. */
  Status: string;
  Labels: Record<string, string>;
  /**
   * Published ports (`{ IP, PrivatePort, PublicPort, Type }`) and exposed-only ones
   * (`{ PrivatePort, Type }`) while the container runs, as `docker ps`; empty otherwise.
   */
  Ports: SummaryPort[];
  /** `{ NetworkMode }`: `'none'`, `'host'`, `'container:<ref>'` or the primary network's name. */
  HostConfig: { NetworkMode: string };
  /** The container's networks and, while it runs, its addresses on them (as `inspect()`). */
  NetworkSettings: { Networks: NetworkSettings['Networks'] };
}

function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 1) return 'Less than a second';
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} minute${m === 1 ? '' : 's'}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? '' : 's'}`;
  return `${Math.round(h / 24)} days`;
}

export function statusText(state: ContainerState): string {
  switch (state.status) {
    case 'created': return 'Created';
    case 'running': return `Up ${ago(state.startedAt)}${state.health ? ` (${state.health.status === 'starting' ? 'health: starting' : state.health.status})` : ''}`;
    case 'paused': return `Up ${ago(state.startedAt)} (Paused)`;
    case 'restarting': return `Restarting (${state.exitCode}) ${ago(state.finishedAt)} ago`;
    case 'removing': return 'Removal In Progress';
    case 'dead': return 'Dead';
    case 'exited': return `Exited (${state.exitCode}) ${ago(state.finishedAt)} ago`;
  }
}

/** Containers whose files `list()` reads in one turn of the event loop. */
const LIST_SLICE = 200;

function asList<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Image Env, then PATH/HOSTNAME defaults where missing, then the options: what inspect shows as Config.Env. */
function resolvedEnv(image: ContainerConfig | undefined, options: Record<string, string | undefined> | undefined, hostname: string): string[] {
  const env = new Map<string, string>([['PATH', DEFAULT_PATH], ['HOSTNAME', hostname]]);
  for (const kv of image?.Env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  for (const [k, v] of Object.entries(options ?? {})) {
    if (v === undefined) env.delete(k);
    else env.set(k, v);
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** Fills a new container's layer when its driver needs one made (vfs: the copy of its image). */
async function prepareLayerOf(driver: StorageDriver, source: ContainerSource, layer: ContainerLayerPaths): Promise<void> {
  if (source.kind === 'host' || !driver.needsLayer) return;
  await driver.prepareContainerLayer(layer, source.kind === 'image' ? source.lowerDirs : [source.dir]);
}

export class ContainerService {
  readonly #store: StateStore;
  readonly #hub: EventHub;
  readonly #ctx: ContainerContext;
  readonly #objects = new Map<string, Container>();
  /** What `list()` read of each container, reused while its directory is unchanged. */
  readonly #files: ContainerFilesCache;
  /** Monitors and owners `list()` confirmed alive, so the next list reads /proc once, not per container. */
  readonly #liveness = new LivenessCache();

  /** @internal */
  constructor(root: string, services: { images: ImageService; volumes: VolumeService; networks: NetworkService; storage?: StorageDriver }, hub = new EventHub(journalPath(root))) {
    this.#store = new StateStore(root);
    this.#files = new ContainerFilesCache(this.#store.containersDir);
    this.#hub = hub;
    const { images, volumes, networks } = services;
    const hooks: ReconcileHooks = {
      exited: (record) => releaseContainerNetwork(networks, record),
      removing: async (record, state) => {
        try {
          await releaseContainerVolumes(volumes, record, state.removeVolumes === true);
        } finally {
          await forgetContainerNetwork(networks, record);
        }
      },
    };
    this.#ctx = { store: this.#store, hub, images, volumes, networks, storage: services.storage ?? overlayDriver, hooks, root, forget: (id) => this.#objects.delete(id) };
    // `network: 'container:<id or name>'` finds the running containers of this runtime.
    networks.setContainerResolver((ref) => this.#runningHolder(ref));
  }

  async #runningHolder(ref: string): Promise<NetnsHolder | undefined> {
    let c: Container;
    try {
      c = await this.get(ref);
    } catch (error) {
      if (isBerthError(error) && error instanceof NotFoundError) return undefined;
      throw error;
    }
    const { state } = await c.read();
    if (!isActive(state.status) || state.pid <= 0 || state.pidStartTime === undefined) return undefined;
    return { id: c.id, pid: { pid: state.pid, startTime: state.pidStartTime } };
  }

  #object(record: ContainerRecord): Container {
    let c = this.#objects.get(record.id);
    if (!c) {
      c = new Container(this.#ctx, record);
      this.#objects.set(record.id, c);
    }
    return c;
  }

  /**
   * Creates a container (state `created`; nothing runs until `start()`). An image reference
   * that is not in the store is pulled first.
   * @throws ValidationError for a bad option; ConflictError when the name is taken;
   *   NotFoundError for a missing image, rootfs directory or bind source (`.option` is
   *   `mounts[i].source`, `.path` the source).
   */
  async create(options: ContainerCreateOptions): Promise<Container> {
    const n = normalizeCreateOptions(options);
    checkBindSources(n.mounts);
    const own = networkServiceOf<NetworkService>(options);
    if (own !== undefined && own !== this.#ctx.networks) {
      throw new ValidationError('network', 'is a Network of another runtime: get it from this runtime\'s networks');
    }
    const { source, imageConfig } = await resolveImageSource(this.#ctx.images, n.image);
    if (source.kind !== 'image' && n.cmd === null && n.entrypoint === null) {
      throw new ValidationError('cmd', 'a command is required without an image (an array of strings, e.g. ["sh", "-c", "echo hi"])');
    }
    const argv = commandFor(imageConfig, n.cmd ?? undefined, n.entrypoint ?? undefined);
    if (argv[0] === '') throw new ValidationError('cmd[0]', 'must not be empty');
    const volumesFrom: VolumesFromSource[] = [];
    for (const [i, v] of n.volumesFrom.entries()) {
      let from: Container;
      try {
        from = await this.get(v.container);
      } catch (error) {
        if (isBerthError(error) && error instanceof NotFoundError) throw new NotFoundError(`volumesFrom: no such container: ${v.container}`, { option: `volumesFrom[${i}]` });
        throw error;
      }
      volumesFrom.push({ mounts: storedMounts((await from.read()).record), ...(v.mode ? { mode: v.mode } : {}) });
    }
    const id = newContainerId();
    // userns 'auto': the container's own host id range, held until remove (lib/launch/userns.ts).
    const autoIds = n.run.userns === 'auto' ? await allocateAutoRange({ key: `container:${id}`, containerDir: this.#store.dir(id) }) : undefined;
    if (autoIds) n.run.userns = { uidMap: autoIds.uidMap, gidMap: autoIds.gidMap };
    const network = n.run.network ?? 'none';
    const hostname = n.run.hostname ?? (network === 'host' ? hostHostname() : id.slice(0, 12));
    const record: ContainerRecord = {
      version: 1,
      id,
      name: n.name ?? generateName(),
      created: new Date().toISOString(),
      source,
      ...(imageConfig ? { imageConfig } : {}),
      cmd: n.cmd,
      entrypoint: n.entrypoint,
      argv,
      env: resolvedEnv(imageConfig, n.run.env, hostname),
      options: n.run,
      hostname,
      labels: n.labels,
      restart: n.restart,
      autoRemove: n.autoRemove,
      healthcheck: resolveHealthcheck(n.healthcheck, imageConfig?.Healthcheck),
      lifetime: n.lifetime,
      stopSignal: n.stopSignal ?? (imageConfig?.StopSignal ? signalName(imageConfig.StopSignal, 'image StopSignal') : 'SIGTERM'),
      stopTimeoutMs: n.stopTimeoutMs,
      openStdin: n.openStdin,
      log: n.log,
    };
    // Volumes are attached before the container exists on disk: a crash in between leaves a
    // user record that is stale (no config.json, owner gone), never a container without them.
    const mounts = await resolveContainerMounts(this.#ctx.volumes, { id, source, imageConfig, mounts: n.mounts, volumesFrom });
    record.mounts = mounts.records;
    if (source.kind !== 'host') record.storageDriver = this.#ctx.storage.name;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.#store.create(record, initialState(), (layer) => prepareLayerOf(this.#ctx.storage, source, layer));
          break;
        } catch (error) {
          // A generated name that collides: draw another (bounded); a chosen name is the caller's conflict.
          if (n.name !== undefined || attempt >= 10 || !(isBerthError(error) && error instanceof ConflictError)) throw error;
          record.name = generateName();
        }
      }
    } catch (error) {
      await mounts.release({ removeAnonymous: true }).catch(() => undefined);
      if (autoIds) await releaseAutoRange(`container:${id}`).catch(() => undefined);
      throw error;
    }
    const c = this.#object(record);
    this.#hub.publish({
      type: 'container',
      action: 'create',
      id,
      name: record.name,
      time: record.created,
      attributes: { name: record.name, image: imageAttribute(record), ...Object.fromEntries(Object.entries(record.labels).map(([k, v]) => [`label.${k}`, v])) },
    });
    return c;
  }

  /** By full id, name (with or without Docker's leading `/`), or unambiguous id prefix. */
  async get(idOrName: string): Promise<Container> {
    if (typeof idOrName !== 'string' || idOrName === '') throw new ValidationError('idOrName', 'must be a container id or name');
    const key = idOrName.startsWith('/') ? idOrName.slice(1) : idOrName;
    let id: string | undefined;
    if (isContainerId(key) && this.#store.exists(key)) id = key;
    if (id === undefined) {
      const byName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(key) ? await this.#store.nameHolder(key) : undefined;
      if (byName !== undefined && this.#store.exists(byName)) id = byName;
    }
    if (id === undefined && /^[0-9a-f]+$/.test(key)) {
      const matches = (await this.#store.listIds()).filter((i) => i.startsWith(key));
      if (matches.length > 1) throw new ConflictError(`container id prefix ${key} is ambiguous (${matches.length} containers)`);
      id = matches[0];
    }
    if (id === undefined) throw new NotFoundError(`no such container: ${idOrName}`);
    const record = await this.#store.readRecord(id);
    if (!record) throw new NotFoundError(`no such container: ${idOrName}`);
    const c = this.#object(record);
    // getMappedPort() answers synchronously, from what get() saw.
    await c.refreshMappedPorts();
    return c;
  }

  /** Containers as `docker ps` lists them (running only, unless `all`). */
  async list(options: ContainerListOptions = {}): Promise<ContainerSummary[]> {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
    const f = options.filters ?? {};
    const statuses = asList(f.status);
    const labels = asList(f.label);
    // The networks' state is read once for the whole list, and only if a container needs it.
    let snapshot: Promise<NetworkState> | undefined;
    const networkState = (): Promise<NetworkState> => (snapshot ??= this.#ctx.networks.store.read());
    const alive = this.#liveness.begin();
    const summarize = async (id: string): Promise<(ContainerSummary & { created: string }) | undefined> => {
      const files = this.#files.read(id);
      if (!files) return undefined; // removed meanwhile
      let { record, state } = files;
      if (isActive(state.status)) {
        if (runMayHaveEnded(record, state, files.run, alive)) {
          // Through the object (under the container's lock): an exit nobody recorded yet is discovered here.
          try {
            ({ record, state } = await this.#object(record).readFrom(files));
          } catch (error) {
            if (isBerthError(error) && error instanceof NotFoundError) return undefined;
            throw error;
          }
        } else if (record.lifetime === 'detached') {
          state = mergeRun(state, files.run);
        }
      }
      if (!options.all && statuses.length === 0 && state.status !== 'running' && state.status !== 'paused' && state.status !== 'restarting') return undefined;
      if (statuses.length > 0 && !statuses.includes(state.status)) return undefined;
      if (f.name !== undefined && !(typeof f.name === 'string' ? record.name.includes(f.name.replace(/^\//, '')) : f.name.test(record.name))) return undefined;
      const allLabels = { ...(record.imageConfig?.Labels ?? {}), ...record.labels };
      if (!labels.every((l) => {
        const eq = l.indexOf('=');
        return eq < 0 ? l in allLabels : allLabels[l.slice(0, eq)] === l.slice(eq + 1);
      })) return undefined;
      const network = await networkSettingsOf(this.#ctx.networks, record, isActive(state.status), networkState, state.userModeNetwork);
      return {
        Id: id,
        Names: [`/${record.name}`],
        Image: imageAttribute(record),
        ImageID: record.source.kind === 'image' ? record.source.imageId : '',
        Command: record.argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' '),
        Created: Math.floor(Date.parse(record.created) / 1000),
        State: state.status,
        Status: statusText(state),
        Labels: allLabels,
        Ports: summaryPorts(network),
        HostConfig: { NetworkMode: networkModeOf(record) },
        NetworkSettings: { Networks: network.Networks },
        created: record.created,
      };
    };
    const all = await this.#store.listIds();
    this.#files.retain(new Set(all));
    const ids = f.id === undefined ? all : all.filter((id) => id.startsWith(f.id!));
    const out: Array<ContainerSummary & { created: string }> = [];
    // The files are read synchronously (see record-cache.ts), a slice at a time so the event
    // loop is never held for more than one slice however many containers there are.
    for (let i = 0; i < ids.length; i += LIST_SLICE) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      for (const id of ids.slice(i, i + LIST_SLICE)) {
        const row = await summarize(id);
        if (row) out.push(row);
      }
    }
    // Newest first, as docker ps.
    return out.sort((a, b) => b.created.localeCompare(a.created)).map(({ created: _c, ...s }) => s);
  }

  /**
   * @internal `rt.close()`: ends the event subscriptions and cancels pending policy restarts.
   * Running `'process'` containers stay supervised until they exit.
   */
  async close(): Promise<void> {
    this.#hub.closeAll();
    for (const c of this.#objects.values()) await c.abandonPendingRestart();
  }

  /** Every container event of the state directory: recorded ones from `since`, then live ones. */
  events(options: EventsOptions = {}): EventSubscription {
    return this.#hub.subscribe(options);
  }

  /**
   * Repairs what crashed processes left (see `reconcile.ts`); `Runtime.open()` calls it.
   * Publishes an `exit` event for each container found dead (unless its monitor recorded it).
   * Resolves with the ids of detached containers whose runs were lost with all their
   * processes (for {@link restartLost}).
   */
  async reconcile(): Promise<string[]> {
    let driver;
    try {
      driver = cgroupsForHost().driver;
    } catch {
      driver = undefined; // no cgroup filesystem: nothing of ours can be there either
    }
    const findings = await reconcileAll(this.#store, driver, this.#ctx.hooks);
    for (const f of findings) {
      if (f.removed) this.#objects.delete(f.id);
      if (!f.exit || f.recorded) continue;
      this.#hub.publish({
        type: 'container',
        action: 'exit',
        id: f.id,
        name: f.name,
        time: new Date().toISOString(),
        attributes: { name: f.name, exitCode: String(f.exit.exitCode), ...(f.exit.signal ? { signal: f.exit.signal } : {}) },
      });
    }
    return findings.filter((f) => f.lost && !f.removed).map((f) => f.id);
  }

  /**
   * `Runtime.open({ restartPolicies: true })`, after the networks are reconciled: starts those
   * of `ids` (lost runs) whose policy is `always` or `unless-stopped` and that the user did not
   * stop, as Docker's daemon does when it starts. A container that cannot start is a process
   * warning (its state says it exited), never a failure of the whole open.
   */
  async restartLost(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      try {
        await (await this.get(id)).restartLost();
      } catch (error) {
        process.emitWarning(`berth: restarting container ${id} by its restart policy failed: ${(error as Error)?.message ?? String(error)}`, { code: 'BERTH_RESTART_POLICY' });
      }
    }
  }

  /** Whether any container of this runtime was created from a layer (the image service keeps such layers). */
  layerInUse(chainId: string): boolean {
    let names: string[];
    try {
      names = readdirSync(this.#store.containersDir);
    } catch {
      return false;
    }
    for (const id of names) {
      if (!isContainerId(id)) continue;
      try {
        const record = JSON.parse(readFileSync(join(this.#store.containersDir, id, 'config.json'), 'utf8')) as ContainerRecord;
        if (record.source.kind === 'image' && record.source.chainIds.includes(chainId)) return true;
      } catch {
        // being created or removed
      }
    }
    return false;
  }

  /** Whether the state dir has containers at all (reconciliation is skipped without). @internal */
  get stateDir(): string {
    return this.#store.containersDir;
  }
}
