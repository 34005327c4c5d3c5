/**
 * User-namespace id maps: explicit, or `'auto'`.
 *
 * `'auto'` gives every container its own host id range, as Podman's `--userns=auto` does: two
 * containers that shared one range would be the same host user, so root in one could signal,
 * ptrace-attach (through a shared pid view) or write the files of the other. Ranges are
 * allocated from a host-wide registry (`userns-ranges.json` in the default state dir, under its
 * lock), so every process and every runtime on the host draws from one pool:
 *
 * - the pool is the `containers` entries of /etc/subuid and /etc/subgid when both exist (the
 *   convention Podman uses), else {@link AUTO_SLOTS} ranges of {@link AUTO_SIZE} ids from
 *   {@link AUTO_HOST_BASE} (1 Gi, far above any real account);
 * - a `run()` holds its range until its container exits; a container of `rt.containers` from
 *   create to remove (the explicit maps are stored with it, so a restart keeps its files' owners);
 * - an entry whose owner process died and whose container directory is gone is reclaimed by the
 *   next allocation (a crashed owner).
 * @module
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConflictError, ValidationError } from '../errors.js';
import { isAlive, processStartTime, type ProcessIdentity } from '../state/process-identity.js';
import { readJson, writeJsonAtomic } from '../state/atomic-file.js';
import { LockDir } from '../state/lock.js';
import type { IdMapping, RunOptions } from './run-options.js';

/** First host id of the default pool (without a `containers` entry in /etc/subuid). */
export const AUTO_HOST_BASE = 0x4000_0000;
/** Ids per container: 0..65535 in the container, as Podman's default. */
export const AUTO_SIZE = 65536;
/** Ranges in the default pool: 2^26 host ids. */
export const AUTO_SLOTS = 1024;
/** Where the registry lives: berth's default state dir, the one place every process shares. */
export const USERNS_REGISTRY_DIR = '/var/lib/berth';

/** Who holds a range: a process (until it exits) and/or a container directory (until removed). */
export interface RangeOwner {
  /** Unique per holder: `run:<launch id>` or `container:<id>`. */
  key: string;
  /** A container's state directory: the range is held while it exists. */
  containerDir?: string;
}

interface RegistryEntry {
  key: string;
  slot: number;
  owner: ProcessIdentity;
  containerDir?: string;
}

interface Registry {
  version: 1;
  entries: RegistryEntry[];
}

/** The pool: uid and gid starts of slot 0 and how many slots there are. */
export interface AutoPool {
  uidBase: number;
  gidBase: number;
  slots: number;
}

function subidRange(file: string, user: string): { start: number; count: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, start, count] = line.trim().split(':');
    if (name === user && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '')) return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

/** The host's pool: /etc/subuid and /etc/subgid `containers` entries, or the default. */
export function autoPool(files: { subuid?: string; subgid?: string } = {}): AutoPool {
  const u = subidRange(files.subuid ?? '/etc/subuid', 'containers');
  const g = subidRange(files.subgid ?? '/etc/subgid', 'containers');
  if (u && g) {
    const slots = Math.floor(Math.min(u.count, g.count) / AUTO_SIZE);
    if (slots > 0) return { uidBase: u.start, gidBase: g.start, slots };
  }
  return { uidBase: AUTO_HOST_BASE, gidBase: AUTO_HOST_BASE, slots: AUTO_SLOTS };
}

function ownIdentity(): ProcessIdentity {
  return { pid: process.pid, startTime: processStartTime(process.pid) ?? '' };
}

function stale(e: RegistryEntry): boolean {
  if (isAlive(e.owner)) return false;
  return e.containerDir === undefined || !existsSync(e.containerDir);
}

export interface AllocateOptions {
  /** Default {@link USERNS_REGISTRY_DIR}. */
  registryDir?: string;
  /** Default {@link autoPool}(). */
  pool?: AutoPool;
}

/** Explicit maps for one `'auto'` container, and where they came from. */
export interface AutoRange {
  slot: number;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
}

