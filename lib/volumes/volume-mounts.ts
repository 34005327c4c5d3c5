/**
 * Turning a container's mount list into launchable mounts: every `{ type: 'volume' }` (named,
 * a {@link Volume}, or anonymous), every image `Volumes` path and every mount inherited with
 * `volumesFrom` becomes a bind of the volume's `_data`, after the volume was created (first
 * use), attached to its user (in-use tracking across processes) and filled by copy-up.
 *
 * The entry points for the container layer:
 *
 * - {@link resolveVolumeMounts} at create (or, for `run()`, before launch): attaches and
 *   returns `mounts` to launch with, `records` to store with the container (for `volumesFrom`,
 *   later starts and removal) and `release()`.
 * - {@link mountsForRecords} at each later start: the launchable mounts from stored records,
 *   with every tmpfs/loop backend mounted again if a reboot took it.
 * - {@link releaseVolumeMounts} at removal (in any process): detaches the container and, with
 *   `removeAnonymous` (`autoRemove`, `remove({ volumes: true })`), removes its anonymous volumes.
 * - {@link volumesFromMounts} / {@link parseVolumesFrom} for Docker's `--volumes-from c[:ro|:rw]`.
 * @module
 */
import { ValidationError } from '../errors.js';
import { normalizeRunOptions, type BindMount, type MountSpec, type TmpfsMount, type VolumeMount } from '../launch/run-options.js';
import type { CopyUpSource } from './copy-up.js';
import { Volume, type VolumeUserRef } from './volume.js';
import { anonymousVolumeName } from './volume-name.js';
import type { VolumeService } from './volume-service.js';

/** A resolved volume mount as stored with a container. */
export interface VolumeMountRecord {
  type: 'volume';
  name: string;
  target: string;
  readonly: boolean;
  /** This container created it for a mount without a source (or an image `Volumes` path): it goes with the container. */
  anonymous: boolean;
}

/** What a container stores about its mounts: volumes by name, binds and tmpfs as given. */
export type MountRecord = VolumeMountRecord | BindMount | TmpfsMount;

/** Mounts another container exposes to `volumesFrom`. */
export interface VolumesFromSource {
  /** That container's stored mount records. */
  mounts: readonly MountRecord[];
  /** `'ro'` / `'rw'` override every inherited mount's mode; absent keeps each one's. */
  mode?: 'ro' | 'rw';
}

export interface VolumeMountContext {
  volumes: VolumeService;
  /** Who mounts: a run (released when it ends) or a container (released when it is removed). */
  user: VolumeUserRef;
  /** Where copy-up reads the image's files; absent (host mode): no copy-up. */
  copyUp?: CopyUpSource;
  /** The image config's `Volumes` paths: an anonymous volume each, unless a mount targets it. */
  imageVolumes?: readonly string[];
  /** Mounts inherited from other containers (Docker's `volumesFrom`), after the explicit ones. */
  volumesFrom?: readonly VolumesFromSource[];
  signal?: AbortSignal;
}

export interface ResolvedVolumeMounts {
  /** Launchable mounts (volumes as binds of their data dirs), parents before children. */
  mounts: MountSpec[];
  /** What to store with the container. */
  records: MountRecord[];
  /** Detaches the user from every volume; `removeAnonymous` also removes the anonymous ones no one else uses. */
  release(options?: { removeAnonymous?: boolean }): Promise<void>;
}

/** True when the options hold a volume mount (then a Runtime must resolve them before launch). */
export function hasVolumeMounts(options: { mounts?: readonly unknown[] } | undefined): boolean {
  return Array.isArray(options?.mounts) && options!.mounts!.some((m) => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'volume');
}

/** `/a//b/` -> `/a/b`. */
function cleanTarget(target: string): string {
  return target.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
}

function depth(target: string): number {
  return cleanTarget(target).split('/').filter(Boolean).length;
}

