/**
 * A sandbox's launch once its root is known: launch, hand the process to the sandbox, wait for
 * the exit, release the cgroup and the network. The one path of `spawn()`, `Runtime.spawn()`
 * and (through them) `run()`; they decide the root (a directory, the host, an image's layers)
 * and whose networks resolve the names in the options.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NotFoundError, ValidationError } from '../errors.js';
import type { NetworkService } from '../network/network-service.js';
import { networkServiceOf } from '../network/network-options.js';
import { commandFor } from './image-config.js';
import type { LaunchRoot } from './launch-plan.js';
import { launch, type ImageDefaults } from './launcher.js';
import { runCgroupId } from './orphan-sweep.js';
import { normalizeRunOptions, type RunOptions, type RunSource } from './run-options.js';
import type { SandboxBody, SandboxBodyResult, SandboxHooks } from './sandbox.js';
import type { ContainerLayerPaths } from '../storage/driver.js';

/** The root of a `{ rootfs }` or `{ host: true }` source, validated. */
export function launchRootOf(source: Exclude<RunSource, string>): LaunchRoot {
  if (typeof source !== 'object' || source === null) throw new ValidationError('source', 'must be { rootfs }, { host: true } or an image reference');
  if ('host' in source) {
    if (source.host !== true) throw new ValidationError('source.host', 'must be true');
    return { kind: 'host' };
  }
  const dir = (source as { rootfs?: unknown }).rootfs;
  if (typeof dir !== 'string' || dir === '') throw new ValidationError('rootfs', 'must be a non-empty string');
  if (!isAbsolute(dir)) throw new ValidationError('rootfs', `must be an absolute path, got "${dir}"`);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new NotFoundError(`rootfs: "${dir}" does not exist`, { option: 'rootfs', path: dir });
  }
  if (!isDir) throw new ValidationError('rootfs', `"${dir}" is not a directory`);
  return { kind: 'rootfs', dir };
}

/** Checks an argv given by the caller. @throws ValidationError naming `cmd` or `cmd[i]`. */
export function checkArgv(cmd: unknown): string[] {
  if (!Array.isArray(cmd) || cmd.length === 0) {
    throw new ValidationError('cmd', 'a command is required (an array of strings, e.g. ["sh", "-c", "echo hi"])');
  }
  cmd.forEach((a, i) => {
    if (typeof a !== 'string') throw new ValidationError(`cmd[${i}]`, 'must be a string');
    if (a.includes('\0')) throw new ValidationError(`cmd[${i}]`, 'must not contain NUL bytes');
  });
  if (cmd[0] === '') throw new ValidationError('cmd[0]', 'must not be empty');
  return cmd as string[];
}

/** What the caller of {@link sandboxInRoot} knows beyond the options. */
export interface RunContext {
  /** The image's defaults (Cmd, Entrypoint, Env, …) when the root is an image's layers. */
  image?: ImageDefaults;
  /** The networks that resolve network and container names in the options: the runtime's. */
  networks?: NetworkService;
  /** The container's stdin is a pipe the sandbox writes to (else `/dev/null`). */
  stdinPipe?: boolean;
  /** A layer made for this run by the root's storage driver (one that needs it made first). */
  upper?: ContainerLayerPaths;
}

/**
 * The launch of one sandbox in `root`. `options` are `run()`'s without `stdin` (the sandbox
 * owns it; `context.stdinPipe` says whether there is a pipe).
 * @internal
 */
export function sandboxInRoot(root: LaunchRoot, cmd: string[] | null | undefined, options: RunOptions | undefined, context: RunContext = {}): SandboxBody {
  return async (hooks) => {
    const { image } = context;
    const opts = normalizeRunOptions(options ?? {});
    const argv = image ? checkArgv(commandFor(image.config, cmd ?? undefined)) : checkArgv(cmd);
    // A `Network` option names its own runtime; names resolve in the caller's.
    const networks = networkServiceOf<NetworkService>(options ?? {}) ?? context.networks;
    return launchAndWait(root, argv, opts, { ...context, ...(networks ? { networks } : {}) }, hooks);
  };
}

async function launchAndWait(
  root: LaunchRoot,
  argv: string[],
  opts: ReturnType<typeof normalizeRunOptions>,
  context: RunContext,
  hooks: SandboxHooks,
): Promise<SandboxBodyResult> {
  const started = performance.now();
  const launched = await launch({
    id: runCgroupId(randomBytes(12).toString('hex')),
    root,
    argv,
    options: opts,
    stdinPipe: context.stdinPipe === true,
    ...(context.upper ? { upper: context.upper } : {}),
    ...(context.image ? { image: context.image } : {}),
    ...(context.networks ? { networks: context.networks } : {}),
  });
  const skipped = launched.limitsSkipped ? { limitsSkipped: launched.limitsSkipped } : {};
  try {
    if (!launched.process) {
      const failure = launched.execFailure!;
      hooks.execFailed(failure.message);
      return { exitCode: failure.exitCode, signal: null, oomKilled: false, durationMs: performance.now() - started, ...skipped };
    }
    hooks.spawned(launched.process);
    const status = await launched.process.exited;
    const durationMs = performance.now() - started;
    return { ...status, oomKilled: launched.cgroup.oomKillCount() > 0, durationMs, ...skipped };
  } finally {
    launched.cgroup.remove({ timeoutMs: 1000 });
    await launched.network?.release();
  }
}
