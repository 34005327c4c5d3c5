/**
 * The containers' part of the state directory (layout in `docs/design/containers.md`):
 *
 *   containers/<id>/config.json, state.json, upper/, work/, container.log[.N], run.json (a
 *                             detached container's monitor's; exit.json from older monitors)
 *   containers/names/<name>   the id holding <name>, one small file per name, changed only
 *                             under the `container-names` lock (a table of its own would be
 *                             rewritten whole by every create and remove: O(n) per container)
 *   locks/container-<id>.lock one per container; every multi-step change holds it
 *
 * A container directory appears complete or not at all: it is built as `.new-<id>-<pid>` and
 * renamed into place, and removed by renaming it to `.trash-<id>-<pid>` first. The pid in
 * those names lets reconciliation clean up after a writer that died.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, NotFoundError } from '../errors.js';
import { removeTree } from '../host/remove-tree.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../state/atomic-file.js';
import { LockDir, type HeldLock, type LockOptions } from '../state/lock.js';
import { releaseFuseMount } from '../storage/fuse-mount.js';
import type { ContainerRecord, ContainerState } from './container-record.js';
import { removeOwnedTree } from '../rootless/remove-owned-tree.js';

const ID_RE = /^[0-9a-f]{64}$/;
const NAMES_LOCK = 'container-names';
/** What {@link normalizeName} lets through: a safe single path component. */
const NAME_FILE_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** A new container id: 64 hex digits, as Docker's. */
export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

export function isContainerId(s: string): boolean {
  return ID_RE.test(s);
}

export class StateStore {
  readonly root: string;
  readonly containersDir: string;
  readonly locks: LockDir;

  constructor(root: string) {
    this.root = root;
    this.containersDir = join(root, 'containers');
    this.locks = new LockDir(root);
  }

  dir(id: string): string {
    return join(this.containersDir, id);
  }
  configPath(id: string): string {
    return join(this.dir(id), 'config.json');
  }
  statePath(id: string): string {
    return join(this.dir(id), 'state.json');
  }
  logPath(id: string): string {
    return join(this.dir(id), 'container.log');
  }
  upperDir(id: string): string {
    return join(this.dir(id), 'upper');
  }
  workDir(id: string): string {
    return join(this.dir(id), 'work');
  }
  /**
   * A user-namespaced container writes its upper and work dirs as its own root, an
   * unprivileged host id: they are given to that id, and the container's directory lets it
   * pass (0711, no listing). The state dir above stays 0700, so no other host user gets in;
   * the launch hands the child this directory as an opened tree (src-native/spawn.cc).
   */
  async giveUpperTo(id: string, owner: { uid: number; gid: number }): Promise<void> {
    await chown(this.upperDir(id), owner.uid, owner.gid);
    await chown(this.workDir(id), owner.uid, owner.gid);
    await chmod(this.dir(id), 0o711);
  }
  exitPath(id: string): string {
    return join(this.dir(id), 'exit.json');
  }
  /** The directory of name files. */
  get namesDir(): string {
    return join(this.containersDir, 'names');
  }
  /** The table of berth before the names directory; read once and moved into it. */
  get legacyNamesPath(): string {
    return join(this.containersDir, 'names.json');
  }

  async init(): Promise<void> {
    await mkdir(this.namesDir, { recursive: true, mode: 0o700 });
  }

  exists(id: string): boolean {
    return existsSync(this.configPath(id));
  }

  async readRecord(id: string): Promise<ContainerRecord | undefined> {
    return readJson<ContainerRecord>(this.configPath(id));
  }

  async readState(id: string): Promise<ContainerState | undefined> {
    return readJson<ContainerState>(this.statePath(id));
  }

  /** Both files; NotFoundError when the container is gone. */
  async read(id: string): Promise<{ record: ContainerRecord; state: ContainerState }> {
    const [record, state] = await Promise.all([this.readRecord(id), this.readState(id)]);
    if (!record || !state) throw new NotFoundError(`no such container: ${id}`);
    return { record, state };
  }

  async writeState(id: string, state: ContainerState): Promise<void> {
    await writeJsonAtomic(this.statePath(id), state);
  }

  async writeRecord(id: string, record: ContainerRecord): Promise<void> {
    await writeJsonAtomic(this.configPath(id), record);
  }

  /** Ids of every complete container directory. */
  async listIds(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.containersDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return names.filter((n) => ID_RE.test(n));
  }