/** Docker's `--volumes-from` syntax: `container`, `container:ro`, `container:rw`. */
export function parseVolumesFrom(spec: unknown, option = 'volumesFrom'): { container: string; mode?: 'ro' | 'rw' } {
  if (typeof spec !== 'string' || spec === '') throw new ValidationError(option, 'must be a container name or id, optionally with ":ro" or ":rw"');
  const m = /^([^:]+)(?::(ro|rw))?$/.exec(spec);
  if (!m) throw new ValidationError(option, `invalid volumesFrom ${JSON.stringify(spec)}: expected "container", "container:ro" or "container:rw"`);
  return { container: m[1]!, ...(m[2] ? { mode: m[2] as 'ro' | 'rw' } : {}) };
}

/**
 * The mounts `volumesFrom` inherits, Docker's rule: every volume and bind of the source
 * containers (tmpfs mounts are not inherited), with the mode overridden by `:ro`/`:rw`, and
 * inherited anonymous volumes not owned by the inheritor. Targets taken by `taken` (explicit
 * mounts) are skipped; the first source wins a target.
 */
export function volumesFromMounts(sources: readonly VolumesFromSource[], taken: ReadonlySet<string> = new Set()): Array<VolumeMountRecord | BindMount> {
  const seen = new Set(taken);
  const out: Array<VolumeMountRecord | BindMount> = [];
  for (const src of sources) {
    for (const m of src.mounts) {
      if (m.type === 'tmpfs') continue;
      const target = cleanTarget(m.target);
      if (seen.has(target)) continue;
      seen.add(target);
      const readonly = src.mode === 'ro' ? true : src.mode === 'rw' ? false : m.readonly === true;
      out.push(m.type === 'volume' ? { type: 'volume', name: m.name, target: m.target, readonly, anonymous: false } : { ...m, readonly });
    }
  }
  return out;
}

interface Pending {
  /** The volume to attach, or undefined to create an anonymous one. */
  name: string | undefined;
  /** A Volume given as source: it must exist already (it is not re-created under its name). */
  given?: Volume;
  target: string;
  readonly: boolean;
  nocopy: boolean;
  anonymous: boolean;
  /** Inherited through volumesFrom: must exist, and no copy-up. */
  inherited: boolean;
}

/**
 * Attaches every volume the mounts need and returns the launchable mounts. On failure nothing
 * stays attached, and anonymous volumes made for it are removed.
 * @throws ValidationError for a bad mount; NotFoundError for a missing Volume / inherited volume;
 *   ConflictError (lock timeout) and SystemError (copy-up, backend mount) from the store.
 */
