/**
 * The containers' part of the state directory (layout in `docs/design/containers.md`):
 *
 *   containers/<id>/config.json, state.json, upper/, work/, container.log[.N], run.json (a
 *                             detached container's monitor's; exit.json from older monitors)
 *   containers/names.json     name -> id, changed only under the `container-names` lock
 *   locks/container-<id>.lock one per container; every multi-step change holds it
 *
 * A container directory appears complete or not at all: it is built as `.new-<id>-<pid>` and
 * renamed into place, and removed by renaming it to `.trash-<id>-<pid>` first. The pid in
 * those names lets reconciliation clean up after a writer that died.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, NotFoundError } from '../errors.js';
import { readJson, writeJsonAtomic } from '../state/atomic-file.js';
import { LockDir, type HeldLock, type LockOptions } from '../state/lock.js';
import type { ContainerRecord, ContainerState } from './container-record.js';

const ID_RE = /^[0-9a-f]{64}$/;
const NAMES_LOCK = 'container-names';

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
  get namesPath(): string {
    return join(this.containersDir, 'names.json');
  }

  async init(): Promise<void> {
    await mkdir(this.containersDir, { recursive: true, mode: 0o700 });
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

  async readNames(): Promise<Record<string, string>> {
    return (await readJson<Record<string, string>>(this.namesPath)) ?? {};
  }

  lockContainer(id: string, options?: LockOptions): Promise<HeldLock> {
    return this.locks.acquire(`container-${id}`, options);
  }

  async withContainer<T>(id: string, fn: () => Promise<T>, options?: LockOptions): Promise<T> {
    return this.locks.with(`container-${id}`, fn, options);
  }

  async withNames<T>(fn: (names: Record<string, string>) => Promise<T>): Promise<T> {
    return this.locks.with(NAMES_LOCK, async () => fn(await this.readNames()));
  }

  writeNames(names: Record<string, string>): Promise<void> {
    return writeJsonAtomic(this.namesPath, names);
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
      await this.withNames(async (names) => {
        const holder = names[record.name];
        if (holder !== undefined && holder !== record.id && this.exists(holder)) {
          throw new ConflictError(`the container name "${record.name}" is already in use by container ${holder}: remove or rename that container to reuse the name`);
        }
        await rename(staging, this.dir(record.id));
        names[record.name] = record.id;
        await this.writeNames(names);
      });
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  }

  /** Moves the name of `id` from `oldName` to `newName`, refusing a name in use. */
  async rename(id: string, oldName: string, newName: string, apply: () => Promise<void>): Promise<void> {
    await this.withNames(async (names) => {
      const holder = names[newName];
      if (holder !== undefined && holder !== id && this.exists(holder)) {
        throw new ConflictError(`the container name "${newName}" is already in use by container ${holder}`);
      }
      await apply();
      if (names[oldName] === id) delete names[oldName];
      names[newName] = id;
      await this.writeNames(names);
    });
  }

  /** Drops the name and the directory (renamed away first, so it never appears half-deleted). */
  async destroy(id: string, name: string): Promise<void> {
    await this.withNames(async (names) => {
      if (names[name] === id) {
        delete names[name];
        await this.writeNames(names);
      }
    });
    const trash = join(this.containersDir, `.trash-${id}-${process.pid}`);
    try {
      await rename(this.dir(id), trash);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return;
    }
    await rm(trash, { recursive: true, force: true });
    this.locks.discard(`container-${id}`);
  }
}
