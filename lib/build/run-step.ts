/**
 * A RUN step: a berth container on the stage's layers (the isolation of `run()`: namespaces,
 * default capabilities and seccomp profile, no network unless asked) with a persistent upper
 * dir, whose changes then become a layer exactly as `commit()` makes one (`layerArchive`:
 * whiteouts, opaque directories, hard links, xattrs). What berth itself put into the upper dir
 * (its generated `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, and mount points it had
 * to create) is left out, as Docker's bind mounts never reach the layer.
 *
 * The output is streamed line by line to the caller (progress `line` events) and the last
 * lines are kept for the error of a failing step.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GENERATED_FILES } from '../containers/diff.js';
import { layerArchive } from '../storage/rootfs-archive.js';
import { AbortError } from '../errors.js';
import { ConfinedDir, MergedView } from '../image/merged-view.js';
import { isDir } from '../image/overlay-format.js';
import { launch } from '../launch/launcher.js';
import { runCgroupId } from '../launch/orphan-sweep.js';
import { normalizeRunOptions, type MountSpec } from '../launch/run-options.js';
import type { NetworkService } from '../network/network-service.js';

/** Lines of output a failed step's error carries. */
export const ERROR_TAIL_LINES = 20;

export interface RunStepRequest {
  /** The stage's layer directories, top first. */
  lowerDirs: string[];
  argv: string[];
  env: string[];
  workdir?: string;
  user?: string;
  network: string;
  mounts: MountSpec[];
  /** Container paths the step's mounts cover (mount points berth may have had to create). */
  mountTargets: string[];
  /** A directory for the upper and work dirs (under the store's tmp/, same file system as the layers). */
  scratchDir: string;
  /** Resolves a network name in `network`. */
  networks?: NetworkService;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

export interface RunStepResult {
  exitCode: number;
  /** The last {@link ERROR_TAIL_LINES} lines of output. */
  tail: string[];
  /** The step's changes as a layer tar; call once, then {@link RunStepResult.dispose}. */
  archive(): AsyncGenerator<Buffer>;
  dispose(): Promise<void>;
}

function pumpLines(stream: Readable | null, onLine: (line: string) => void): Promise<void> {
  if (!stream) return Promise.resolve();
  let pending = '';
  return new Promise((resolve) => {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      // A line without an end must not grow without bound.
      if (pending.length > 64 * 1024) {
        onLine(pending);
        pending = '';
      }
    });
    stream.on('error', () => resolve());
    stream.on('end', () => {
      if (pending !== '') onLine(pending);
      resolve();
    });
  });
}

/** Paths of the upper dir that berth made, not the step: left out of the layer. */
function berthMade(upperDir: string, lowerDirs: string[], mountTargets: string[]): Set<string> {
  const skip = new Set(GENERATED_FILES);
  const upper = ConfinedDir.open(upperDir);
  const lower = MergedView.open(lowerDirs);
  try {
    // /etc holding nothing but berth's files is a copy-up berth caused.
    const etc = upper.lstat('etc');
    if (etc && isDir(etc) && lower.lookup('etc') && !upper.isOpaque('etc') && upper.readdir('etc').every((n) => GENERATED_FILES.has(`etc/${n}`))) skip.add('etc');
    // Mount points berth created (absent below, still empty): deepest first, so a chain of
    // new empty directories goes away as a whole.
    const candidates = new Set<string>();
    for (const t of ['/proc', '/sys', '/dev', ...mountTargets]) {
      const parts = t.split('/').filter((p) => p !== '');
      for (let i = parts.length; i > 0; i--) candidates.add(parts.slice(0, i).join('/'));
    }
    for (const rel of [...candidates].sort((a, b) => b.length - a.length)) {
      if (lower.lookup(rel)) continue;
      const st = upper.lstat(rel);
      if (!st) continue;
      const empty = isDir(st) ? upper.readdir(rel).every((n) => skip.has(`${rel}/${n}`)) : st.size === 0;
      if (empty) skip.add(rel);
    }
  } finally {
    upper.close();
    lower.close();
  }
  return skip;
}

/**
 * Runs the step to its exit. The container, its cgroup and its network are gone when this
 * returns or throws; the upper dir stays for {@link RunStepResult.archive} until `dispose()`.
 * @throws AbortError when `signal` aborts (the container is killed first)
 */
export async function runStep(req: RunStepRequest): Promise<RunStepResult> {
  const dir = join(req.scratchDir, `run-${randomBytes(6).toString('hex')}`);
  const upperDir = join(dir, 'upper');
  const workDir = join(dir, 'work');
  const dispose = () => rm(dir, { recursive: true, force: true });
  await mkdir(upperDir, { recursive: true, mode: 0o755 });
  await mkdir(workDir, { mode: 0o700 });
  const tail: string[] = [];
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > ERROR_TAIL_LINES) tail.shift();
    req.onLine?.(line);
  };
  try {
    const env: Record<string, string> = {};
    for (const e of req.env) {
      const eq = e.indexOf('=');
      env[eq < 0 ? e : e.slice(0, eq)] = eq < 0 ? '' : e.slice(eq + 1);
    }
    const options = normalizeRunOptions({
      env,
      ...(req.workdir ? { workdir: req.workdir } : {}),
      ...(req.user ? { user: req.user } : {}),
      network: req.network,
      mounts: req.mounts,
      ...(req.signal ? { signal: req.signal } : {}),
    });
    const launched = await launch({
      id: runCgroupId(randomBytes(12).toString('hex')),
      root: { kind: 'layers', lowerDirs: req.lowerDirs },
      argv: req.argv,
      options,
      upper: { upperDir, workDir },
      ...(req.networks ? { networks: req.networks } : {}),
    });
    let exitCode: number;
    try {
      if (!launched.process) {
        for (const l of launched.execFailure!.message.trimEnd().split('\n')) onLine(l);
        exitCode = launched.execFailure!.exitCode;
      } else {
        const proc = launched.process;
        const kill = () => proc.kill(9);
        req.signal?.addEventListener('abort', kill, { once: true });
        try {
          proc.stdin?.end();
          const [status] = await Promise.all([proc.exited, pumpLines(proc.stdout, onLine), pumpLines(proc.stderr, onLine)]);
          exitCode = status.exitCode;
        } finally {
          req.signal?.removeEventListener('abort', kill);
        }
      }
    } finally {
      launched.cgroup.remove({ timeoutMs: 1000 });
      await launched.network?.release();
    }
    if (req.signal?.aborted) throw new AbortError('the build was aborted; the RUN container was killed', { cause: req.signal.reason });
    return {
      exitCode,
      tail,
      archive: () => layerArchive(upperDir, req.signal, berthMade(upperDir, req.lowerDirs, req.mountTargets)),
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
