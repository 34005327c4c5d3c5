/**
 * `run()`: one call from a root filesystem and an argv to a finished sandbox's result.
 * @module
 */
import { launchRootOf, runFromRoot, type OutputOf, type RunResult } from './launch/run-to-completion.js';
import type { RunOptions, RunSource } from './launch/run-options.js';
import { networkServiceOf } from './network/network-options.js';
import { defaultRuntime } from './runtime.js';
import { hasVolumeMounts } from './volumes/volume-mounts.js';

export type { OutputOf, RunResult };

/**
 * Whether the options name a network or a container (`network: 'bridge'`, `'container:web'`,
 * `networks: ['backend']`, or `ports` alone, which mean the default `bridge`) without a `Network` object to say whose: names resolve in a runtime.
 */
function namesNetworks(options: RunOptions | undefined): boolean {
  if (!options) return false;
  const { network, networks, ports } = options;
  const hasNetworks = Array.isArray(networks) && networks.length > 0;
  // Published ports without a network put the container on the default `bridge` network.
  const publishes = network === undefined && !hasNetworks && Array.isArray(ports) && ports.length > 0;
  const named = (typeof network === 'string' && network !== 'none' && network !== 'host') || hasNetworks || publishes;
  return named && networkServiceOf(options) === undefined;
}

/**
 * Runs `cmd` in a new sandbox and resolves with its result once it has exited and every
 * resource it used (cgroup, mounts, namespaces) is gone.
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
  // Images, volumes and network names live in a state dir: those runs go through the default
  // runtime. A `Network` object brings its own runtime's networks.
  if (typeof source === 'string' || hasVolumeMounts(options) || namesNetworks(options)) {
    return (await defaultRuntime()).run(source, cmd, options);
  }
  return runFromRoot(launchRootOf(source), cmd, options) as Promise<RunResult<OutputOf<O>>>;
}