export async function resolveVolumeMounts(mounts: readonly MountSpec[] | undefined, ctx: VolumeMountContext): Promise<ResolvedVolumeMounts> {
  // The same validation run() applies, so that containers get identical messages.
  normalizeRunOptions({ mounts: [...(mounts ?? [])] });
  const out: Array<{ mount: MountSpec; record: MountRecord }> = [];
  const pending: Pending[] = [];
  const taken = new Set<string>();
  (mounts ?? []).forEach((m, i) => {
    taken.add(cleanTarget(m.target));
    if (m.type !== 'volume') {
      out.push({ mount: m, record: m });
      return;
    }
    const vm = m as VolumeMount;
    let name: string | undefined;
    let given: Volume | undefined;
    if (vm.source instanceof Volume || (typeof vm.source === 'object' && vm.source !== null)) {
      given = vm.source as Volume;
      if (typeof given.mountpoint !== 'string') throw new ValidationError(`mounts[${i}].source`, 'must be a volume name or a Volume from rt.volumes');
      if (given.mountpoint !== ctx.volumes.store.dataDir(given.name)) {
        throw new ValidationError(`mounts[${i}].source`, `volume ${given.name} belongs to another runtime (${given.mountpoint}): get it from this runtime's volumes`);
      }
      name = given.name;
    } else {
      name = vm.source;
    }
    pending.push({ name, ...(given ? { given } : {}), target: vm.target, readonly: vm.readonly === true, nocopy: vm.nocopy === true, anonymous: name === undefined, inherited: false });
  });
  for (const m of volumesFromMounts(ctx.volumesFrom ?? [], taken)) {
    taken.add(cleanTarget(m.target));
    if (m.type === 'bind') out.push({ mount: m, record: m });
    else pending.push({ name: m.name, target: m.target, readonly: m.readonly, nocopy: true, anonymous: false, inherited: true });
  }
  (ctx.imageVolumes ?? []).forEach((path, i) => {
    if (typeof path !== 'string' || !path.startsWith('/')) throw new ValidationError(`image Volumes[${i}]`, `must be an absolute path, got ${JSON.stringify(path)}`);
    const target = cleanTarget(path);
    if (taken.has(target)) return;
    taken.add(target);
    pending.push({ name: undefined, target, readonly: false, nocopy: false, anonymous: true, inherited: false });
  });

  const attached: VolumeMountRecord[] = [];
  const release = (options: { removeAnonymous?: boolean } = {}) => releaseVolumeMounts(ctx.volumes, ctx.user, attached, options);
  try {
    for (const p of pending) {
      const { volume } = await ctx.volumes.attach(p.name ?? anonymousVolumeName(), ctx.user, {
        target: p.target,
        readonly: p.readonly,
        ...(p.given || p.inherited ? {} : { create: p.anonymous ? { anonymous: true } : {} }),
        ...(ctx.copyUp && !p.nocopy ? { copyUp: { source: ctx.copyUp, target: p.target } } : {}),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      const record: VolumeMountRecord = { type: 'volume', name: volume.name, target: p.target, readonly: p.readonly, anonymous: p.anonymous };
      attached.push(record);
      out.push({ mount: { type: 'bind', source: volume.mountpoint, target: p.target, readonly: p.readonly }, record });
    }
  } catch (error) {
    await release({ removeAnonymous: true }).catch(() => undefined);
    throw error;
  }
  // Parents before children (Docker sorts by path depth), so /data is not mounted over /data/logs.
  const sorted = out.map((e, i) => ({ e, i })).sort((a, b) => depth(a.e.mount.target) - depth(b.e.mount.target) || a.i - b.i);
  return { mounts: sorted.map((s) => s.e.mount), records: sorted.map((s) => s.e.record), release };
}

/**
 * Launchable mounts from stored records (a container's later start): each volume's backend is
 * mounted again if needed; no copy-up (that happened when the container was created).
 * @throws NotFoundError when a volume was removed meanwhile.
 */
export async function mountsForRecords(volumes: VolumeService, records: readonly MountRecord[]): Promise<MountSpec[]> {
  await volumes.ready();
  const out: MountSpec[] = [];
  for (const r of records) {
    if (r.type !== 'volume') {
      out.push(r);
      continue;
    }
    await volumes.store.ensureMounted(r.name);
    out.push({ type: 'bind', source: volumes.store.dataDir(r.name), target: r.target, readonly: r.readonly });
  }
  return out;
}

/**
 * Detaches `user` from the volumes of `records` (any process may do this, e.g. the one that
 * removes a container). With `removeAnonymous`, the anonymous volumes this user created are
 * removed too when nobody else uses them (Docker: `--rm`, `rm -v`). Volumes already gone are
 * skipped; errors from other volumes do not stop the rest, the first is rethrown at the end.
 */
export async function releaseVolumeMounts(
  volumes: VolumeService,
  user: VolumeUserRef,
  records: readonly MountRecord[],
  options: { removeAnonymous?: boolean } = {},
): Promise<void> {
  let first: unknown;
  const done = new Set<string>();
  for (const r of records) {
    if (r.type !== 'volume' || done.has(r.name)) continue;
    done.add(r.name);
    try {
      await volumes.detach(r.name, user, { target: r.target, readonly: r.readonly, removeAnonymous: options.removeAnonymous === true && r.anonymous });
    } catch (error) {
      first ??= error;
    }
  }
  if (first !== undefined) throw first;
}