  /**
   * The id that holds `name`, or undefined. Names pass {@link normalizeName} before they get
   * here, so a name is always one plain path component (no `/`, never `.` or `..`).
   */
  async nameHolder(name: string): Promise<string | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.namesDir, name), 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw error;
    }
    const id = text.trim();
    return ID_RE.test(id) ? id : undefined;
  }

  /** Every name -> id (reconciliation only: it reads one file per name). */
  async readNames(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    let names: string[];
    try {
      names = await readdir(this.namesDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw error;
    }
    for (const n of names) {
      if (n.startsWith('.')) continue; // a writer's temp file
      const id = await this.nameHolder(n);
      if (id !== undefined) out[n] = id;
    }
    return out;
  }

  /** Under the names lock: `name` now names `id`. */
  async setName(name: string, id: string): Promise<void> {
    await writeFileAtomic(join(this.namesDir, name), `${id}\n`);
  }

  /** Under the names lock: drops `name` if `id` holds it. */
  async dropName(name: string, id: string): Promise<void> {
    if ((await this.nameHolder(name)) !== id) return;
    await unlink(join(this.namesDir, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  /**
   * A state dir of an older berth keeps its names in one `names.json`: moved into the names
   * directory once (under the names lock), then deleted.
   */
  async migrateLegacyNames(): Promise<void> {
    if (!existsSync(this.legacyNamesPath)) return;
    await this.locks.with(NAMES_LOCK, async () => {
      const table = await readJson<Record<string, string>>(this.legacyNamesPath).catch(() => undefined);
      if (table === undefined) return;
      await this.init();
      for (const [name, id] of Object.entries(table)) {
        if (NAME_FILE_RE.test(name) && ID_RE.test(id) && (await this.nameHolder(name)) === undefined) await this.setName(name, id);
      }
      await rm(this.legacyNamesPath, { force: true });
    });
  }

  lockContainer(id: string, options?: LockOptions): Promise<HeldLock> {
    return this.locks.acquire(`container-${id}`, options);
  }

  async withContainer<T>(id: string, fn: () => Promise<T>, options?: LockOptions): Promise<T> {
    return this.locks.with(`container-${id}`, fn, options);
  }

  /** Runs `fn` holding the names lock: every change of a name's holder happens inside. */
  async withNames<T>(fn: () => Promise<T>): Promise<T> {
    return this.locks.with(NAMES_LOCK, fn);
  }

  /**
   * Creates the container's directory (config, state, upper/work) and claims its name, both
   * or neither. A name held by a container whose directory is gone is taken over.
   * @param fillLayer fills the new upper/work dirs before the container becomes visible (a
   *   copying storage driver's copy of the image)
   */
  async create(record: ContainerRecord, state: ContainerState, fillLayer?: (layer: { upperDir: string; workDir: string }) => Promise<void>): Promise<void> {
    await this.init();
    const staging = join(this.containersDir, `.new-${record.id}-${process.pid}`);
    await mkdir(staging, { mode: 0o700 });
    try {
      await mkdir(join(staging, 'upper'), { mode: 0o755 });
      await mkdir(join(staging, 'work'), { mode: 0o700 });
      await fillLayer?.({ upperDir: join(staging, 'upper'), workDir: join(staging, 'work') });
      await writeJsonAtomic(join(staging, 'config.json'), record);
      await writeJsonAtomic(join(staging, 'state.json'), state);
      await this.withNames(async () => {
        const holder = await this.nameHolder(record.name);
        if (holder !== undefined && holder !== record.id && this.exists(holder)) {
          throw new ConflictError(`the container name "${record.name}" is already in use by container ${holder}: remove or rename that container to reuse the name`);
        }
        await rename(staging, this.dir(record.id));
        await this.setName(record.name, record.id);
      });
    } catch (error) {
      await removeTree(staging);
      throw error;
    }
  }

  /** Moves the name of `id` from `oldName` to `newName`, refusing a name in use. */
  async rename(id: string, oldName: string, newName: string, apply: () => Promise<void>): Promise<void> {
    await this.withNames(async () => {
      const holder = await this.nameHolder(newName);
      if (holder !== undefined && holder !== id && this.exists(holder)) {
        throw new ConflictError(`the container name "${newName}" is already in use by container ${holder}`);
      }
      await apply();
      await this.setName(newName, id);
      if (oldName !== newName) await this.dropName(oldName, id);
    });
  }

  /** Drops the name and the directory (renamed away first, so it never appears half-deleted). */
  async destroy(id: string, name: string): Promise<void> {
    await this.withNames(() => this.dropName(name, id));
    // A storage driver's host-side mount (fuse-overlayfs) and its daemon go first: the recursive
    // removal below would otherwise walk into the mount.
    await releaseFuseMount(this.dir(id));
    const trash = join(this.containersDir, `.trash-${id}-${process.pid}`);
    try {
      await rename(this.dir(id), trash);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return;
    }
    await removeOwnedTree(trash);
    this.locks.discard(`container-${id}`);
  }
}
