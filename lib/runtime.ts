/**
 * `Runtime`: one state directory (images, layers, containers, volumes, networks) shared safely
 * by every Node process that opens it. Each runtime owns its services: two runtimes of one
 * directory in one process are two sets of services over the same locked state.
 * @module
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RunOptions, RunSource } from './launch/run-options.js';
import { ConflictError, NotFoundError, UnsupportedError, ValidationError, isBerthError } from './errors.js';
import { ImageService } from './image/image-service.js';
import { BuildCache } from './build/build-cache.js';
import { buildImage } from './build/build.js';
import { ContainerService } from './containers/container-service.js';
import type { EventSubscription, EventsOptions } from './containers/events.js';
import { runToCompletion, type OutputOf, type RunResult } from './launch/run-to-completion.js';
import { Sandbox, type SandboxBody } from './launch/sandbox.js';
import { checkArgv, launchRootOf, sandboxInRoot } from './launch/sandbox-launch.js';
import { checkSpawnOptions, spawnOptionsOfRun, type CheckedSpawnOptions, type SpawnOptions } from './launch/spawn-options.js';
import { withRunVolumes } from './volumes/run-volumes.js';
import { VolumeService } from './volumes/volume-service.js';
import { NetworkService } from './network/network-service.js';
import { networkServiceOf } from './network/network-options.js';
import { ParkedSandbox } from './launch/parked.js';
import type { LaunchRoot } from './launch/launch-plan.js';
import type { ImageDefaults } from './launch/launcher.js';
import { Pool } from './pool/pool.js';
import { prewarm } from './pool/prewarm.js';
import { warmUp } from './pool/warm-up.js';
import { checkPoolOptions, type PoolOptions } from './pool/pool-options.js';
import { secureStateDir } from './state/state-dir.js';
import { defaultStateDir, isRootless, releaseHeldUserns, retainHeldUserns } from './rootless/index.js';
import { releaseUsernsHelper, retainUsernsHelper } from './rootless/userns-helper.js';
import { releaseRootlessNetns, retainRootlessNetns } from './network/rootless-netns.js';
import { assembleRuntimeInfo, probeHostFacts, type RuntimeInfo } from './runtime-info.js';
import type { HostFacts } from './runtime-advice.js';
import { Compose } from './compose/compose.js';
import type { ContainerLayerPaths, StorageDriver, StorageDriverName } from './storage/driver.js';
import { checkStorageDriverName, chooseStorageDriver, type StorageChoice } from './storage/select.js';
import { withRunLayer } from './storage/run-layer.js';
import { sweepFuseMounts } from './storage/fuse-mount.js';

/** Options of {@link Runtime.open}. */
export interface RuntimeOptions {
  /**
   * The state directory. Default `/var/lib/berth` for root; without root
   * `$XDG_DATA_HOME/berth` (default `~/.local/share/berth`).
   */
  root?: string;
  /**
   * Uncompressed bytes one image layer may have in pull, load, import and unpack (each call
   * may override it); past it `LayerTooLargeError`, the defence against decompression bombs.
   * Default 64 GiB.
   */
  maxLayerSize?: number;
  /**
   * After a reboot-like loss (every process of a detached container gone without recording
   * an exit; such containers are reported exited with code 255), start again those whose
   * restart policy is `always` or `unless-stopped` and that the user did not stop, as Docker's
   * daemon does when it starts. Only one process should ask for it (the one that plays the
   * daemon's part, e.g. at boot). Default false: nothing is started by opening a runtime.
   */
  restartPolicies?: boolean;
  /**
   * The storage driver that makes containers' roots from image layers: `'overlay'` (kernel
   * overlayfs: fast, the default where it mounts) or `'vfs'` (each container a full copy of
   * its image: works on any filesystem, e.g. a state directory on a container's overlay root;
   * no `userns` yet). `'fuse-overlayfs'` and `'btrfs'` are reserved names, refused for now.
   * Default: probed on the state directory: overlay if it mounts there, else vfs
   * (docs/design/storage.md). A container keeps the driver it was created with.
   * @throws UnsupportedError from {@link Runtime.open} (`.option === 'storageDriver'`) when the
   *   named driver cannot work on this host or filesystem, naming what is missing and the fix.
   */
  storageDriver?: StorageDriverName;
}

