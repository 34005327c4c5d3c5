/**
 * Layer trees written inside the containers' user namespace (issue 15): the
 * {@link OwnerNamespace} of a rootless runtime. Its work runs in one helper process, Node on
 * ./userns-worker.ts, started by the native core as root of a new user namespace with the
 * caller's id map (the subordinate map with newuidmap/newgidmap, else the single-id map), and
 * with only the capabilities an unpacker needs. There it writes a layer whose file owned by
 * 33 is owned by container id 33 (host: the subordinate range's 33rd id), sets
 * `user.overlay.opaque` (overlay's spelling under `userxattr`), copies stored layers for
 * `images.unpack`, and removes trees the user's own uid could not (a 0700 directory of id 33).
 *
 * One helper serves every request of the process (all layers of a pull, several pulls): its
 * start (a Node process and the unpacker's modules, most of a second on a loaded machine) was
 * most of a rootless pull when each layer had its own. It is started on the first request and
 * ends when the last runtime of the process closes, after {@link IDLE_MS} without a request, or
 * with its owner (parent-death signal, and end of file on its stdin); it never keeps Node's
 * event loop alive by itself. A helper that died is replaced by the next request.
 *
 * The helper runs the same confined unpacker as root does: a `../` name or a symlink escape
 * is refused there too, and even a bug would reach only what the user itself may write (the
 * namespace's root has no capability over the host's files).
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as commonErrors from '../errors.js';
import { SystemError, UnsupportedError } from '../errors.js';
import * as imageErrors from '../image/errors.js';
import type { LayerMeta } from '../image/content-store.js';
import type { NamespacedCopyRequest, NamespacedFlattenRequest, NamespacedLayerRequest, OwnerNamespace } from '../image/owner-namespace.js';
import { native, StdioMode, type NativeLaunchSpec } from '../native.js';
import { CONTAINER_IDS, rootlessIdMaps, type IdMapLine, type RootlessIdMaps } from './id-maps.js';
import { assertUserNamespaces } from './preflight.js';
import type { WorkerRequest } from './userns-protocol.js';
import { UsernsWorkerProcess } from './userns-worker-process.js';

const CLONE_NEWUSER = 0x10000000;
/** CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, MKNOD (whiteouts), SETFCAP (file capabilities). */
const UNPACK_CAPS = [0, 1, 2, 3, 4, 27, 31].reduce((m, c) => m | (1n << BigInt(c)), 0n);
/** An idle helper ends after this long without a request (the next one starts a new helper). */
export const IDLE_MS = 30_000;

const ERROR_CLASSES = new Map<string, { prototype: Error }>(
  (Object.entries({ ...commonErrors, ...imageErrors }) as Array<[string, unknown]>).filter((e): e is [string, { prototype: Error }] => typeof e[1] === 'function' && (e[1] as { prototype?: unknown }).prototype instanceof Error),
);

/** The worker program next to this module: `.ts` from source (tsx), `.js` in the package's dist/. */
function workerPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'userns-worker.js'), join(here, 'userns-worker.ts')]) if (existsSync(candidate)) return candidate;
  throw new SystemError('ENOENT', `rootless unpack: the helper program userns-worker.js is missing next to ${here} (a broken install)`, { path: here });
}

/** Node flags that load code (tsx from source), which the worker needs too; nothing else of ours. */
function loaderFlags(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--(import|require|loader|experimental-loader)=/.test(a)) out.push(a);
    else if (/^--(import|require|loader|experimental-loader)$/.test(a) && i + 1 < argv.length) out.push(a, argv[++i]!);
  }
  return out;
}

function mapText(lines: readonly IdMapLine[]): string {
  return lines.map((l) => `${l.containerId} ${l.hostId} ${l.size}\n`).join('');
}

function rebuildError(reply: { name: string; message: string; fields: Record<string, unknown> }): Error {
  const cls = ERROR_CLASSES.get(reply.name);
  const error = Object.create((cls ?? SystemError).prototype) as Error & Record<string, unknown>;
  Object.assign(error, { code: 'ERR_ROOTLESS_HELPER', ...reply.fields, message: reply.message, name: reply.name });
  Object.defineProperty(error, Symbol.for('berth.error'), { value: true });
  error.stack = `${reply.name}: ${reply.message}\n    at the rootless unpack helper (user namespace)`;
  return error;
}

export interface UsernsHelperOptions {
  /** The id maps of the helper's namespace; default this user's ({@link rootlessIdMaps}), read at each helper start. */
  maps?: () => RootlessIdMaps;
  /** Idle time after which the helper ends. Default {@link IDLE_MS}. */
  idleMs?: number;
}

/** The rootless {@link OwnerNamespace}; see the module comment. */
export class UsernsHelper implements OwnerNamespace {
  readonly #maps: () => RootlessIdMaps;
  readonly #idleMs: number;
  #cached: RootlessIdMaps | undefined;
  #worker: UsernsWorkerProcess | undefined;
  #starting: Promise<UsernsWorkerProcess> | undefined;
  #idle: NodeJS.Timeout | undefined;

  constructor(options: UsernsHelperOptions = {}) {
    this.#maps = options.maps ?? (() => rootlessIdMaps(process.geteuid!(), process.getegid!()));
    this.#idleMs = options.idleMs ?? IDLE_MS;
  }

  /** The maps of the current (or next) helper's namespace. */
  get maps(): RootlessIdMaps {
    this.#cached ??= this.#maps();
    return this.#cached;
  }

