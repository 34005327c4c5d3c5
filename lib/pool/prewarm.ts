/**
 * A prewarmed sandbox (issue 18 §2): a parked sandbox whose main process is started at
 * preparation time and waited for until it is ready (a log line, or a listening port), so that
 * a heavy runtime's start (imports, JIT, a JVM) is paid before a caller asks.
 * @module
 */
import type { Readable } from 'node:stream';
import { SystemError } from '../errors.js';
import type { ParkedSandbox, ParkedWorkload } from '../launch/parked.js';
import { resolveHealthcheck, type HealthcheckOptions } from '../containers/healthcheck.js';
import { waitHealthy } from './ready-health.js';
import { listensOn } from './ready-port.js';

/** When a prewarmed main process counts as ready: a log line, a listening port, or a passing healthcheck. */
export type ReadyCondition = ReadyOnLog | ReadyOnPort | ReadyOnHealthcheck;

/** Ready once a line of its stdout or stderr matches. */
export interface ReadyOnLog {
  /** A line of its stdout or stderr matches (a string matches as a substring). */
  log: RegExp | string;
  /** Milliseconds to wait for it; past it the preparation fails (SystemError `ETIMEDOUT`). Default 30 000. */
  timeout?: number;
}

/**
 * Ready once a TCP socket listens on `port` in the sandbox's network namespace (read from
 * `/proc`, as the containers' `waitForPort`; not with `network: 'host'`, whose table is the
 * host's). Its output is not consumed: all of it stays in the streams for the caller.
 */
export interface ReadyOnPort {
  /** The TCP port, 1–65535. */
  port: number;
  /** Milliseconds to wait for it; past it the preparation fails (SystemError `ETIMEDOUT`). Default 30 000. */
  timeout?: number;
  /** Milliseconds between two looks. Default 10. */
  interval?: number;
}

/**
 * Ready once a healthcheck probe passes: the containers' `healthcheck` option (`test`,
 * `interval`, `timeout`, `startPeriod`, `startInterval`, `retries`, with Docker's defaults),
 * each probe an exec beside the main process in its sandbox. `retries` failing probes in a row
 * (after `startPeriod`) fail the preparation (SystemError `EIO`). Its output is not consumed.
 */
export interface ReadyOnHealthcheck {
  /** The probe; `test` is required (`['CMD', …]`, `['CMD-SHELL', script]` or a shell string). */
  healthcheck: HealthcheckOptions;
  /** Milliseconds to wait for a passing probe; past it the preparation fails (SystemError `ETIMEDOUT`). Default 30 000. */
  timeout?: number;
}

/** What the pool hands out: the sandbox, and its running main process when the pool has one. */
export interface Prepared {
  parked: ParkedSandbox;
  main?: ParkedWorkload;
}

/** Bytes of a not yet finished line kept while looking for the ready line. */
const MAX_LINE = 64 * 1024;

/**
 * Starts `argv` as the sandbox's main process and resolves once `ready` is met (or at once
 * without a condition). Output up to and including the ready line is consumed; what follows
 * it stays in the streams for the caller. On any failure the sandbox is destroyed.
 * @throws SystemError: `ENOENT`/`EACCES` when the command cannot be executed, `ECHILD` when it
 *   exited before it was ready, `ETIMEDOUT` when the condition was not met in time.
 */
export async function prewarm(parked: ParkedSandbox, argv: string[], ready: ReadyCondition | undefined): Promise<Prepared> {
  let main: ParkedWorkload | undefined;
  try {
    const started = await parked.startMain(argv, {});
    if ('failure' in started) {
      throw new SystemError(started.failure.exitCode === 127 ? 'ENOENT' : 'EACCES', `the pool's main process could not start: ${started.failure.message.trim()}`);
    }
    main = started.process;
    if (ready && 'healthcheck' in ready) await waitHealthy(parked, main, resolveHealthcheck(ready.healthcheck)!, ready.timeout ?? 30_000);
    else if (ready && 'port' in ready) await waitListening(parked.pid, main, ready);
    else if (ready) await waitReady(main, ready);
    return { parked, main };
  } catch (error) {
    await parked.tornDown();
    throw error;
  }
}

function waitListening(pid1: number, main: ParkedWorkload, ready: ReadyOnPort): Promise<void> {
  const timeoutMs = ready.timeout ?? 30_000;
  const interval = ready.interval ?? 10;
  const deadline = performance.now() + timeoutMs;
  let exited: { exitCode: number } | undefined;
  void main.exited.then((status) => (exited = status));
  return new Promise<void>((resolve, reject) => {
    const look = (): void => {
      if (exited) {
        reject(new SystemError('ECHILD', `the pool's main process exited (code ${exited.exitCode}) before it listened on port ${ready.port}`));
      } else if (listensOn(pid1, ready.port)) {
        resolve();
      } else if (performance.now() >= deadline) {
        reject(new SystemError('ETIMEDOUT', `the pool's main process did not listen on port ${ready.port} within ${timeoutMs} ms`));
      } else {
        setTimeout(look, interval);
      }
    };
    look();
  });
}

function waitReady(main: ParkedWorkload, ready: ReadyOnLog): Promise<void> {
  const matches = typeof ready.log === 'string' ? (line: string) => line.includes(ready.log as string) : (line: string) => (ready.log as RegExp).test(line);
  const streams = [main.stdout, main.stderr].filter((s): s is Readable => s !== null);
  const timeoutMs = ready.timeout ?? 30_000;
  return new Promise<void>((resolve, reject) => {
    let tail = '';
    const cleanups: Array<() => void> = [];
    let done = false;
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      for (const c of cleanups) c();
      if (error) reject(error);
      else resolve();
    };
    for (const stream of streams) {
      let partial = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        let data = Buffer.concat([partial, chunk]);
        let nl: number;
        while ((nl = data.indexOf(0x0a)) >= 0) {
          const line = data.subarray(0, nl).toString('utf8');
          data = data.subarray(nl + 1);
          tail = line;
          if (matches(line)) {
            // Stop listening first: what came after the ready line belongs to the caller, and
            // an unshift into a stream we still listen to would come straight back to us.
            finish();
            if (data.length > 0) stream.unshift(data);
            return;
          }
        }
        partial = data.length > MAX_LINE ? data.subarray(data.length - MAX_LINE) : data;
      };
      stream.on('data', onData);
      cleanups.push(() => {
        stream.off('data', onData);
        stream.pause();
      });
    }
    const timer = setTimeout(() => finish(new SystemError('ETIMEDOUT', `the pool's main process was not ready within ${timeoutMs} ms (no line matched ${String(ready.log)})`)), timeoutMs);
    cleanups.push(() => clearTimeout(timer));
    // Its last output may still be in the pipes when the exit is reported: read them to their
    // end first (they end: the whole sandbox dies with its PID 1), so the error can quote it.
    const drained = (stream: Readable): Promise<void> =>
      new Promise<void>((done) => {
        if (stream.readableEnded || stream.destroyed) done();
        stream.once('end', () => done());
        stream.once('close', () => done());
      });
    void main.exited.then(async (status) => {
      await Promise.all(streams.map(drained));
      finish(new SystemError('ECHILD', `the pool's main process exited (code ${status.exitCode}) before it was ready; its last line: ${JSON.stringify(tail.slice(0, 200))}`));
    });
  });
}
