/**
 * Runs the stages a target needs, in dependency order, step by step: FROM (an image from the
 * store, pulled when missing; `scratch`; an earlier stage), the base image's ONBUILD triggers,
 * then each instruction. Metadata instructions only change the config (`stage-state.ts`); RUN,
 * COPY, ADD and WORKDIR make layers, each looked up in the build cache by its key first.
 *
 * Cache key of a step (see `docs/design/build.md`): the previous step's key, then the step's
 * expanded instruction; for RUN the argv, the environment it sees (ENV and visible ARGs: an
 * ARG invalidates from the first RUN after its declaration, as in Docker, and COPY only when
 * its expansion uses it), mounts and network; for COPY/ADD the content hash of the source set
 * and, with `--from`, the source stage's final key (or the image's id).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { NotFoundError, isBerthError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { NetworkService } from '../network/network-service.js';
import type { ImageLayerRecord } from '../image/image-table.js';
import { MergedView } from '../image/merged-view.js';
import { isDir } from '../image/overlay-format.js';
import type { ContainerConfig, HistoryEntry, ImageConfig, Platform } from '../image/manifest.js';
import type { BuildProgress } from '../image/build-types.js';
import { BuildCache, cacheKey } from './build-cache.js';
import { BuildSourceNotFoundError, BuildStepFailedError, BuildUnsupportedError, DockerfileSyntaxError } from './build-errors.js';
import type { BuildContext } from './build-context.js';
import { resolveChown } from './chown.js';
import { copyLayerTar } from './copy-layer.js';
import { parseChmod, planCopy, type CopyPlan, type SourceTree } from './copy-plan.js';
import { parseDockerfile } from './dockerfile-parser.js';
import { fileCreatedBy, runCreatedBy } from './history.js';
import { toInstruction, type Instruction } from './instructions.js';
import { publishLayer } from './layer-publish.js';
import { flattenLayers } from './flatten.js';
import { resolveMounts } from './run-mounts.js';
import { runStep } from './run-step.js';
import { GlobalArgs, StageState } from './stage-state.js';
import { stageNamed, type Stage, type StagedDockerfile } from './stages.js';

/** Docker's default PATH, given to a stage whose base has none. */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A stage (or a step of one) as far as it got: layers, config, cache key. */
export interface StageResult {
  layers: ImageLayerRecord[];
  config: ImageConfig;
  key: string;
}

export interface ExecutorOptions {
  images: ImageService;
  cache: BuildCache;
  context: BuildContext;
  dockerfile: StagedDockerfile;
  globals: GlobalArgs;
  platform: Platform;
  noCache: boolean;
  pull: boolean;
  network: string;
  secrets: Readonly<Record<string, string>>;
  /** The runtime's networks: they resolve a network name in `network`. */
  networks?: NetworkService;
  /** SOURCE_DATE_EPOCH, seconds: history times and COPY mtimes. */
  epoch?: number;
  /** Where RUN steps keep their upper dirs (under the store's tmp/). */
  scratchDir: string;
  onProgress: (e: BuildProgress) => void;
  signal?: AbortSignal;
  total: number;
}

export class Executor {
  private step = 0;
  private readonly results = new Map<number, StageResult>();

  constructor(private readonly o: ExecutorOptions) {}

  private now(): string {
    return this.o.epoch !== undefined ? new Date(this.o.epoch * 1000).toISOString() : new Date().toISOString();
  }

  private lowerDirs(layers: readonly ImageLayerRecord[]): string[] {
    return [...layers].reverse().map((l) => this.o.images.store.layerDir(l.chainId));
  }

  /** Builds `stages` in order; returns the last one's result. */
  async run(stages: Stage[]): Promise<StageResult> {
    let last: StageResult | undefined;
    for (const s of stages) {
      last = await this.buildStage(s);
      this.results.set(s.index, last);
    }
    return last!;
  }