  /** Container ids a layer's owners may have: 65536 with the subordinate map, only root without. */
  get idLimit(): number {
    return this.maps.mode === 'subordinate' ? CONTAINER_IDS : 1;
  }

  /** The running helper's pid, or undefined when none runs now (for tests and `rt.info()`). */
  get pid(): number | undefined {
    return this.#worker?.usable ? this.#worker.pid : undefined;
  }

  async stageLayer(layer: NamespacedLayerRequest): Promise<LayerMeta> {
    return (await this.run({ op: 'stage', layer, idLimit: this.idLimit })) as LayerMeta;
  }

  async flatten(flatten: NamespacedFlattenRequest): Promise<void> {
    await this.run({ op: 'flatten', flatten, idLimit: this.idLimit });
  }

  async copyLayers(copy: NamespacedCopyRequest): Promise<void> {
    await this.run({ op: 'copy', copy });
  }

  async removeTrees(paths: string[]): Promise<void> {
    if (paths.length > 0) await this.run({ op: 'remove', paths });
  }

  /**
   * Starts the helper now, if none runs, so that its start overlaps other work (a pull's
   * downloads); a failure to start shows at the first request.
   */
  warm(): void {
    void this.#ensure().then(() => this.#armIdle(), () => {});
  }

  /** Ends the helper (after the requests in flight); resolves once it exited. A later request starts a new one. */
  async close(): Promise<void> {
    clearTimeout(this.#idle);
    const worker = this.#worker ?? (await this.#starting?.catch(() => undefined));
    this.#worker = undefined;
    if (worker) await worker.end();
  }

  private async run(request: WorkerRequest): Promise<unknown> {
    clearTimeout(this.#idle);
    let worker = await this.#ensure();
    // Ended by its idle timer in the turn between: a new one.
    if (!worker.usable) worker = await this.#ensure();
    try {
      const reply = await worker.request(request);
      if (reply.ok) return reply.result;
      throw rebuildError(reply.error);
    } finally {
      this.#armIdle();
    }
  }

  #armIdle(): void {
    const worker = this.#worker;
    if (!worker || worker.busy > 0) return;
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.#worker === worker && worker.busy === 0) {
        this.#worker = undefined;
        void worker.end();
      }
    }, this.#idleMs);
    this.#idle.unref();
  }

  #ensure(): Promise<UsernsWorkerProcess> {
    if (this.#worker?.usable) return Promise.resolve(this.#worker);
    this.#starting ??= this.#start().then(
      (w) => {
        this.#worker = w;
        this.#starting = undefined;
        return w;
      },
      (e: unknown) => {
        this.#starting = undefined;
        throw e;
      },
    );
    return this.#starting;
  }

  async #start(): Promise<UsernsWorkerProcess> {
    assertUserNamespaces();
    // Read again for each helper: a subordinate range added meanwhile is used from now on.
    this.#cached = this.#maps();
    const maps = this.#cached;
    const loaders = loaderFlags();
    const spec: NativeLaunchSpec = {
      cloneFlags: CLONE_NEWUSER,
      newCgroupNs: false,
      uidMap: mapText(maps.uidMap),
      gidMap: mapText(maps.gidMap),
      ...(maps.helpers ? { idMapHelpers: maps.helpers } : {}),
      unprivileged: true,
      cgroupProcs: [],
      mounts: [],
      loopbackUp: false,
      rlimits: [],
      uid: 0,
      gid: 0,
      groups: [],
      capabilities: { bounding: UNPACK_CAPS, effective: UNPACK_CAPS, permitted: UNPACK_CAPS, inheritable: 0n, ambient: 0n },
      noNewPrivileges: true,
      seccomp: null,
      dieWithParent: true,
      // A long-lived process pins its working directory (no unmount below it): "/" unless a
      // loader run from source (tsx) resolves its module from ours.
      cwd: loaders.length > 0 ? process.cwd() : '/',
      argv: [process.execPath, ...loaders, workerPath()],
      env: Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined).map(([k, v]) => `${k}=${v}`),
      execCandidates: [process.execPath],
      execFd: -1,
      stdio: [{ mode: StdioMode.Pipe }, { mode: StdioMode.Pipe }, { mode: StdioMode.Pipe }],
      tty: false,
    };
    try {
      return new UsernsWorkerProcess(await native().spawn(spec));
    } catch (e) {
      const why = maps.mode === 'subordinate' ? `newuidmap/newgidmap (${maps.helpers?.newuidmap}) wrote the subordinate map` : 'the single-id map was written';
      throw new UnsupportedError(`rootless unpack: could not start the helper in a user namespace where ${why}: ${(e as Error).message}`, { cause: e });
    }
  }
}

let shared: UsernsHelper | undefined;
let owners = 0;

/**
 * The process's one helper (see the module comment), kept until {@link releaseUsernsHelper}
 * as often as retained. Each runtime retains it while open.
 */
export function retainUsernsHelper(): UsernsHelper {
  owners++;
  shared ??= new UsernsHelper();
  return shared;
}

/** The last owner is gone: the helper ends once its requests in flight are answered. */
export async function releaseUsernsHelper(): Promise<void> {
  if (owners > 0) owners--;
  if (owners === 0 && shared) await shared.close();
}

/** The process's helper for work outside a runtime (a container's removal); idle, it ends by itself. */
export function sharedUsernsHelper(): UsernsHelper {
  shared ??= new UsernsHelper();
  return shared;
}
