/**
 * A launched container process as Node objects: stdio streams, an exit promise, signals.
 * The native core hands over plain fds and a pidfd; this wraps them (as node-pty does).
 * @module
 */
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { ReadStream } from 'node:tty';
import type { Readable, Writable } from 'node:stream';
import { native, type NativeSpawnResult } from '../native.js';

/** How a container process ended. */
export interface ExitStatus {
  /** Docker's convention: the exit code, or 128 + n when killed by signal n. */
  exitCode: number;
  /** The signal's name (`'SIGKILL'`) when the process was killed by one, else `null`. */
  signal: NodeJS.Signals | null;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(osConstants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
);

/** Signal name or number → number; `undefined` when unknown. */
export function signalNumber(signal: NodeJS.Signals | number | string): number | undefined {
  if (typeof signal === 'number') return Number.isInteger(signal) && signal > 0 && signal < 65 ? signal : undefined;
  const name = signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
  return (osConstants.signals as Record<string, number>)[name];
}

function pipeSocket(fd: number, readable: boolean): Socket {
  // net.Socket on a pipe fd uses libuv's epoll-driven pipe handle: no thread-pool reads, so a
  // container writing 100 MB does not occupy the pool that spawns other containers.
  return new Socket({ fd, readable, writable: !readable });
}

/** The running process: PID 1 of the container (or the exec'd process). */
export class ContainerProcess {
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves once the process has exited and was reaped. */
  readonly exited: Promise<ExitStatus>;
  #pidfd: number;
  #ttyMaster: number;
  #done = false;

  constructor(spawned: NativeSpawnResult) {
    this.pid = spawned.pid;
    this.#pidfd = spawned.pidfd;
    this.#ttyMaster = spawned.ttyMaster;
    const [inFd, outFd, errFd] = spawned.stdio;
    if (spawned.ttyMaster >= 0) {
      // One terminal carries both directions and both output streams, as with `docker run -t`.
      const tty = new ReadStream(spawned.ttyMaster);
      this.stdout = tty;
      this.stdin = tty;
      this.stderr = null;
    } else {
      this.stdin = inFd >= 0 ? pipeSocket(inFd, false) : null;
      this.stdout = outFd >= 0 ? pipeSocket(outFd, true) : null;
      this.stderr = errFd >= 0 ? pipeSocket(errFd, true) : null;
    }
    // A container that never reads its stdin closes the pipe: EPIPE is not our caller's error.
    this.stdin?.on('error', () => {});
    this.exited = new Promise((resolve) => {
      native().watchExit(this.#pidfd, (status) => {
        this.#done = true;
        const signal = status.signal ?? null;
        resolve({
          exitCode: status.code ?? (signal !== null ? 128 + signal : 255),
          signal: signal !== null ? (SIGNAL_NAMES.get(signal) ?? null) : null,
        });
      });
    });
  }

  /** Whether the process has a terminal (`tty: true`). */
  get hasTty(): boolean {
    return this.#ttyMaster >= 0;
  }

  /**
   * Sets the terminal's size; the kernel signals SIGWINCH to the container's foreground
   * process group. A no-op without a terminal or after exit.
   */
  resize(rows: number, cols: number): void {
    if (this.#ttyMaster < 0 || this.#done) return;
    native().resizeTty(this.#ttyMaster, rows, cols);
  }

  /**
   * The process's pidfd, for joining its namespaces (an exec into it). Valid until the process
   * is reaped (`exitedAlready`): check that first.
   */
  get pidfd(): number {
    return this.#pidfd;
  }

  /** Whether the process has been reaped. */
  get exitedAlready(): boolean {
    return this.#done;
  }

  /**
   * Sends a signal through the pidfd, so it can never reach a recycled pid.
   * @returns false if the process had already exited.
   */
  kill(signal: number): boolean {
    if (this.#done) return false;
    return native().sendSignal(this.#pidfd, signal);
  }
}
