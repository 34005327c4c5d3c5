/**
 * `RUN --mount=…` as launch mounts: `type=cache` (a directory kept in the state dir across
 * builds, keyed by `id`, default the target), `type=bind` (read-only, from the context or a
 * flattened stage or image with `from=`),
 * `type=secret` (a host file named in the build's `secrets`, read-only, default target
 * `/run/secrets/<id>`), `type=tmpfs`. A bind source is resolved inside the context as every
 * context path is (symlinks cannot lead out of it), and must hold no symlink at all by the
 * time it is mounted.
 * @module
 */
import { createHash } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { MergedView } from '../image/merged-view.js';
import type { MountSpec } from '../launch/run-options.js';
import { BuildSourceNotFoundError, BuildUnsupportedError, DockerfileSyntaxError } from './build-errors.js';
import type { Flag } from './instructions.js';

export interface MountContext {
  /** The build context's directory and view (bind sources). */
  contextDir: string;
  contextView: MergedView;
  /** Where cache mounts live: `<state>/build-cache/mounts`. */
  cacheDir: string;
  secrets: Readonly<Record<string, string>>;
  workdir: string;
  /** Flattened stages and images for `from=`, by the name the flag gives (see `flatten.ts`). */
  fromTrees?: ReadonlyMap<string, { dir: string; view: MergedView; key: string }>;
}

export interface ResolvedMounts {
  mounts: MountSpec[];
  targets: string[];
  /** What the cache key needs: the mounts as specified (cache dirs and secrets by id only). */
  keyParts: string[];
}

function fields(spec: string, loc: Flag['loc']): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of spec.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? 'true' : part.slice(eq + 1);
    if (out.has(k)) throw new DockerfileSyntaxError(loc, `--mount: ${k} given twice`);
    out.set(k, v);
  }
  return out;
}

/** The launch mounts of a RUN's `--mount` flags (values already expanded). */
export function resolveMounts(flags: Array<{ value: string; loc: Flag['loc'] }>, ctx: MountContext): ResolvedMounts {
  const out: ResolvedMounts = { mounts: [], targets: [], keyParts: [] };
  for (const f of flags) {
    const m = fields(f.value, f.loc);
    const type = m.get('type') ?? 'bind';
    const rawTarget = m.get('target') ?? m.get('dst') ?? m.get('destination');
    const target = (t: string) => posix.resolve(ctx.workdir, t);
    const readonly = m.has('ro') || m.has('readonly') ? (m.get('ro') ?? m.get('readonly')) !== 'false' : undefined;
    switch (type) {
      case 'cache': {
        if (!rawTarget) throw new DockerfileSyntaxError(f.loc, '--mount=type=cache needs a target');
        const t = target(rawTarget);
        const id = m.get('id') ?? t;
        const dir = join(ctx.cacheDir, createHash('sha256').update(id).digest('hex').slice(0, 32));
        mkdirSync(dir, { recursive: true, mode: m.has('mode') ? Number.parseInt(m.get('mode')!, 8) : 0o755 });
        out.mounts.push({ type: 'bind', source: dir, target: t, readonly: readonly === true });
        out.targets.push(t);
        out.keyParts.push(`cache:${id}:${t}:${readonly === true}`);
        break;
      }
      case 'bind': {
        if (!rawTarget) throw new DockerfileSyntaxError(f.loc, '--mount=type=bind needs a target');
        if (m.has('rw') || m.has('readwrite')) throw new BuildUnsupportedError(f.loc, '--mount=type=bind,rw is not supported: berth binds the context read-only');
        const source = m.get('source') ?? m.get('src') ?? '/';
        const from = m.get('from');
        const tree = from === undefined ? { dir: ctx.contextDir, view: ctx.contextView, key: 'context' } : ctx.fromTrees?.get(from);
        if (!tree) throw new BuildSourceNotFoundError(f.loc, `--mount from=${from}: no such stage or image`);
        const what = from === undefined ? 'the build context' : `${from}`;
        const rel = tree.view.resolve(`/${source}`);
        if (rel === null) throw new BuildSourceNotFoundError(f.loc, `--mount source ${source} is not in ${what}`);
        // No symlink may remain on the host path we hand to the kernel (the tree may change under us).
        if (rel !== '' && tree.view.layers[0]!.lstat(rel) === null) throw new BuildSourceNotFoundError(f.loc, `--mount source ${source} is not in ${what}`);
        const host = rel === '' ? tree.dir : join(tree.dir, rel);
        const t = target(rawTarget);
        out.mounts.push({ type: 'bind', source: host, target: t, readonly: true });
        out.targets.push(t);
        out.keyParts.push(`bind:${tree.key}:${rel}:${t}`);
        break;
      }
      case 'secret': {
        const id = m.get('id') ?? (rawTarget ? posix.basename(rawTarget) : undefined);
        if (!id) throw new DockerfileSyntaxError(f.loc, '--mount=type=secret needs an id or a target');
        const t = target(rawTarget ?? `/run/secrets/${id}`);
        const host = ctx.secrets[id];
        const required = m.get('required') === 'true';
        if (host === undefined) {
          if (required) throw new BuildSourceNotFoundError(f.loc, `secret ${id} is required but was not given in the build's secrets`);
          break;
        }
        try {
          if (!statSync(host).isFile()) throw new Error('not a file');
        } catch (e) {
          throw new BuildSourceNotFoundError(f.loc, `secret ${id}: ${host} is not a readable file`, { cause: e });
        }
        out.mounts.push({ type: 'bind', source: host, target: t, readonly: true });
        out.targets.push(t);
        out.keyParts.push(`secret:${id}:${t}`);
        break;
      }
      case 'tmpfs': {
        if (!rawTarget) throw new DockerfileSyntaxError(f.loc, '--mount=type=tmpfs needs a target');
        const t = target(rawTarget);
        const size = m.get('size');
        out.mounts.push({ type: 'tmpfs', target: t, ...(size ? { size: Number(size) || size } : {}) });
        out.targets.push(t);
        out.keyParts.push(`tmpfs:${t}:${size ?? ''}`);
        break;
      }
      default:
        throw new BuildUnsupportedError(f.loc, `--mount=type=${type} is not supported (use cache, bind, secret or tmpfs)`);
    }
  }
  return out;
}
