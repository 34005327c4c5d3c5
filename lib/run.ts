/**
 * `spawn()` and `run()`: one call from a root filesystem and an argv to a running sandbox
 * (streams, signals, exit) or to a finished sandbox's result. `run()` is `spawn()` read to its end.
 * @module
 */
import { runToCompletion, type OutputOf, type RunResult } from './launch/run-to-completion.js';
import type { RunOptions, RunSource } from './launch/run-options.js';
import { Sandbox } from './launch/sandbox.js';
import { checkArgv, launchRootOf, sandboxInRoot } from './launch/sandbox-launch.js';
import { checkSpawnOptions, spawnOptionsOfRun, type SpawnOptions } from './launch/spawn-options.js';
import { networkServiceOf } from './network/network-options.js';
import { defaultRuntime, spawnBodyIn } from './runtime.js';
import { hasVolumeMounts } from './volumes/volume-mounts.js';

export type { OutputOf, RunResult };

/**
 * Whether the options name a network or a container (`network: 'bridge'`, `'container:web'`,
 * `networks: ['backend']`, or `ports` alone, which mean the default `bridge`) without a `Network` object to say whose: names resolve in a runtime.
 */
function namesNetworks(options: RunOptions | SpawnOptions | undefined): boolean {
  if (!options) return false;
  const { network, networks, ports } = options;
  const hasNetworks = Array.isArray(networks) && networks.length > 0;
  // Published ports without a network put the container on the default `bridge` network.
  const publishes = network === undefined && !hasNetworks && Array.isArray(ports) && ports.length > 0;
  const named = (typeof network === 'string' && network !== 'none' && network !== 'host') || hasNetworks || publishes;
  return named && networkServiceOf(options) === undefined;
}

/**
 * Starts `cmd` in a new sandbox and returns it at once, as `child_process.spawn` does: its
 * `stdout`/`stderr` carry the container's output as it is written (back-pressured: a reader
 * that stops makes the container wait, Node buffers nothing more), `stdin` is a pipe, `exited`
 * resolves once it has exited and every resource it used is released. Same sources, options
 * and isolation as {@link run}; `encoding` and `maxBuffer` do not apply (you read the streams).
 *
 * An image reference, volume mounts or network names use the default runtime (see
 * `defaultRuntime`), as `run()` does; `rt.spawn()` uses yours.
 *
 * @example
 * ```ts
 * import { createInterface } from 'node:readline';
 * const sb = spawn({ rootfs: '/srv/busybox' }, ['sh', '-c', 'for i in 1 2 3; do echo line $i; sleep 1; done'], { timeout: 10_000 });
 * try {
 *   for await (const line of createInterface({ input: sb.stdout })) console.log(line); // as produced
 *   const { exitCode, timedOut } = await sb.exited;
 * } finally {
 *   await sb[Symbol.asyncDispose](); // kills if still running, releases everything
 * }
 * ```
 * @param source `{ rootfs: '/abs/dir' }`, `{ host: true }`, or an image reference (pulled on first use).
 * @param cmd the argv; for an image, replaces its Cmd (its Entrypoint stays), and may be
 *   omitted to run the image's default command.
 * @param options {@link SpawnOptions}: `run()`'s options with `stdin` `'pipe'` (default),
 *   `'ignore'`, a Buffer or a Readable.
 * @throws ValidationError synchronously for a bad option (`.option` names it), argv or source
 *   shape; NotFoundError synchronously for a missing `rootfs` directory. Everything found during
 *   the launch (image pull, user, bind source, setup syscalls: SystemError with `.syscall`)
 *   rejects `sandbox.exited` and `sandbox.spawned` and is emitted as `'error'`; an aborted
 *   `signal` kills the container and rejects `exited` with an AbortError.
 */
export function spawn(source: RunSource, cmd?: string[] | null, options?: SpawnOptions): Sandbox {
  const checked = checkSpawnOptions(options);
  // Images, volumes and network names live in a state dir: those sandboxes go through the
  // default runtime. A `Network` object brings its own runtime's networks.
  if (typeof source === 'string' || hasVolumeMounts(options) || namesNetworks(options)) {
    if (typeof source !== 'string') launchRootOf(source);
    return new Sandbox(async (hooks) => spawnBodyIn(await defaultRuntime(), source, cmd, checked)(hooks), checked.sandbox);
  }
  const root = launchRootOf(source);
  checkArgv(cmd);
  return new Sandbox(sandboxInRoot(root, cmd, checked.launch, { stdinPipe: checked.stdinPipe }), checked.sandbox);
}

/**
 * Runs `cmd` in a new sandbox and resolves with its result once it has exited and every
 * resource it used (cgroup, mounts, namespaces) is gone: {@link spawn} read to its end, keeping
 * at most `maxBuffer` bytes of each stream.
 *
 * @example
 * ```ts
 * const r = await run({ rootfs: '/srv/busybox' }, ['sh', '-c', 'echo hi'], { memory: '64m' });
 * r.exitCode; // 0
 * r.stdout;   // 'hi\n'
 * ```
 * @param source `{ rootfs: '/abs/dir' }`, `{ host: true }`, or an image reference
 *   (`'127.0.0.1:5000/app:1'`, pulled into the default runtime's store on first use).
 * @param cmd the argv; for an image, replaces its Cmd (its Entrypoint stays), and may be
 *   omitted to run the image's default command.
 * @throws ValidationError for a bad option (`.option` names it); NotFoundError for a missing
 *   rootfs, user or bind source; SystemError when a setup syscall fails in the child (`.syscall`
 *   and `.path` say which); AbortError when `signal` aborts.
 */
export async function run<O extends RunOptions = RunOptions>(
  source: RunSource,
  cmd?: string[] | null,
  options?: O,
): Promise<RunResult<OutputOf<O>>> {
  // async: every bad input rejects the returned promise, none throws synchronously.
  const { spawn: spawnOptions, result } = spawnOptionsOfRun(options);
  return runToCompletion(spawn(source, cmd, spawnOptions), result) as Promise<RunResult<OutputOf<O>>>;
}
