/**
 * `Stack`: a loaded compose project and what it does on the machine, through the runtime's
 * public services only (images, volumes, networks, containers, events), as a user's code
 * could. See docs/design/compose.md.
 * @module
 */
import { existsSync, mkdirSync } from 'node:fs';
import type { Container } from '../containers/container.js';
import type { ContainerService, ContainerSummary } from '../containers/container-service.js';
import type { EventSubscription } from '../containers/events.js';
import type { LogEntry } from '../containers/log-reader.js';
import { WaitTimeoutError } from '../containers/wait-strategies.js';
import { AbortError, NotFoundError, ValidationError, isBerthError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { NetworkService } from '../network/network-service.js';
import type { VolumeService } from '../volumes/volume-service.js';
import { waitForCondition } from './conditions.js';
import { createOptionsFor } from './container-plan.js';
import * as L from './labels.js';
import type { ComposeProject, ComposeService } from './model.js';
import { startOrder, stopOrder } from './order.js';

/** What a stack uses of a `Runtime`: its public services. */
export interface ComposeRuntime {
  readonly images: ImageService;
  readonly volumes: VolumeService;
  readonly networks: NetworkService;
  readonly containers: ContainerService;
}

/** Options of {@link Stack.up}. */
export interface StackUpOptions {
  /** Only these services (and what they depend on). Default: every service the profiles enable. */
  services?: string[];
  /**
   * Build (with `rt.images.build()`) the images of services with a `build:` section that are
   * not in the store (every time with `pull_policy: build`). Default true.
   */
  build?: boolean;
  /** `'missing'` (default): pull images not in the store; `'always'`; `'never'` (a missing image is a NotFoundError). */
  pull?: 'missing' | 'always' | 'never';
  /**
   * Resolve only when every started service runs (and is healthy if it has a healthcheck),
   * or, for a service others wait on with `service_completed_successfully`, has exited 0.
   * Default true.
   */
  wait?: boolean;
  /** Milliseconds for the whole `up`, waits included; then WaitTimeoutError. Default: none. */
  timeout?: number;
  signal?: AbortSignal;
}

/** Options of {@link Stack.down}. */
export interface StackDownOptions {
  /** Also remove the project's named volumes and the containers' anonymous ones. Default false. */
  volumes?: boolean;
  /** Also remove the project's containers whose service is no longer in the files. Default true. */
  removeOrphans?: boolean;
  /** Milliseconds each container gets between its stop signal and SIGKILL. Default: its `stop_grace_period` (10 s). */
  timeout?: number;
}

/** One line of {@link Stack.logs}. */
export interface StackLogEntry extends LogEntry {
  service: string;
  /** The container's name. */
  container: string;
}

/** A container of the stack as {@link Stack.ps} lists it. */
export interface StackContainer extends ContainerSummary {
  service: string;
  /** The replica number (1-based). */
  number: number;
}

function checkUpOptions(o: StackUpOptions): void {
  if (typeof o !== 'object' || o === null) throw new ValidationError('options', 'must be an object');
  const known = ['services', 'build', 'pull', 'wait', 'timeout', 'signal'];
  for (const key of Object.keys(o)) if (!known.includes(key)) throw new ValidationError(key, `is not an up() option (${known.join(', ')})`);
  if (o.services !== undefined && (!Array.isArray(o.services) || o.services.some((s) => typeof s !== 'string'))) throw new ValidationError('services', 'must be an array of service names');
  if (o.pull !== undefined && !['missing', 'always', 'never'].includes(o.pull)) throw new ValidationError('pull', 'must be "missing", "always" or "never"');
  for (const key of ['build', 'wait'] as const) if (o[key] !== undefined && typeof o[key] !== 'boolean') throw new ValidationError(key, 'must be a boolean');
  if (o.timeout !== undefined && (!Number.isFinite(o.timeout) || o.timeout <= 0)) throw new ValidationError('timeout', 'must be a positive number of milliseconds');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new ValidationError('signal', 'must be an AbortSignal');
}

/**
 * A compose project loaded by `rt.compose.load()`. Its containers are detached (they outlive
 * the process, as compose's outlive the CLI); any process can `load()` the same files and
 * `down()` them.
 */
export class Stack implements AsyncDisposable {
  /** The loaded project: names, services, networks, volumes. */
  readonly project: ComposeProject;
  readonly #rt: ComposeRuntime;
  /** The containers as last seen (load, up, ps, down): what the synchronous accessors answer from. */
  #known = new Map<string, Map<number, Container>>();

  /** @internal Made by `rt.compose.load()`. */
  constructor(rt: ComposeRuntime, project: ComposeProject) {
    this.#rt = rt;
    this.project = project;
  }

  /** The project name. */
  get name(): string {
    return this.project.name;
  }

  /** Unknown keys and what `ignoreUnsupported` ignored, one message each. */
  get warnings(): readonly string[] {
    return this.project.warnings;
  }

  /**
   * Creates the project's networks and volumes, then each service's containers in dependency
   * order, each after its `depends_on` conditions hold. Converges: a container whose options
   * are unchanged is left running (or started again); a changed one is recreated.
   * @throws ValidationError for a bad option or an unknown service; DependencyFailedError as
   *   soon as a dependency exits or turns unhealthy before its condition holds (naming it, its
   *   exit code and last output);
   *   WaitTimeoutError after `timeout`; AbortError on `signal`; the runtime's errors (pull,
   *   build, create, start).
   */
  async up(options: StackUpOptions = {}): Promise<void> {
    checkUpOptions(options);
    const order = startOrder(this.project, options.services);
    const inner = new AbortController();
    const signals = [inner.signal, ...(options.signal ? [options.signal] : [])];
    if (options.timeout !== undefined) signals.push(AbortSignal.timeout(options.timeout));
    const signal = AbortSignal.any(signals);
    const timedOut = () => (options.timeout !== undefined && signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError');
    const started = new Map<string, Promise<Container[]>>();
    try {
      await this.#createNetworks(order);
      await this.#createVolumes(order);
      const start = (name: string): Promise<Container[]> => {
        let p = started.get(name);
        if (!p) {
          p = this.#startService(name, options, signal, start);
          started.set(name, p);
        }
        return p;
      };
      // Every service starts as soon as its own dependencies allow; the first failure rejects.
      const all = Promise.all(order.map(start));
      all.catch(() => inner.abort(new AbortError('another service of the stack failed')));
      const containers = await all;
      if (options.wait !== false) await this.#waitAll(order, containers, signal);
    } catch (error) {
      inner.abort(new AbortError('up failed'));
      // The other services' starts see the abort at their next step; a down() after this
      // rejection must not race a create still under way.
      await Promise.allSettled(started.values());
      if (timedOut()) throw new WaitTimeoutError(`stack ${this.name} to be up`, options.timeout!, { lastError: isBerthError(error) || error instanceof Error ? error.message : String(error) });
      if (options.signal?.aborted && !(isBerthError(error) && error.code !== 'ABORT_ERR')) throw new AbortError('up was aborted', { cause: error });
      throw error;
    }
  }

  async #createNetworks(order: readonly string[]): Promise<void> {
    const used = new Set(order.flatMap((s) => Object.keys(this.project.services[s]!.networks)));
    for (const key of used) {
      const n = this.project.networks[key]!;
      try {
        await this.#rt.networks.get(n.name);
        continue;
      } catch (error) {
        if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
      }
      if (n.external) throw new NotFoundError(`network ${n.name} is declared external but does not exist (networks.${key})`);
      await this.#rt.networks.create({
        name: n.name,
        internal: n.internal,
        labels: { ...n.labels, [L.PROJECT]: this.name, [L.NETWORK]: key },
        ...(n.subnet !== undefined ? { subnet: n.subnet } : {}),
        ...(n.gateway !== undefined ? { gateway: n.gateway } : {}),
        ...(n.ipRange !== undefined ? { ipRange: n.ipRange } : {}),
      });
    }
  }

  async #createVolumes(order: readonly string[]): Promise<void> {
    const used = new Set(order.flatMap((s) => this.project.services[s]!.volumes.filter((v) => v.type === 'volume' && v.source !== undefined).map((v) => v.source!)));
    for (const key of used) {
      const v = this.project.volumes[key]!;
      try {
        await this.#rt.volumes.get(v.name);
        continue;
      } catch (error) {
        if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
      }
      if (v.external) throw new NotFoundError(`volume ${v.name} is declared external but does not exist (volumes.${key})`);
      await this.#rt.volumes.create({ name: v.name, labels: { ...v.labels, [L.PROJECT]: this.name, [L.VOLUME]: key } });
    }
    // Compose creates a missing bind source (short syntax) as a directory.
    for (const s of order) {
      for (const v of this.project.services[s]!.volumes) if (v.type === 'bind' && v.bind?.create_host_path && !existsSync(v.source!)) mkdirSync(v.source!, { recursive: true });
    }
  }

  async #startService(name: string, options: StackUpOptions, signal: AbortSignal, start: (name: string) => Promise<Container[]>): Promise<Container[]> {
    const service = this.project.services[name]!;
    await Promise.all(
      Object.entries(service.dependsOn).map(async ([dep, cond]) => {
        if (!(dep in this.project.services) || (!cond.required && !this.project.enabled.includes(dep) && !(options.services ?? []).includes(dep))) return;
        await waitForCondition(name, dep, cond.condition, await start(dep), signal);
      }),
    );
    const via = service.networkMode?.startsWith('service:') ? service.networkMode.slice(8) : undefined;
    if (via !== undefined) await start(via);
    if (signal.aborted) throw signal.reason;
    const image = await this.#image(service, options, signal);
    // The image id joins the hash as compose's `com.docker.compose.image` does: a tag pulled
    // or rebuilt to other content recreates the service even though its file is unchanged.
    const imageId = (await this.#rt.images.get(image)).id;
    const existing = await this.#containersOf(name);
    const out: Container[] = [];
    for (let n = 1; n <= service.replicas; n++) {
      const wanted = createOptionsFor(this.project, service, n, image, imageId);
      let c = existing.get(n);
      if (c && (await c.inspect()).Config.Labels[L.CONFIG_HASH] !== wanted.labels![L.CONFIG_HASH]) {
        await c.remove({ force: true });
        c = undefined;
      }
      c ??= await this.#rt.containers.create(wanted).catch((error: unknown) => {
        // The runtime names its own option (`memory`); say which service it came from.
        if (isBerthError(error) && error instanceof ValidationError) throw new ValidationError(`services.${name}`, error.message, { cause: error });
        throw error;
      });
      if ((await c.status()) !== 'running') await c.start({ signal });
      out.push(c);
    }
    // Replicas beyond the count (a smaller scale) go.
    for (const [n, c] of existing) if (n > service.replicas) await c.remove({ force: true });
    this.#known.set(name, new Map(out.map((c, i) => [i + 1, c])));
    return out;
  }

  /** The image of a service: in the store, pulled, or (not yet) built. */
  async #image(service: ComposeService, options: StackUpOptions, signal: AbortSignal): Promise<string> {
    const policy = options.pull ?? (service.pullPolicy === 'always' || service.pullPolicy === 'never' ? service.pullPolicy : 'missing');
    let present = true;
    try {
      await this.#rt.images.get(service.image);
    } catch (error) {
      if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
      present = false;
    }
    if (service.build && (!present || service.pullPolicy === 'build') && options.build !== false) return this.#build(service, signal);
    if (policy === 'always' || (!present && policy === 'missing')) await this.#rt.images.pull(service.image, { signal });
    else if (!present) throw new NotFoundError(`services.${service.name}.image: ${service.image} is not in the store and pull is "never"`);
    return service.image;
  }

  /**
   * The one place a `build:` section turns into an image: `rt.images.build()` of the context,
   * tagged with the service's image name (compose's `<project>-<service>` when it has none).
   */
  async #build(service: ComposeService, signal: AbortSignal): Promise<string> {
    const b = service.build!;
    await this.#rt.images.build({
      context: b.context,
      ...(b.dockerfile !== undefined ? { dockerfile: b.dockerfile } : {}),
      ...(b.target !== undefined ? { target: b.target } : {}),
      buildArgs: b.args,
      tags: [service.image],
      labels: { [L.PROJECT]: this.name, [L.SERVICE]: service.name },
      signal,
    });
    return service.image;
  }

  /** The project's containers of one service, by replica number. */
  async #containersOf(service: string): Promise<Map<number, Container>> {
    const list = await this.#rt.containers.list({ all: true, filters: { label: [`${L.PROJECT}=${this.name}`, `${L.SERVICE}=${service}`] } });
    const out = new Map<number, Container>();
    for (const s of list) out.set(Number(s.Labels[L.NUMBER]), await this.#rt.containers.get(s.Id));
    return out;
  }

  async #waitAll(order: readonly string[], containers: Container[][], signal: AbortSignal): Promise<void> {
    const completes = new Set(Object.values(this.project.services).flatMap((s) => Object.entries(s.dependsOn).filter(([, d]) => d.condition === 'service_completed_successfully').map(([dep]) => dep)));
    await Promise.all(
      order.map(async (name, i) => {
        const list = containers[i]!;
        if (completes.has(name)) return waitForCondition(name, name, 'service_completed_successfully', list, signal);
        const healthchecked = await Promise.all(list.map(async (c) => (await c.inspect()).Config.Healthcheck !== undefined));
        await Promise.all(list.map((c, j) => waitForCondition(name, name, healthchecked[j] ? 'service_healthy' : 'running', [c], signal)));
      }),
    );
  }

  /**
   * Replica `n` (default 1) of a service: synchronous, as a harness wants it right after `up()`
   * (`stack.container('web').getMappedPort(80)`). It answers from the containers this stack saw
   * when it was loaded (a stack another process brought up is found then), at `up()` and at
   * `ps()`; `down()` forgets them.
   * @throws NotFoundError when the service has no such container (not up).
   */
  container(service: string, n = 1): Container {
    const c = this.#known.get(service)?.get(n);
    if (!c) throw new NotFoundError(`service ${service} of stack ${this.name} has no container ${n} (is the stack up?)`);
    return c;
  }

  /** Every replica of a service, by replica number (synchronous, as {@link container}). */
  containers(service: string): Container[] {
    return [...(this.#known.get(service) ?? new Map<number, Container>()).entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
  }

  /** Re-reads which containers the project has (any process's). @internal */
  async refresh(): Promise<void> {
    const list = await this.#rt.containers.list({ all: true, filters: { label: [`${L.PROJECT}=${this.name}`] } });
    const known = new Map<string, Map<number, Container>>();
    for (const s of list) {
      const service = s.Labels[L.SERVICE] ?? '';
      if (!known.has(service)) known.set(service, new Map());
      known.get(service)!.set(Number(s.Labels[L.NUMBER]), await this.#rt.containers.get(s.Id));
    }
    this.#known = known;
  }

  /** The stack's containers (running or not), by service and replica number. */
  async ps(): Promise<StackContainer[]> {
    await this.refresh();
    const list = await this.#rt.containers.list({ all: true, filters: { label: [`${L.PROJECT}=${this.name}`] } });
    return list
      .map((s) => ({ ...s, service: s.Labels[L.SERVICE] ?? '', number: Number(s.Labels[L.NUMBER]) }))
      .sort((a, b) => a.service.localeCompare(b.service) || a.number - b.number);
  }

  /**
   * The output of every container of the stack, each line with its service and container.
   * Without `follow` every line so far (container by container); with it, lines as they come
   * from all containers until they stop or `signal` aborts. `tail`: only the last n lines of
   * each container first (default all). `services`: only these services' containers (default
   * all), so a follow ends when they stop, whatever the others do.
   * @throws ValidationError for a bad option or an unknown service (on the first `next()`).
   */
  async *logs(options: { follow?: boolean; tail?: number; services?: string[]; signal?: AbortSignal } = {}): AsyncGenerator<StackLogEntry> {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
    for (const key of Object.keys(options)) if (!['follow', 'tail', 'services', 'signal'].includes(key)) throw new ValidationError(key, 'is not a logs() option (follow, tail, services, signal)');
    if (options.tail !== undefined && (!Number.isInteger(options.tail) || options.tail < 0)) throw new ValidationError('tail', 'must be a non-negative integer');
    const only = options.services;
    if (only !== undefined && (!Array.isArray(only) || only.some((s) => typeof s !== 'string' || !(s in this.project.services)))) throw new ValidationError('services', `must be an array of service names of ${this.name}`);
    const ps = (await this.ps()).filter((s) => only === undefined || only.includes(s.service));
    const sources = await Promise.all(ps.map(async (s) => ({ s, c: await this.#rt.containers.get(s.Id) })));
    const iterators = sources.map(({ s, c }) => {
      const logs = c.logs({ ...(options.follow ? { follow: true } : {}), ...(options.tail !== undefined ? { tail: options.tail } : {}), ...(options.signal ? { signal: options.signal } : {}) });
      const it = logs[Symbol.asyncIterator]();
      return { it, service: s.service, container: s.Names[0]!.replace(/^\//, '') };
    });
    if (!options.follow) {
      for (const { it, service, container } of iterators) for (let r = await it.next(); !r.done; r = await it.next()) yield { ...r.value, service, container };
      return;
    }
    const pending = new Map(iterators.map((x, i) => [i, x.it.next().then((r) => ({ i, r }))]));
    try {
      while (pending.size > 0) {
        const { i, r } = await Promise.race(pending.values());
        if (r.done) {
          pending.delete(i);
          continue;
        }
        const x = iterators[i]!;
        pending.set(i, x.it.next().then((next) => ({ i, r: next })));
        yield { ...r.value, service: x.service, container: x.container };
      }
    } finally {
      await Promise.all(iterators.map((x) => x.it.return?.(undefined)));
    }
  }

  /** Container events of the stack's containers (Docker's actions), from now on. */
  events(options: { signal?: AbortSignal } = {}): EventSubscription {
    return this.#rt.containers.events({ filters: { label: [`${L.PROJECT}=${this.name}`] }, ...(options.signal ? { signal: options.signal } : {}) });
  }

  /**
   * Stops and removes the stack's containers, dependents first, then its networks (not the
   * external ones); with `volumes`, its named volumes and anonymous ones.
   * @throws ValidationError for a bad option; the runtime's errors.
   */
  async down(options: StackDownOptions = {}): Promise<void> {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
    for (const key of Object.keys(options)) if (!['volumes', 'removeOrphans', 'timeout'].includes(key)) throw new ValidationError(key, 'is not a down() option (volumes, removeOrphans, timeout)');
    if (options.timeout !== undefined && (!Number.isFinite(options.timeout) || options.timeout < 0)) throw new ValidationError('timeout', 'must be a non-negative number of milliseconds');
    const ps = await this.ps();
    const known = new Set(Object.keys(this.project.services));
    const byService = new Map<string, StackContainer[]>();
    for (const c of ps) {
      if (!known.has(c.service) && options.removeOrphans === false) continue;
      byService.set(c.service, [...(byService.get(c.service) ?? []), c]);
    }
    // Orphans first (nothing in the files depends on them), then dependents before dependencies.
    const order = [...[...byService.keys()].filter((s) => !known.has(s)), ...stopOrder(this.project)];
    for (const service of order) {
      await Promise.all(
        (byService.get(service) ?? []).map(async (s) => {
          const c = await this.#rt.containers.get(s.Id).catch((e: unknown) => (isBerthError(e) && e instanceof NotFoundError ? undefined : Promise.reject(e)));
          if (!c) return;
          if (s.State === 'running' || s.State === 'restarting' || s.State === 'paused') await c.stop(options.timeout !== undefined ? { timeout: options.timeout } : {});
          await c.remove({ force: true, volumes: options.volumes === true });
        }),
      );
    }
    this.#known.clear();
    for (const n of await this.#rt.networks.list({ label: [`${L.PROJECT}=${this.name}`] })) await n.remove();
    if (options.volumes === true) {
      for (const v of await this.#rt.volumes.list({ filters: { label: [`${L.PROJECT}=${this.name}`] } })) await this.#rt.volumes.remove(v);
    }
  }

  /** `await using stack = await rt.compose.load(...)`: {@link down} at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.down();
  }
}
