/**
 * The workload of a parked sandbox as Node objects: a process that the sandbox's PID 1 forked
 * (src-native/park-main.cc), so that Node holds no pidfd it could wait on. Its exit status
 * arrives from PID 1 over the control socket, and PID 1 exits right after it.
 * @module
 */
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';

import type { ExitStatus } from './container-process.js';

const SIGKILL = 9;

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(
  Object.entries(osConstants.signals).map(([name, num]) => [num, name as NodeJS.Signals]),
);

/** PID 1's exit report in `ExitStatus` form; `null` (no report: PID 1 was killed first) reads as SIGKILL. */
export function exitStatusOf(status: { code: number | null; signal: number | null } | null): ExitStatus {
  const signal = status === null ? SIGKILL : (status.signal ?? null);
  return {
    exitCode: status?.code ?? (signal !== null ? 128 + signal : 255),
    signal: signal !== null ? (SIGNAL_NAMES.get(signal) ?? null) : null,
  };
}

/** The process a parked sandbox runs: its stdio and its exit. @internal */
export interface ParkedWorkload {
  /** Its pid in the sandbox's pid namespace (-1 for a command run to completion: nobody asked). */
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves once it exited; the sandbox (PID 1 and everything else in it) is gone by then. */
  readonly exited: Promise<ExitStatus>;
}

/** Wraps a started workload's fds (Node's ends, -1: none); `exited` is the status PID 1 reported. @internal */
export function parkedWorkload(stdio: [number, number, number], pid: number, exited: Promise<ExitStatus>): ParkedWorkload {
  const [inFd, outFd, errFd] = stdio;
  // net.Socket on a pipe fd: libuv's epoll-driven pipe handle, as ContainerProcess does.
  const stdin = inFd >= 0 ? new Socket({ fd: inFd, readable: false, writable: true }) : null;
  // A workload that never reads its stdin closes the pipe: EPIPE is not our caller's error.
  stdin?.on('error', () => {});
  return {
    pid,
    stdin,
    stdout: outFd >= 0 ? new Socket({ fd: outFd, readable: true, writable: false }) : null,
    stderr: errFd >= 0 ? new Socket({ fd: errFd, readable: true, writable: false }) : null,
    exited,
  };
}
