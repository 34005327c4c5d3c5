/**
 * A helper process berth starts for a container's network and must end: spawned through
 * `berth-helper tie`, so it gets SIGKILL when this process dies (even by SIGKILL), and ended
 * by {@link TiedProcess.stop} otherwise. Its stderr is kept (bounded) for error messages.
 * @module
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { helperExecutablePath } from '../native.js';

/** Bytes of a helper's stderr kept for error messages. */
const STDERR_LIMIT = 4096;
/** How long {@link TiedProcess.stop} waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 2000;

/** A tied helper process. */
export interface TiedProcess {
  readonly child: ChildProcess;
  /** The helper's pid (the program itself: `tie` execs it). */
  readonly pid: number;
  /** What it wrote to stderr so far (at most 4 KiB, trimmed). */
  stderr(): string;
  /** Resolves with its exit code (or `128 + n` for signal n) once it exited. */
  readonly exited: Promise<number>;
  /** SIGTERM, then SIGKILL after a grace period; resolves once it exited. Idempotent. */
  stop(): Promise<void>;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * Starts `args` of the helper (`['tie', ...]` or `['netns-hold', ...]`) with `stdio`; fd 2 is
 * always a pipe.
 * @throws Error from spawn (e.g. the helper is missing: an UnsupportedError from the loader).
 */
export function startHelper(args: string[], stdio: StdioOptions): TiedProcess {
  const child = spawn(helperExecutablePath(), args, { stdio, detached: false });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    if (err.length < STDERR_LIMIT) err += d.slice(0, STDERR_LIMIT - err.length);
  });
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => resolve(127));
    child.once('exit', (code, signal) => resolve(code ?? 128 + (SIGNALS[signal ?? ''] ?? 0)));
  });
  let stopping: Promise<void> | undefined;
  return {
    child,
    pid: child.pid ?? -1,
    stderr: () => err.trim(),
    exited,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** `helper tie <this pid> -- <program> <args>`: `program` dies with this process. */
export function startTied(program: string, args: string[], stdio: StdioOptions): TiedProcess {
  return startHelper(['tie', String(process.pid), '--', program, ...args], stdio);
}