  private emit(stage: Stage, instruction: string, cached: boolean, line?: string): void {
    try {
      this.o.onProgress({ stage: stage.name ?? String(stage.index), step: this.step, total: this.o.total, instruction, cached, ...(line !== undefined ? { line } : {}) });
    } catch {
      // A throwing progress callback must not break the build.
    }
  }

  private async base(stage: Stage): Promise<StageResult> {
    const { globals, images } = this.o;
    const ref = globals.expand(stage.from.image, stage.from.loc);
    if (stage.from.platform !== undefined) globals.expand(stage.from.platform, stage.from.loc); // recorded, checked for syntax only
    if (ref.toLowerCase() === 'scratch') {
      return {
        layers: [],
        config: { architecture: this.o.platform.architecture, os: this.o.platform.os, ...(this.o.platform.variant ? { variant: this.o.platform.variant } : {}), config: { Env: [DEFAULT_PATH] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
        key: cacheKey(['FROM', 'scratch', this.o.platform]),
      };
    }
    const dep = stageNamed(this.o.dockerfile, ref, stage.index);
    if (dep) {
      const r = this.results.get(dep.index);
      if (!r) throw new Error(`stage ${ref} was not built before stage ${stage.index}`);
      return structuredClone(r);
    }
    let record;
    try {
      if (this.o.pull) throw new NotFoundError('pull requested');
      record = await images.record(ref);
    } catch (e) {
      if (!(isBerthError(e) && e instanceof NotFoundError)) throw e;
      try {
        await images.pull(ref, this.o.signal ? { signal: this.o.signal } : {});
      } catch (pullError) {
        if (isBerthError(pullError) && pullError instanceof NotFoundError) throw new BuildSourceNotFoundError(stage.from.loc, `base image ${ref} not found: ${pullError.message}`, { cause: pullError });
        throw pullError;
      }
      record = await images.record(ref);
    }
    const { config } = await images.rootfsFor(record.id);
    const cfg = structuredClone(config);
    cfg.config = cfg.config ?? {};
    if (!(cfg.config.Env ?? []).some((e) => e.startsWith('PATH='))) cfg.config.Env = [...(cfg.config.Env ?? []), DEFAULT_PATH];
    return { layers: record.layers, config: cfg, key: cacheKey(['FROM', record.id]) };
  }

  private async buildStage(stage: Stage): Promise<StageResult> {
    this.o.signal?.throwIfAborted();
    this.step++;
    this.emit(stage, stage.from.original, false);
    const base = await this.base(stage);
    const state = new StageState(base.config.config ?? {}, this.o.globals);
    const cur: StageResult = base;
    delete cur.config.author;
    // ONBUILD triggers of the base run first, and are not inherited further (Docker).
    const triggers = (state.config.OnBuild as string[] | null | undefined) ?? [];
    if (triggers.length > 0) state.config.OnBuild = null;
    const onbuild: Instruction[] = triggers.map((t) => {
      const parsed = parseDockerfile(t, `${this.o.dockerfile.file} (ONBUILD of ${stage.from.image})`);
      const raw = parsed.instructions[0];
      if (!raw) throw new DockerfileSyntaxError(stage.from.loc, `empty ONBUILD trigger in the base image ${stage.from.image}`);
      return { ...toInstruction(raw, parsed.escape), loc: stage.from.loc };
    });
    for (const instr of [...onbuild, ...stage.instructions]) {
      this.o.signal?.throwIfAborted();
      if (stage.instructions.includes(instr)) this.step++;
      await this.dispatch(stage, state, cur, instr);
    }
    if (state.author !== undefined) cur.config.author = state.author;
    cur.config.config = state.config;
    return cur;
  }

  private async dispatch(stage: Stage, state: StageState, cur: StageResult, instr: Instruction): Promise<void> {
    switch (instr.kind) {
      case 'FROM':
        throw new DockerfileSyntaxError(instr.loc, 'FROM inside a stage');
      case 'RUN':
        return this.layerStep(stage, cur, instr, await this.runKey(stage, state, cur, instr), () => this.doRun(stage, state, cur, instr));
      case 'COPY':
      case 'ADD':
        return this.copyStep(stage, state, cur, instr);
      case 'WORKDIR':
        return this.workdirStep(stage, state, cur, instr as Instruction & { kind: 'WORKDIR'; value: string });
      default: {
        // Cached too, only for its history entry: a rebuild then gives the same image id.
        const createdBy = state.applyMetadata(instr);
        const key = cacheKey([cur.key, createdBy]);
        return this.layerStep(stage, cur, instr, key, async () => ({ layer: null, createdBy }));
      }
    }
  }

  /** A layer step: cache lookup by key, else `make`, then the entry is stored either way. */
  private async layerStep(
    stage: Stage,
    cur: StageResult,
    instr: Instruction,
    key: string,
    make: () => Promise<{ layer: ImageLayerRecord | null; createdBy: string }>,
  ): Promise<void> {
    const hit = this.o.noCache ? undefined : await this.o.cache.get(key);
    let layer: ImageLayerRecord | null;
    let history: HistoryEntry;
    if (hit) {
      this.emit(stage, instr.original, true);
      layer = hit.layer;
      history = hit.history;
    } else {
      this.emit(stage, instr.original, false);
      const made = await make();
      layer = made.layer;
      history = { created: this.now(), created_by: made.createdBy, ...(layer ? {} : { empty_layer: true }) };
      await this.o.cache.put({ key, layer, history, created: new Date().toISOString() });
    }
    cur.key = key;
    if (layer) {
      cur.layers = [...cur.layers, layer];
      cur.config.rootfs = { type: 'layers', diff_ids: [...cur.config.rootfs.diff_ids, layer.diffId] };
    }
    cur.config.history = [...(cur.config.history ?? []), history];
  }

  // ---- RUN --------------------------------------------------------------------------------

  /**
   * The RUN's argv. `RUN <<EOF` alone runs the heredoc as the script; with a `#!` line it is
   * an executable file at `/dev/pipes/<name>` (as BuildKit mounts it). Otherwise the shell
   * reads the heredocs itself, after the command line.
   */
  private runArgv(state: StageState, instr: Extract<Instruction, { kind: 'RUN' }>): { argv: string[]; script?: { name: string; content: string } } {
    const { command } = instr;
    if (command.exec) return { argv: [...command.argv] };
    const docs = instr.heredocs;
    if (docs.length === 1 && /^<<-?["']?[A-Za-z_][A-Za-z0-9_.-]*["']?$/.test(command.script.trim())) {
      const doc = docs[0]!;
      // A RUN heredoc is not expanded by the builder: its interpreter sees the variables in its environment.
      const body = doc.content;
      if (body.startsWith('#!')) return { argv: [`/dev/pipes/${doc.name}`], script: { name: doc.name, content: body } };
      return { argv: [...state.shell, body] };
    }
    if (docs.length > 0) return { argv: [...state.shell, `${command.script}\n${docs.map((d) => `${d.content}${d.name}`).join('\n')}\n`] };
    return { argv: [...state.shell, command.script] };
  }

  /** Flattened `from=` trees of a RUN's bind mounts, made once per build and source. */
  private readonly fromTrees = new Map<string, Promise<{ dir: string; view: MergedView; key: string }>>();

  private async mountTrees(stage: Stage, flags: Array<{ value: string; loc: Instruction['loc'] }>): Promise<Map<string, { dir: string; view: MergedView; key: string }>> {
    const out = new Map<string, { dir: string; view: MergedView; key: string }>();
    for (const f of flags) {
      const from = /(?:^|,)from=([^,]+)/.exec(f.value)?.[1];
      if (from === undefined || out.has(from)) continue;
      const dep = stageNamed(this.o.dockerfile, from, stage.index);
      let layers: ImageLayerRecord[];
      let key: string;
      if (dep) {
        const r = this.results.get(dep.index);
        if (!r) throw new BuildSourceNotFoundError(f.loc, `stage ${from} was not built`);
        ({ layers, key } = r);
      } else {
        let record;
        try {
          record = await this.o.images.record(from).catch(async (e: unknown) => {
            if (!(isBerthError(e) && e instanceof NotFoundError)) throw e;
            await this.o.images.pull(from, this.o.signal ? { signal: this.o.signal } : {});
            return this.o.images.record(from);
          });
        } catch (e) {
          throw new BuildSourceNotFoundError(f.loc, `--mount from=${from}: no stage and no image of that name (${(e as Error).message})`, { cause: e });
        }
        layers = record.layers;
        key = record.id;
      }
      let tree = this.fromTrees.get(key);
      if (!tree) {
        const dir = join(this.o.scratchDir, `from-${this.fromTrees.size}`);
        tree = flattenLayers(this.o.images.store, this.lowerDirs(layers), dir, this.o.signal).then(() => ({ dir, view: MergedView.open([dir]), key }));
        this.fromTrees.set(key, tree);
      }
      out.set(from, await tree);
    }
    return out;
  }

  /** Closes the views of flattened trees (their directories go with the scratch dir). */
  async close(): Promise<void> {
    for (const t of this.fromTrees.values()) (await t.catch(() => undefined))?.view.close();
  }

  private async runMounts(stage: Stage, state: StageState, instr: Extract<Instruction, { kind: 'RUN' }>) {
    const flags = instr.mounts.map((m) => ({ value: state.expand(m.value ?? '', m.loc), loc: m.loc }));
    const fromTrees = await this.mountTrees(stage, flags);
    return resolveMounts(flags, {
      fromTrees,
      contextDir: this.o.context.dir,
      contextView: this.o.context.view,
      cacheDir: join(this.o.cache.dir, 'mounts'),
      secrets: this.o.secrets,
      workdir: state.config.WorkingDir || '/',
    });
  }

  private runNetwork(state: StageState, instr: Extract<Instruction, { kind: 'RUN' }>): string {
    if (instr.security !== undefined && state.expand(instr.security, instr.loc) !== 'sandbox') throw new BuildUnsupportedError(instr.loc, `RUN --security=${instr.security} is not supported: RUN steps always run sandboxed`);
    if (instr.network === undefined) return this.o.network;
    const n = state.expand(instr.network, instr.loc);
    if (n === 'default') return this.o.network;
    if (n === 'none' || n === 'host') return n;
    throw new DockerfileSyntaxError(instr.loc, `RUN --network must be default, none or host, got ${JSON.stringify(n)}`);
  }

  private async runKey(stage: Stage, state: StageState, cur: StageResult, instr: Extract<Instruction, { kind: 'RUN' }>): Promise<string> {
    const { argv, script } = this.runArgv(state, instr);
    const visible = state.visibleArgs();
    const mounts = await this.runMounts(stage, state, instr);
    return cacheKey([cur.key, 'RUN', argv, script?.content ?? null, state.config.Env ?? [], visible, state.config.User ?? '', state.config.WorkingDir ?? '', mounts.keyParts, this.runNetwork(state, instr)]);
  }

  private async doRun(stage: Stage, state: StageState, cur: StageResult, instr: Extract<Instruction, { kind: 'RUN' }>): Promise<{ layer: ImageLayerRecord | null; createdBy: string }> {
    const { argv, script } = this.runArgv(state, instr);
    const mounts = await this.runMounts(stage, state, instr);
    if (script) {
      const dir = join(this.o.scratchDir, `heredoc-${randomBytes(6).toString('hex')}`);
      await mkdir(dir, { mode: 0o755 });
      await writeFile(join(dir, script.name), script.content, { mode: 0o755 });
      const target = `/dev/pipes/${script.name}`;
      mounts.mounts.push({ type: 'bind', source: join(dir, script.name), target, readonly: true });
      mounts.targets.push(target);
    }
    let lowerDirs = this.lowerDirs(cur.layers);
    if (lowerDirs.length === 0) {
      // scratch: overlay needs a lower layer, an empty one will do.
      const empty = join(this.o.scratchDir, 'empty-lower');
      await mkdir(empty, { recursive: true, mode: 0o755 });
      lowerDirs = [empty];
    }
    const result = await runStep({
      lowerDirs,
      argv,
      env: state.runEnv(),
      ...(state.config.WorkingDir ? { workdir: state.config.WorkingDir } : {}),
      ...(state.config.User ? { user: state.config.User } : {}),
      network: this.runNetwork(state, instr),
      mounts: mounts.mounts,
      mountTargets: mounts.targets,
      scratchDir: this.o.scratchDir,
      ...(this.o.networks ? { networks: this.o.networks } : {}),
      ...(this.o.signal ? { signal: this.o.signal } : {}),
      onLine: (line) => this.emit(stage, instr.original, false, line),
    });
    try {
      if (result.exitCode !== 0) throw new BuildStepFailedError(instr.loc, instr.original, result.exitCode, result.tail);
      const layer = await publishLayer(this.o.images.store, result.archive(), cur.layers, this.lowerDirs(cur.layers), this.o.signal);
      return { layer, createdBy: runCreatedBy(argv, state.visibleArgs()) };
    } finally {
      await result.dispose();
    }
  }

  // ---- COPY / ADD -------------------------------------------------------------------------

  private async copyStep(stage: Stage, state: StageState, cur: StageResult, instr: Extract<Instruction, { kind: 'COPY' | 'ADD' }>): Promise<void> {
    const sources = instr.sources.map((s) => state.expand(s, instr.loc));
    for (const s of sources) {
      if (instr.kind === 'ADD' && /^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw new BuildUnsupportedError(instr.loc, `ADD of a URL (${s}) is not supported: berth builds have no network access for ADD; download the file into the context or RUN curl`);
      if (instr.kind === 'ADD' && /^git@|\.git(#|$)/.test(s)) throw new BuildUnsupportedError(instr.loc, `ADD of a git repository (${s}) is not supported`);
    }
    const destWord = state.expand(instr.dest, instr.loc);
    const workdir = state.config.WorkingDir || '/';
    const dest = destWord.startsWith('/') ? destWord : `${posix.join(workdir, destWord)}${destWord.endsWith('/') || destWord === '.' ? '/' : ''}`;
    const fromValue = instr.kind === 'COPY' ? state.flag(instr.from) : undefined;
    const chownValue = state.flag(instr.chown);
    const chmodValue = state.flag(instr.chmod);
    const mode = chmodValue !== undefined ? parseChmod(chmodValue, instr.chmod!.loc) : undefined;
    // Heredoc sources (`COPY <<EOF /file`): the word names the document; unquoted bodies expand.
    const namedInline = new Map<string, Buffer>();
    for (const word of instr.sources) {
      const m = /^<<-?(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\1$/.exec(word);
      const doc = m ? instr.heredocs.find((d) => d.name === m[2]) : undefined;
      if (doc) namedInline.set(word, Buffer.from(doc.quoted ? doc.content : state.expandHeredoc(doc.content, instr.loc)));
    }

    // The source tree: the context, a stage, or an image.
    let tree: SourceTree;
    let fromKey: string | undefined;
    let closeTree = () => {};
    if (fromValue !== undefined) {
      const dep = stageNamed(this.o.dockerfile, fromValue, stage.index);
      let layers: ImageLayerRecord[];
      if (dep) {
        const r = this.results.get(dep.index);
        if (!r) throw new BuildSourceNotFoundError(instr.from!.loc, `stage ${fromValue} was not built`);
        layers = r.layers;
        fromKey = r.key;
      } else {
        let record;
        try {
          record = await this.o.images.record(fromValue).catch(async (e: unknown) => {
            if (!(isBerthError(e) && e instanceof NotFoundError)) throw e;
            await this.o.images.pull(fromValue, this.o.signal ? { signal: this.o.signal } : {});
            return this.o.images.record(fromValue);
          });
        } catch (e) {
          throw new BuildSourceNotFoundError(instr.from!.loc, `--from=${fromValue}: no stage and no image of that name (${(e as Error).message})`, { cause: e });
        }
        layers = record.layers;
        fromKey = record.id;
      }
      const view = MergedView.open(this.lowerDirs(layers));
      tree = { view, what: `stage ${fromValue}` };
      closeTree = () => view.close();
    } else {
      tree = { view: this.o.context.view, ignore: this.o.context.ignore, what: 'build context' };
    }
    const destView = MergedView.open(this.lowerDirs(cur.layers));
    try {
      const owner = chownValue !== undefined ? resolveChown(chownValue, destView, instr.chown!.loc) : undefined;
      const sourceWords = sources.map((s, i) => (namedInline.has(instr.sources[i]!) ? instr.sources[i]! : s));
      const plan: CopyPlan = await planCopy(tree, destView, {
        sources: sourceWords, dest, ...(owner ? { owner } : {}), ...(mode !== undefined ? { mode } : {}),
        ...(this.o.epoch !== undefined ? { epoch: this.o.epoch } : {}), loc: instr.loc, instruction: instr.kind, extract: instr.kind === 'ADD',
      }, namedInline);
      // Docker's builder glues the --chown flag to the source hash, space-less: kept for equality.
      const createdBy = fileCreatedBy(state.shell, `${instr.kind} ${chownValue !== undefined ? `--chown=${chownValue}` : ''}${plan.historySource} in ${dest} `);
      const key = cacheKey([cur.key, instr.kind, sourceWords, dest, owner ?? null, mode ?? null, fromKey ?? null, plan.contentHash, this.o.epoch ?? null]);
      await this.layerStep(stage, cur, instr, key, async () => ({
        layer: await publishLayer(this.o.images.store, copyLayerTar(plan, this.o.signal), cur.layers, this.lowerDirs(cur.layers), this.o.signal),
        createdBy,
      }));
    } finally {
      destView.close();
      closeTree();
    }
  }

  // ---- WORKDIR ----------------------------------------------------------------------------

  private async workdirStep(stage: Stage, state: StageState, cur: StageResult, instr: Instruction & { kind: 'WORKDIR'; value: string }): Promise<void> {
    const word = state.expand(instr.value, instr.loc);
    const dir = posix.resolve(state.config.WorkingDir || '/', word);
    state.config.WorkingDir = dir;
    const createdBy = fileCreatedBy(state.shell, `WORKDIR ${dir}`);
    const key = cacheKey([cur.key, 'WORKDIR', dir]);
    await this.layerStep(stage, cur, instr, key, async () => {
      const view = MergedView.open(this.lowerDirs(cur.layers));
      try {
        const rel = dir.slice(1);
        const resolved = rel === '' ? '' : view.resolve(dir);
        if (resolved !== null && (resolved === '' || (view.lookup(resolved) && isDir(view.lookup(resolved)!.stat)))) return { layer: null, createdBy };
        const now = this.o.epoch ?? Math.floor(Date.now() / 1000);
        const plan: CopyPlan = { entries: [], contentHash: '', historySource: '' };
        const parts = rel.split('/');
        for (let i = 1; i <= parts.length; i++) {
          const p = parts.slice(0, i).join('/');
          const e = view.lookup(p);
          if (e && isDir(e.stat)) plan.entries.push({ path: p, kind: 'dir', mode: e.stat.mode & 0o7777, uid: e.stat.uid, gid: e.stat.gid, mtime: e.stat.mtime, size: 0 });
          else plan.entries.push({ path: p, kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: now, size: 0 });
        }
        return { layer: await publishLayer(this.o.images.store, copyLayerTar(plan, this.o.signal), cur.layers, this.lowerDirs(cur.layers), this.o.signal), createdBy };
      } finally {
        view.close();
      }
    });
  }
}

/** Keeps the ContainerConfig name in this module's vocabulary for readers of StageResult. */
export type { ContainerConfig };
