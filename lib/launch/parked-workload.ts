/**
 * The workload of a parked sandbox as Node objects: the sandbox's PID 1 after it became the
 * command (src-native/park-main.cc), with the stdio pipes Node made for the command.
 * @module
 */
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';

import type { ExitStatus } from './container-process.js';

/** The process a parked sandbox runs: its stdio and its exit. @internal */
export interface ParkedWorkload {
  /** Its host pid (the sandbox's PID 1, which became the command). */
  readonly pid: number;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves once it exited; everything else in the sandbox is gone with it. */
  readonly exited: Promise<ExitStatus>;
}

/** Wraps a started workload's fds (Node's ends, -1: none) and PID 1's exit. @internal */
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
