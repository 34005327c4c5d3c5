/**
 * One running rootless helper process (./userns-worker.ts) and the line protocol to it
 * (./userns-protocol.ts): requests go out with an id, replies come back with it, in any order.
 *
 * The process must not keep Node's event loop alive while it waits for work: its pipes are
 * unref'd whenever no request is in flight, and its exit is watched (a pidfd watch is a live
 * handle) only once its stdout has closed, i.e. once it is on its way out. Its end is
 * noticed from that close: every request still waiting then fails with the exit status and
 * the tail of its stderr.
 * @internal
 * @module
 */
import { Socket } from 'node:net';
import { SystemError } from '../errors.js';
import { native, type NativeExitStatus } from '../native.js';
import { MAX_LINE, type WorkerEnvelope, type WorkerReply, type WorkerRequest } from './userns-protocol.js';

/** Bytes of the helper's stderr kept for error messages. */
const STDERR_TAIL = 8 * 1024;
/** How long an idle helper has to exit after end of file before it is killed. */
const END_GRACE_MS = 10_000;

interface Waiter {
  resolve(reply: WorkerReply): void;
  reject(error: Error): void;
}

/** What the native spawn handed back for the helper. */
export interface SpawnedWorker {
  pid: number;
  pidfd: number;
  stdio: number[];
}

function describeStatus(status: NativeExitStatus): string {
  return status.signal != null ? `signal ${status.signal}` : `code ${status.code}`;
}

export class UsernsWorkerProcess {
  readonly pid: number;
  readonly #pidfd: number;
  readonly #stdin: Socket;
  readonly #stdout: Socket;
  readonly #stderr: Socket;
  readonly #waiting = new Map<number, Waiter>();
  readonly #exited: Promise<NativeExitStatus>;
  #resolveExit!: (status: NativeExitStatus) => void;
  #nextId = 1;
  #buffered = '';
  #stderrTail = '';
  #reaped = false;
  #ending = false;

  constructor(spawned: SpawnedWorker) {
    this.pid = spawned.pid;
    this.#pidfd = spawned.pidfd;
    const [inFd, outFd, errFd] = spawned.stdio as [number, number, number];
    this.#stdin = new Socket({ fd: inFd, readable: false, writable: true });
    this.#stdout = new Socket({ fd: outFd, readable: true, writable: false });
    this.#stderr = new Socket({ fd: errFd, readable: true, writable: false });
    this.#exited = new Promise((resolve) => (this.#resolveExit = resolve));
    // A helper that died takes its stdin's reader along: EPIPE shows as its exit, below.
    this.#stdin.on('error', () => {});
    this.#stderr.on('error', () => {});
    this.#stdout.on('error', () => {});
    this.#stdout.setEncoding('utf8');
    this.#stderr.setEncoding('utf8');
    this.#stdout.on('data', (chunk: string) => this.#onData(chunk));
    this.#stderr.on('data', (chunk: string) => {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-STDERR_TAIL);
    });
    this.#stdout.once('close', () => this.#watchExit());
    this.#unref();
  }

  /** Requests sent and not answered yet. */
  get busy(): number {
    return this.#waiting.size;
  }

  /** Whether it may take requests: not ended, not exited. */
  get usable(): boolean {
    return !this.#ending && !this.#reaped && !this.#stdout.destroyed;
  }

  /** Resolves once the helper exited and was reaped. */
  get exited(): Promise<NativeExitStatus> {
    return this.#exited;
  }

  /** Sends one request; resolves with its reply. @throws SystemError when the helper exits first. */
  request(request: WorkerRequest): Promise<WorkerReply> {
    if (!this.usable) return Promise.reject(new SystemError('ERR_ROOTLESS_HELPER', 'rootless helper: the helper process already ended'));
    const id = this.#nextId++;
    const envelope: WorkerEnvelope = { id, request };
    return new Promise<WorkerReply>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      if (this.#waiting.size === 1) this.#ref();
      this.#stdin.write(`${JSON.stringify(envelope)}\n`);
    });
  }

  /**
   * End of file on its stdin: it answers what is in flight, then exits. Resolves once it is
   * reaped; an idle helper that has not exited within a grace period is killed.
   */
  end(): Promise<NativeExitStatus> {
    if (!this.#ending) {
      this.#ending = true;
      // The caller waits for the exit: until then the pipes are live handles.
      this.#ref();
      this.#stdin.end();
      const kill = setTimeout(() => {
        if (this.#waiting.size === 0) this.kill();
      }, END_GRACE_MS);
      kill.unref();
      void this.#exited.then(() => clearTimeout(kill));
    }
    return this.#exited;
  }

  /** SIGKILL through the pidfd (a no-op once it was reaped: the pid may be another's by then). */
  kill(): void {
    if (!this.#reaped) native().sendSignal(this.#pidfd, 9);
  }

  #onData(chunk: string): void {
    this.#buffered += chunk;
    for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
      const line = this.#buffered.slice(0, nl);
      this.#buffered = this.#buffered.slice(nl + 1);
      this.#onLine(line);
    }
    if (this.#buffered.length > MAX_LINE) {
      // Not our helper's output any more: stop listening to it.
      this.#stderrTail += `\n(berth: a reply line longer than ${MAX_LINE} bytes; the helper was killed)`;
      this.#buffered = '';
      this.kill();
    }
  }

  #onLine(line: string): void {
    let reply: WorkerReply;
    try {
      reply = JSON.parse(line) as WorkerReply;
    } catch {
      this.#stderrTail += `\n(berth: a reply line that is not JSON: ${line.slice(0, 200)})`;
      return;
    }
    const waiter = this.#waiting.get(reply.id);
    if (!waiter) return;
    this.#waiting.delete(reply.id);
    if (this.#waiting.size === 0 && !this.#ending) this.#unref();
    waiter.resolve(reply);
  }

  /** Its stdout closed: it exits (or did); reap it and fail whatever still waits. */
  #watchExit(): void {
    native().watchExit(this.#pidfd, (status) => {
      this.#reaped = true;
      const waiting = [...this.#waiting.values()];
      this.#waiting.clear();
      const tail = this.#stderrTail.trim().slice(-2000) || '(no output)';
      for (const w of waiting) w.reject(new SystemError('ERR_ROOTLESS_HELPER', `rootless helper: the helper process (pid ${this.pid}) exited (${describeStatus(status)}) before it answered: ${tail}`));
      this.#stdin.destroy();
      this.#stderr.destroy();
      this.#resolveExit(status);
    });
  }

  #ref(): void {
    for (const s of [this.#stdin, this.#stdout, this.#stderr]) s.ref();
  }

  #unref(): void {
    for (const s of [this.#stdin, this.#stdout, this.#stderr]) s.unref();
  }
}