/** Root's default state directory (root-owned, like Docker's /var/lib/docker); see `RuntimeOptions.root` for non-root users. */
export const DEFAULT_ROOT = '/var/lib/berth';

/**
 * A berth state directory and the services over it.
 *
 * Nothing a runtime holds keeps Node's event loop alive once no container of lifetime
 * `'process'` runs; {@link Runtime.close} (or `await using rt = await Runtime.open()` on Node 24)
 * also ends event subscriptions and pending policy restarts, and makes later use an error.
 */
/** The directories directly in `dir` ([] when it does not exist). */
function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

export class Runtime implements AsyncDisposable {
  /** The state directory. */
  readonly root: string;
  readonly #images: ImageService;
  readonly #volumes: VolumeService;
  readonly #containers: ContainerService;
  readonly #networks: NetworkService;
  readonly #compose: Compose;
  readonly #pools = new Set<Pool>();
  #closing: Promise<void> | undefined;
  #hostFacts: Promise<HostFacts> | undefined;
  readonly #storage: StorageChoice;

  private constructor(root: string, storage: StorageChoice, options: RuntimeOptions = {}) {
    this.root = root;
    this.#storage = storage;
    // A layer a container was created from stays on disk while the container exists; a layer
    // the build cache holds stays until the cache entry is pruned.
    let cache: BuildCache | undefined;
    const buildCache = () => (cache ??= new BuildCache(root, this.#images.store));
    this.#images = new ImageService(root, {
      isLayerInUse: (chainId) => this.#containers.layerInUse(chainId),
      build: (options) => buildImage(this.#images, buildCache(), options, { networks: this.#networks }),
      buildCache: {
        roots: () => buildCache().roots(),
        prune: (keep) => buildCache().prune((entry) => keep(entry.layer?.chainId ?? null)),
      },
      ...(options.maxLayerSize !== undefined ? { maxLayerSize: options.maxLayerSize } : {}),
      // Without root, layers are written inside the containers' user namespace (image owners kept).
      // One helper process for the whole process, kept while a runtime is open (see close()).
      ...(isRootless() ? { ownerNamespace: retainUsernsHelper() } : {}),
    });
    this.#volumes = new VolumeService(root);
    this.#networks = new NetworkService(root);
    this.#containers = new ContainerService(root, { images: this.#images, volumes: this.#volumes, networks: this.#networks, storage: storage.driver });
    // Stacks use the public services only, through the getters (so a closed runtime refuses them).
    this.#compose = new Compose(this);
    // Rootless: this process's held user namespace lives while a runtime is open (see close()).
    retainHeldUserns();
    retainRootlessNetns();
  }

  /** The storage driver this runtime's containers use, and why. @internal */
  get storage(): StorageChoice {
    return this.#storage;
  }

  /** @throws ConflictError once the runtime is closed. */
  #open<T>(service: T, what: string): T {
    if (this.#closing) throw new ConflictError(`runtime ${this.root} is closed: ${what} cannot be used after close()`);
    return service;
  }

  /** Images: pull, push, list, inspect, tag, remove, save/load, unpack, build. @throws ConflictError after {@link close}. */
  get images(): ImageService {
    return this.#open(this.#images, 'images');
  }

  /** Volumes: create, get, list, inspect, remove, prune; typed events. @throws ConflictError after {@link close}. */
  get volumes(): VolumeService {
    return this.#open(this.#volumes, 'volumes');
  }

  /** Containers: create, get, list; each a `Container` with Docker's lifecycle. @throws ConflictError after {@link close}. */
  get containers(): ContainerService {
    return this.#open(this.#containers, 'containers');
  }

  /** Networks: bridge networks with IPAM, NAT, names and published ports. @throws ConflictError after {@link close}. */
  get networks(): NetworkService {
    return this.#open(this.#networks, 'networks');
  }

  /**
   * Compose stacks: `rt.compose.load({ files, projectDir, projectName, env, envFiles, profiles })`
   * gives a `Stack` to `up()` and `down()`. @throws ConflictError after {@link close}.
   */
  get compose(): Compose {
    return this.#open(this.#compose, 'compose');
  }

  /**
   * Releases what this runtime holds in this process: its pools close (as `pool.close()`:
   * sandboxes callers hold are waited for), event subscriptions end (their loops
   * finish), policy restarts this process was about to make are cancelled (the container is
   * recorded exited). Containers of lifetime `'process'` that still run stay supervised until
   * they exit, and keep Node alive until then: stop them first to let the process end.
   * Detached containers are not touched. A second `close()` is a no-op (it resolves with the
   * first); any other use of the runtime afterwards throws a `ConflictError`. Objects obtained
   * before (a `Container`, a service) are not closed by it.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#pools].map((p) => p.close()));
      await this.#containers.close();
      // Its user networks' namespace first: it lives in the held user namespace.
      await releaseRootlessNetns();
      releaseHeldUserns();
      if (this.#images.store.ownerNamespace) await releaseUsernsHelper();
    })();
    return this.#closing;
  }

  /**
   * `await using rt = await Runtime.open()`: {@link close} at the end of the scope. `await using`
   * needs Node 24 or a transpiler (a syntax error on plain Node 20); there,
   * `try { … } finally { await rt.close() }` does the same.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Runtime facts to debug with, as `docker info` reports them (its field names where it has
   * one): berth's version, the state directory, rootless or not, the id mapping available, the
   * storage driver and why, the cgroup version and usable controllers, the network tools, the
   * kernel features (overlay, openat2, pidfd, seccomp, user namespaces, idmapped mounts,
   * clone3 into a cgroup), and in `Fixes`/`Warnings` a one-line fix for each missing piece.
   * The host is probed on the first call and the answer kept for this runtime (the probes try
   * an overlay mount that is never attached, a pidfd, an openat2 lookup, the packet filter;
   * they leave nothing behind and need no network); the container, image, volume and network
   * counts are read at each call. A missing feature is reported, never thrown.
   * See docs/troubleshooting.md for every field and fix.
   * @throws ConflictError after {@link close}.
   */
  async info(): Promise<RuntimeInfo> {
    this.#open(this, 'info()');
    this.#hostFacts ??= probeHostFacts(this.root);
    const [facts, containers, images, volumes, networks] = await Promise.all([
      this.#hostFacts,
      this.#containers.list({ all: true }),
      this.#images.list(),
      this.#volumes.list(),
      this.#networks.list(),
    ]);
    const count = (state: string) => containers.filter((c) => c.State === state).length;
    return assembleRuntimeInfo(facts, {
      containers: { total: containers.length, running: count('running'), paused: count('paused') },
      images: images.length,
      volumes: volumes.length,
      networks: networks.length,
    }, this.#storage);
  }

  /**
   * Container events of this state directory (create, start, exit, oom, pause, unpause,
   * restart, health_status, rename, destroy), as an async iterable (`.stream()` for an
   * object-mode Readable): with `since`, those recorded from then on first (also those that
   * happened while no Node process watched: detached containers' monitors record theirs),
   * then new ones from every process and monitor until `until`, `close()` or the signal.
   * Docker's semantics for `since`/`until` (Date, RFC 3339 string or unix seconds). A
   * following subscription keeps the process alive until it ends.
   * @throws ValidationError for a bad option (naming it).
   */
  events(options: EventsOptions = {}): EventSubscription {
    return this.containers.events(options);
  }

  /**
   * Opens (creating if needed) a state directory. Several processes may open the same one.
   * Reconciles what crashed processes left (docs/design/container-lifecycle.md). Chooses the
   * storage driver (see {@link RuntimeOptions.storageDriver}).
   * @throws ValidationError for a bad option; UnsupportedError when the named `storageDriver`
   *   cannot work here; SystemError when the directory is unsafe or unusable.
   */
  static async open(options: RuntimeOptions = {}): Promise<Runtime> {
    const root = options.root ?? defaultStateDir();
    if (typeof root !== 'string' || !root.startsWith('/')) throw new ValidationError('root', `must be an absolute path, got ${JSON.stringify(root)}`);
    // Owner and mode checked and tightened: see lib/state/state-dir.ts (CVE-2021-41091 class).
    secureStateDir(root);
    if (options.restartPolicies !== undefined && typeof options.restartPolicies !== 'boolean') throw new ValidationError('restartPolicies', 'must be a boolean');
    const storage = await chooseStorageDriver(root, checkStorageDriverName(options.storageDriver));
    const rt = new Runtime(root, storage, options);
    // fuse-overlayfs mounts and daemons whose owner died (lib/storage/fuse-mount.ts), whatever
    // driver this runtime uses now: containers keep the one they were made with.
    await sweepFuseMounts(['containers', 'tmp'].flatMap((d) => subdirectories(join(root, d))));
    // Containers whose owner died, half-done removals, stale cgroups: see lib/containers/reconcile.ts.
    const lost = existsSync(rt.containers.stateDir) ? await rt.containers.reconcile() : [];
    // Leases, veths, bridges and NAT rules whose container or owner is gone.
    if (existsSync(join(root, 'networks'))) await rt.networks.ready();
    // Only now: a restarted container's network starts from reconciled leases and rules.
    if (options.restartPolicies === true && lost.length > 0) await rt.containers.restartLost(lost);
    return rt;
  }

  /**
   * `run()` with this runtime's volumes (`{ type: 'volume' }` mounts, the image's `Volumes`) and
   * networks (the names in `network`, `networks` and `container:<id>`), from an image in this
   * runtime's store (pulled first if it is not there), a `{ rootfs }` directory or
   * `{ host: true }`. Docker's rules apply: `cmd` replaces the image's Cmd,
   * Env/WorkingDir/User are defaults under the options; an empty volume mounted over image
   * files gets a copy of them; anonymous volumes last as long as the run. It is
   * {@link Runtime.spawn} read to its end.
   * @throws as the package's `run()` does.
   */
  async run<O extends RunOptions = RunOptions>(source: RunSource, cmd?: string[] | null, options?: O): Promise<RunResult<OutputOf<O>>> {
    this.#open(this, 'run()');
    const { spawn, result } = spawnOptionsOfRun(options);
    return runToCompletion(this.spawn(source, cmd, spawn), result) as Promise<RunResult<OutputOf<O>>>;
  }

  /**
   * A warm pool of sandboxes prepared ahead (cgroup with limits, namespaces, rootfs overlay,
   * network; PID 1 berth's init, parked), each handed to one caller by `pool.acquire()`, running
   * one command (`sandbox.run()`) and destroyed on `release()`. Resolves once `size` sandboxes
   * are prepared. An image reference is pulled first if missing. `rt.close()` closes it too.
   * See docs/design/pools.md for what is isolated and what is decided ahead.
   * @throws ValidationError for a bad option (naming it; per-command options such as `timeout`
   *   belong to `run()`), NotFoundError for a missing `rootfs` or image, the first preparation's
   *   error (SystemError…); ConflictError after {@link close}; UnsupportedError for a rootfs or
   *   image source when the runtime's storage driver is `vfs`.
   */
  async pool(options: PoolOptions): Promise<Pool> {
    this.#open(this, 'pool()');
    const checked = checkPoolOptions(options);
    if (checked.sandbox.mounts?.some((m) => m.type === 'volume')) {
      throw new ValidationError('options.mounts', 'volume mounts are not supported in pools yet: use a bind mount');
    }
    const { root, image } = await this.#poolSource(options.source);
    if (root.kind !== 'host' && this.#storage.driver.needsLayer) {
      // A pooled sandbox's root is made in its namespace at preparation: a copy per sandbox is not wired yet.
      throw new UnsupportedError(`pools need a storage driver that mounts layers in place; this runtime uses "${this.#storage.driver.name}" (${this.#storage.reason})`, { option: 'storageDriver' });
    }
    const networks = networkServiceOf<NetworkService>(checked.raw) ?? this.#networks;
    let pool: Pool | undefined;
    pool = await Pool.open(
      async () => {
        const parked = await ParkedSandbox.start({ root, options: checked.sandbox, networks, ...(image ? { image } : {}) });
        if (checked.prewarm) {
          try {
            await warmUp(parked, checked.prewarm.argv, checked.prewarm.timeoutMs);
          } catch (error) {
            await parked.tornDown();
            throw error;
          }
        }
        return checked.main ? prewarm(parked, checked.main.argv, checked.main.ready) : { parked };
      },
      checked,
      () => pool && this.#pools.delete(pool),
    );
    this.#pools.add(pool);
    if (this.#closing) await pool.close();
    return pool;
  }

  /** The root (and image defaults) of a pool's source; an image is pulled once, here. */
  async #poolSource(source: RunSource): Promise<{ root: LaunchRoot; image?: ImageDefaults }> {
    if (typeof source !== 'string') return { root: withDriver(launchRootOf(source), this.#storage.driver) };
    if (source === '') throw new ValidationError('source', 'must be an image reference, { rootfs } or { host: true }');
    try {
      await this.images.get(source);
    } catch (error) {
      if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
      await this.images.pull(source);
    }
    const { lowerDirs, config } = await this.images.rootfsFor(source);
    return { root: { kind: 'layers', lowerDirs, driver: this.#storage.driver }, image: config.config ? { config: config.config } : {} };
  }

  /**
   * `spawn()` with this runtime's images, volumes and networks, as {@link Runtime.run} has them:
   * returns the {@link Sandbox} at once while the image is pulled (if missing) and the container
   * launched; its streams carry the container's stdio as it runs.
   * @throws ValidationError (synchronously) for a bad option, argv or source shape, NotFoundError
   *   for a missing `rootfs` directory; launch failures (pull, missing user or bind source,
   *   kernel errors) reject `sandbox.exited` and are emitted as `'error'`; ConflictError after
   *   {@link close}.
   */
  spawn(source: RunSource, cmd?: string[] | null, options?: SpawnOptions): Sandbox {
    this.#open(this, 'spawn()');
    const checked = checkSpawnOptions(options);
    if (typeof source !== 'string') launchRootOf(source);
    else if (source === '') throw new ValidationError('image', 'must be an image reference');
    if (typeof source !== 'string' && cmd !== undefined && cmd !== null) checkArgv(cmd);
    return new Sandbox(spawnBodyIn(this, source, cmd, checked), checked.sandbox);
  }
}

/**
 * The launch of `rt.spawn()`: the image pulled if missing, the volumes resolved and released
 * around the sandbox's whole life. Also the body of the package's `spawn()` when that needs
 * the default runtime.
 * @internal
 */
export function spawnBodyIn(rt: Runtime, source: RunSource, cmd: string[] | null | undefined, checked: CheckedSpawnOptions): SandboxBody {
  const { launch: options, stdinPipe } = checked;
  return async (hooks) => {
    if (typeof source !== 'string') {
      const dir = typeof source === 'object' && source !== null ? (source as { rootfs?: unknown }).rootfs : undefined;
      // An invalid source is left to launchRootOf(), which names the problem; copy-up reads a valid one.
      const valid = typeof dir === 'string' && dir.startsWith('/') && isDirectory(dir);
      const root = withDriver(launchRootOf(source), rt.storage.driver);
      const launchIn = (opts: RunOptions | undefined, upper?: ContainerLayerPaths) =>
        sandboxInRoot(root, cmd, opts, { networks: rt.networks, stdinPipe, ...(upper ? { upper } : {}) })(hooks);
      return withRunVolumes(rt.volumes, valid ? { copyUp: { layers: [dir] } } : {}, options, (opts) =>
        root.kind === 'rootfs' ? withRunLayer(rt.storage.driver, join(rt.root, 'tmp'), [root.dir], (upper) => launchIn(opts, upper)) : launchIn(opts),
      );
    }
    const image = source;
    try {
      await rt.images.get(image);
    } catch (error) {
      if (!(isBerthError(error) && error instanceof NotFoundError)) throw error;
      await rt.images.pull(image, options.signal ? { signal: options.signal } : {});
    }
    const { lowerDirs, config } = await rt.images.rootfsFor(image);
    const imageVolumes = Object.keys(config.config?.Volumes ?? {});
    return withRunVolumes(rt.volumes, { copyUp: { layers: lowerDirs }, imageVolumes }, options, (opts) =>
      withRunLayer(rt.storage.driver, join(rt.root, 'tmp'), lowerDirs, (upper) =>
        sandboxInRoot({ kind: 'layers', lowerDirs, driver: rt.storage.driver }, cmd, opts, { image: config.config ? { config: config.config } : {}, networks: rt.networks, stdinPipe, ...(upper ? { upper } : {}) })(hooks),
      ),
    );
  };
}

/** A rootfs directory's root made by `driver` (the host's root has none). */
function withDriver(root: LaunchRoot, driver: StorageDriver): LaunchRoot {
  return root.kind === 'host' ? root : { ...root, driver };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

let shared: Promise<Runtime> | undefined;

/**
 * The runtime `run()` uses for an image reference, volumes or network names: {@link DEFAULT_ROOT},
 * opened once per process on first use. It is one runtime among others: a `Runtime.open()` of
 * the same directory gets services of its own.
 */
export function defaultRuntime(): Promise<Runtime> {
  shared ??= Runtime.open();
  return shared;
}