function registryOf(dir: string): { locks: LockDir; file: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { locks: new LockDir(dir, { timeoutMs: 30_000, describe: () => 'the user-namespace range registry' }), file: join(dir, 'userns-ranges.json') };
}

/**
 * Allocates the lowest free range for `owner` (the same one again if `owner.key` holds one).
 * @throws ConflictError when every range of the pool is held.
 */
export async function allocateAutoRange(owner: RangeOwner, options: AllocateOptions = {}): Promise<AutoRange> {
  const pool = options.pool ?? autoPool();
  const { locks, file } = registryOf(options.registryDir ?? USERNS_REGISTRY_DIR);
  const slot = await locks.with('userns', async () => {
    const reg = (await readJson<Registry>(file)) ?? { version: 1, entries: [] };
    const live = reg.entries.filter((e) => !stale(e));
    const mine = live.find((e) => e.key === owner.key);
    if (mine) return mine.slot;
    const used = new Set(live.map((e) => e.slot));
    let free = 0;
    while (used.has(free)) free++;
    if (free >= pool.slots) throw new ConflictError(`userns: 'auto': all ${pool.slots} host id ranges are in use (remove containers, or give a larger "containers" range in /etc/subuid and /etc/subgid)`);
    live.push({ key: owner.key, slot: free, owner: ownIdentity(), ...(owner.containerDir ? { containerDir: owner.containerDir } : {}) });
    await writeJsonAtomic(file, { version: 1, entries: live } satisfies Registry);
    return free;
  });
  const map = (base: number): IdMapping[] => [{ containerId: 0, hostId: base + slot * AUTO_SIZE, size: AUTO_SIZE }];
  return { slot, uidMap: map(pool.uidBase), gidMap: map(pool.gidBase) };
}

/** Gives back the range `key` holds (nothing if it holds none). */
export async function releaseAutoRange(key: string, options: Pick<AllocateOptions, 'registryDir'> = {}): Promise<void> {
  const { locks, file } = registryOf(options.registryDir ?? USERNS_REGISTRY_DIR);
  await locks.with('userns', async () => {
    const reg = await readJson<Registry>(file);
    if (!reg || !reg.entries.some((e) => e.key === key)) return;
    await writeJsonAtomic(file, { version: 1, entries: reg.entries.filter((e) => e.key !== key) } satisfies Registry);
  });
}

function render(maps: IdMapping[], option: string): string {
  // The kernel takes at most 340 lines and refuses overlapping ranges; catch the easy mistakes here.
  if (maps.length > 340) throw new ValidationError(option, 'at most 340 ranges');
  const sorted = [...maps].sort((a, b) => a.containerId - b.containerId);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.containerId < sorted[i - 1]!.containerId + sorted[i - 1]!.size) {
      throw new ValidationError(option, `ranges overlap at container id ${sorted[i]!.containerId}`);
    }
  }
  return maps.map((m) => `${m.containerId} ${m.hostId} ${m.size}\n`).join('');
}

/** The uid_map and gid_map texts the launcher writes for the child. */
export function resolveIdMaps(userns: NonNullable<RunOptions['userns']>): { uidMap: string; gidMap: string } {
  // The launcher replaces 'auto' with an allocated range (allocateAutoRange) before planning.
  if (userns === 'auto') throw new ConflictError("userns: 'auto' reached the launch plan without an allocated range");
  return { uidMap: render(userns.uidMap, 'userns.uidMap'), gidMap: render(userns.gidMap, 'userns.gidMap') };
}


/** The host id a map gives the container's root (id 0); throws when the map leaves 0 unmapped. */
export function hostIdOfRoot(map: readonly IdMapping[]): number {
  const m = map.find((e) => e.containerId <= 0 && e.containerId + e.size > 0);
  if (!m) throw new ValidationError('userns', "the id map does not map the container's root (id 0)");
  return m.hostId - m.containerId;
}
