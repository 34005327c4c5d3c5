/**
 * Layer trees written inside the containers' user namespace (issue 15): the
 * {@link OwnerNamespace} of a rootless runtime. Each request runs one helper process, Node on
 * ./userns-worker.ts, started by the native core as root of a new user namespace with the
 * caller's id map (the subordinate map with newuidmap/newgidmap, else the single-id map), and
 * with only the capabilities an unpacker needs. There it writes a layer whose file owned by
 * 33 is owned by container id 33 (host: the subordinate range's 33rd id), sets
 * `user.overlay.opaque` (overlay's spelling under `userxattr`), and removes trees the user's
 * own uid could not (a 0700 directory of id 33).
 *
 * The helper runs the same confined unpacker as root does: a `../` name or a symlink escape
 * is refused there too, and even a bug would reach only what the user itself may write (the
 * namespace's root has no capability over the host's files).
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import * as commonErrors from '../errors.js';
import { SystemError, UnsupportedError } from '../errors.js';
import * as imageErrors from '../image/errors.js';
import type { LayerMeta } from '../image/content-store.js';
import type { NamespacedFlattenRequest, NamespacedLayerRequest, OwnerNamespace } from '../image/owner-namespace.js';
import { native, StdioMode, type NativeExitStatus, type NativeLaunchSpec } from '../native.js';
import { CONTAINER_IDS, rootlessIdMaps, type IdMapLine, type RootlessIdMaps } from './id-maps.js';
import { assertUserNamespaces } from './preflight.js';
import type { WorkerReply, WorkerRequest } from './userns-protocol.js';

const CLONE_NEWUSER = 0x10000000;
/** CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, MKNOD (whiteouts), SETFCAP (file capabilities). */
const UNPACK_CAPS = [0, 1, 2, 3, 4, 27, 31].reduce((m, c) => m | (1n << BigInt(c)), 0n);
/** A reply is one JSON line; anything bigger is not ours. */
const MAX_REPLY = 1024 * 1024;

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

async function collect(stream: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n <= limit) chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The rootless {@link OwnerNamespace}; see the module comment. */
export class UsernsHelper implements OwnerNamespace {
  readonly #maps: () => RootlessIdMaps;
  #cached: RootlessIdMaps | undefined;

  constructor(maps: () => RootlessIdMaps = () => rootlessIdMaps(process.geteuid!(), process.getegid!())) {
    this.#maps = maps;
  }

  get maps(): RootlessIdMaps {
    this.#cached ??= this.#maps();
    return this.#cached;
  }

  /** Container ids a layer's owners may have: 65536 with the subordinate map, only root without. */
  get idLimit(): number {
    return this.maps.mode === 'subordinate' ? CONTAINER_IDS : 1;
  }

  async stageLayer(layer: NamespacedLayerRequest): Promise<LayerMeta> {
    return (await this.run({ op: 'stage', layer, idLimit: this.idLimit })) as LayerMeta;
  }

  async flatten(flatten: NamespacedFlattenRequest): Promise<void> {
    await this.run({ op: 'flatten', flatten, idLimit: this.idLimit });
  }

  async removeTrees(paths: string[]): Promise<void> {
    if (paths.length > 0) await this.run({ op: 'remove', paths });
  }

  private async run(request: WorkerRequest): Promise<unknown> {
    assertUserNamespaces();
    const maps = this.maps;
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
      cwd: process.cwd(),
      argv: [process.execPath, ...loaderFlags(), workerPath()],
      env: Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined).map(([k, v]) => `${k}=${v}`),
      execCandidates: [process.execPath],
      execFd: -1,
      stdio: [{ mode: StdioMode.Pipe }, { mode: StdioMode.Pipe }, { mode: StdioMode.Pipe }],
      tty: false,
    };
    let spawned;
    try {
      spawned = await native().spawn(spec);
    } catch (e) {
      const why = maps.mode === 'subordinate' ? `newuidmap/newgidmap (${maps.helpers?.newuidmap}) wrote the subordinate map` : 'the single-id map was written';
      throw new UnsupportedError(`rootless unpack: could not start the helper in a user namespace where ${why}: ${(e as Error).message}`, { cause: e });
    }
    const exited = new Promise<NativeExitStatus>((resolve) => native().watchExit(spawned.pidfd, resolve));
    const [inFd, outFd, errFd] = spawned.stdio;
    const stdin = new Socket({ fd: inFd, readable: false, writable: true });
    const stdout = new Socket({ fd: outFd, readable: true, writable: false });
    const stderr = new Socket({ fd: errFd, readable: true, writable: false });
    stdin.on('error', () => {});
    stdin.end(JSON.stringify(request));
    const [out, err, status] = await Promise.all([collect(stdout, MAX_REPLY), collect(stderr, 64 * 1024), exited]);
    const line = out.trim().split('\n').pop() ?? '';
    let reply: WorkerReply | undefined;
    try {
      reply = JSON.parse(line) as WorkerReply;
    } catch {
      reply = undefined;
    }
    if (reply?.ok === true) return reply.result;
    if (reply?.ok === false) throw rebuildError(reply.error);
    throw new SystemError('ERR_ROOTLESS_HELPER', `rootless unpack: the helper exited (${status.signal != null ? `signal ${status.signal}` : `code ${status.code}`}) without a reply: ${err.trim().slice(-2000) || '(no output)'}`);
  }
}
