/**
 * A parked sandbox: everything of a launch done ahead (cgroup with its limits, namespaces,
 * rootfs overlay, network) with berth's exec helper parked as PID 1 (`berth-exec park`), and one
 * command run in it later: Node sends its exec plan over the sandbox's control socket and PID 1
 * becomes it (src-native/park-main.cc), so the command is born in the sandbox's namespaces and
 * cgroup. The building block of `rt.pool()` (lib/pool/): the expensive part of a start happens
 * before a caller asks.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { close, closeSync, openSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { AbortError, SystemError } from '../errors.js';
import type { NetworkService } from '../network/network-service.js';
import { execHelperExecutableFd, fromNativeError, native, type NativeLaunchSpec, type NativeParkEvent } from '../native.js';
import { checkMaxBuffer, collectBounded } from './bounded-output.js';
import type { ContainerProcess } from './container-process.js';
import { execNamespaces, parkedExecContext, parkedWorkloadPlan, planExec } from './exec-plan.js';
import { withCommand, type LaunchRoot } from './launch-plan.js';
import { execFailureOf, launch, stagingDir, type ImageDefaults, type Launched } from './launcher.js';
import { runCgroupId } from './orphan-sweep.js';
import { parkedWorkload, type ParkedWorkload } from './parked-workload.js';
import type { NormalizedRunOptions } from './run-options.js';
import type { RunResult } from './run-to-completion.js';

export type { ParkedWorkload } from './parked-workload.js';

/** What a parked sandbox is made of. */
export interface ParkRequest {
  root: LaunchRoot;
  /** The sandbox's options (limits, network, user, env…), validated. */
  options: NormalizedRunOptions;
  image?: ImageDefaults;
  networks?: NetworkService;
}

/** The per-command options of {@link ParkedSandbox.exec}: `run()`'s that concern one process. */
export interface ParkedExecOptions {
  env?: Record<string, string | undefined>;
  stdin?: string | Buffer | Readable;
  timeout?: number;
  signal?: AbortSignal;
  encoding?: 'utf8' | 'buffer';
  maxBuffer?: number;
  workdir?: string;
  user?: string;
}

const SIGKILL = 9;

/** What PID 1 reported when the command could not be set up or executed. */
type Failure = Extract<NativeParkEvent, { kind: 'failed' }>;

/** A process started in a parked sandbox, or why its command could not be executed (127/126). */
export type Started = { process: ParkedWorkload } | { failure: { exitCode: 127 | 126; message: string } };

/**
 * A prepared sandbox whose PID 1 waits. `exec()` runs its one command; `destroy()` kills
 * everything in it and releases the cgroup and the network. @internal
 */
export class ParkedSandbox {
  /** Host pid of the parked PID 1. */
  readonly pid: number;
  /** Resolves when PID 1 is gone (its workload ended, it was killed, or it died unexpectedly). */
  readonly gone: Promise<void>;
  readonly #launched: Launched;
  readonly #pid1: ContainerProcess;
  readonly #request: ParkRequest;
  /** Node's end of the control socket; closed once PID 1's last message was read (or it is gone). */
  readonly #control: number;
  #controlClosed = false;
  /** Set once the workload was sent: settles when the control socket ended, with PID 1's failure report if any. */
  #sent: Promise<Failure | undefined> | undefined;
  #destroying: Promise<void> | undefined;
  /**
   * Node's reference to the sandbox's mount namespace (an nsfs fd, -1 when it could not be
   * taken): see {@link ParkedSandbox.tornDown}.
   */
  #mountNs: number;
  /** The exec plan of a command with no per-command options (its argv and stdin set by `withCommand()`). */
  readonly #plan: NativeLaunchSpec;
  #torndown: Promise<void> | undefined;

  private constructor(request: ParkRequest, launched: Launched, pid1: ContainerProcess, control: number, mountNs: number) {
    this.#request = request;
    this.#launched = launched;
    this.#pid1 = pid1;
    this.#control = control;
    this.#mountNs = mountNs;
    this.pid = pid1.pid;
    this.gone = pid1.exited.then(() => undefined);
    this.#plan = parkedWorkloadPlan(launched.plan);
  }

  /**
   * Launches the sandbox with its PID 1 parked; resolves once it runs.
   * @throws what a launch throws (ValidationError, NotFoundError, SystemError); nothing is left behind then.
   */
  static async start(request: ParkRequest): Promise<ParkedSandbox> {
    const [control, pid1End] = native().parkControl();
    let launched: Launched;
    try {
      launched = await launch({
        id: runCgroupId(randomBytes(12).toString('hex')),
        root: request.root,
        argv: ['park'],
        // The parked PID 1 must die with this process (lifetime 'process'): dieWithParent stays set.
        options: { ...request.options, tty: false },
        park: { controlFd: pid1End },
        stdinPipe: false,
        ...(request.image ? { image: request.image } : {}),
        ...(request.networks ? { networks: request.networks } : {}),
      });
    } catch (error) {
      closeSync(control);
      throw error;
    } finally {
      // PID 1 holds its own copy now; with ours closed, PID 1 sees EOF when Node's end goes.
      closeSync(pid1End);
    }
    if (!launched.process) {
      // The helper comes from a sealed fd: it cannot be "not found"; report it as the launch's failure.
      closeSync(control);
      await releaseLaunched(launched);
      throw new SystemError('ENOEXEC', `the parked init could not start: ${launched.execFailure?.message ?? 'unknown reason'}`);
    }
    return new ParkedSandbox(request, launched, launched.process, control, holdMountNamespace(launched.process));
  }

  /** PID 1 still runs and the sandbox is not being destroyed. */
  get alive(): boolean {
    return !this.#pid1.exitedAlready && this.#destroying === undefined;
  }

  /**
   * Runs `argv` in the sandbox as its workload: the sandbox's user, env, workdir, capabilities,
   * seccomp and cgroup, `options` over them. When the command exits, or on `timeout` or abort,
   * every process of the sandbox is killed, as a container ends with its main process (it
   * serves one command: nothing of it is worth keeping). The result has `run()`'s shape.
   * @throws AbortError when `options.signal` aborted; SystemError when PID 1 could not start it.
   */
  async exec(argv: string[], options: ParkedExecOptions): Promise<RunResult<string | Buffer>> {
    const t0 = performance.now();
    const max = checkMaxBuffer(options.maxBuffer);
    const asText = options.encoding !== 'buffer';
    const text = (b: Buffer): string | Buffer => (asText ? b.toString('utf8') : b);
    const signal = options.signal;
    if (signal?.aborted) {
      await this.destroy();
      throw new AbortError('aborted before the command started; the sandbox was destroyed', { cause: signal.reason });
    }
    let timedOut = false;
    let aborted = false;
    const killAll = (): void => {
      this.#pid1.kill(SIGKILL);
    };
    const onAbort = (): void => {
      aborted = true;
      killAll();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = options.timeout !== undefined ? setTimeout(() => ((timedOut = true), killAll()), options.timeout) : undefined;
    try {
      // Nothing is awaited between the request and the end: PID 1 becomes the command, and
      // its pidfd (Node's since the launch) reports the exit.
      const { stdio, failure } = this.#send(argv, options, options.stdin !== undefined, 'after-exit');
      const proc = parkedWorkload(stdio, this.pid, this.#pid1.exited);
      feed(proc, options.stdin);
      // The command is the sandbox's PID 1: when it exits the kernel kills what it left in the
      // background, which would otherwise hold the output pipes open.
      const [status, out, err] = await Promise.all([this.#pid1.exited, collectBounded(proc.stdout, max), collectBounded(proc.stderr, max)]);
      const failed = await failure;
      if (aborted) throw new AbortError('the pooled sandbox was aborted; its processes were killed', { cause: signal?.reason });
      if (failed && !failed.execFailed) throw fromNativeError(failed.error);
      if (failed) {
        const f = execFailureOf(failed.error, argv[0]!);
        return { exitCode: f.exitCode, signal: null, stdout: text(Buffer.alloc(0)), stderr: text(Buffer.from(f.message)), oomKilled: false, timedOut: false, truncated: false, durationMs: performance.now() - t0 };
      }
      return {
        exitCode: status.exitCode,
        signal: status.signal,
        stdout: text(out.data),
        stderr: text(err.data),
        oomKilled: this.#launched.cgroup.oomKillCount() > 0,
        timedOut,
        truncated: out.truncated || err.truncated,
        durationMs: performance.now() - t0,
        ...(this.#launched.limitsSkipped ? { limitsSkipped: this.#launched.limitsSkipped } : {}),
      };
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Starts `argv` in the sandbox as its long-running main process (a prewarmed workload): stdin
   * a pipe, output streamed; resolves once it has exec'd. When it exits, the sandbox ends (PID 1
   * exits with it), as with `exec()`.
   * @throws SystemError when PID 1 could not start it; a command that cannot be executed is `failure`.
   */
  async startMain(argv: string[], options: Pick<ParkedExecOptions, 'env' | 'workdir' | 'user'>): Promise<Started> {
    const { stdio, failure } = this.#send(argv, options, true, 'watch');
    const failed = await failure;
    if (failed) {
      for (const fd of stdio) if (fd >= 0) closeSync(fd);
      this.#pid1.kill(SIGKILL);
      if (failed.execFailed) return { failure: execFailureOf(failed.error, argv[0]!) };
      throw fromNativeError(failed.error);
    }
    return { process: parkedWorkload(stdio, this.pid, this.#pid1.exited) };
  }

  /**
   * Sends the command to PID 1, which becomes it. `failure` resolves with PID 1's report when
   * the command could not be set up or executed, else `undefined` (it exec'd; or PID 1 died
   * first, which its exit tells). `'watch'`: as soon as the control socket ends (at the
   * command's execve), for a caller that waits for the start. `'after-exit'`: read once PID 1
   * exited (the report, sent before PID 1 exits, is there then), for a run to completion, which
   * needs the exit anyway: Node is not woken while the command runs, one hand-over fewer.
   * @throws SystemError when the request could not be sent (PID 1 gone: ECHILD).
   */
  #send(argv: string[], options: ParkedExecOptions, stdinPiped: boolean, when: 'watch' | 'after-exit'): { stdio: [number, number, number]; failure: Promise<Failure | undefined> } {
    if (this.#sent || this.#pid1.exitedAlready) throw new SystemError('ECHILD', "the sandbox's PID 1 already took its one workload or is gone");
    // The plan of a command with the sandbox's own user, env and workdir was made before the
    // request (the constructor); only a command with its own ones is planned now.
    const own = options.env !== undefined || options.user !== undefined || options.workdir !== undefined;
    const spec = own ? this.#planExec(argv, options, stdinPiped) : withCommand(this.#plan, argv, stdinPiped);
    let stdio: [number, number, number];
    try {
      stdio = native().parkExec(this.#control, spec);
    } catch (error) {
      this.#pid1.kill(SIGKILL);
      throw fromNativeError(error);
    }
    if (when === 'after-exit') {
      this.#sent = this.#pid1.exited.then(() => {
        // PID 1 is gone and its end closed with it (the command's execve closed it before, and
        // nothing else held it: close-on-exec, not dumpable): the report or EOF is all there is.
        const event = native().parkResult(this.#control);
        this.#closeControl();
        return event?.kind === 'failed' ? event : undefined;
      });
      return { stdio, failure: this.#sent };
    }
    let failure: Failure | undefined;
    this.#sent = new Promise<Failure | undefined>((resolve) => {
      native().parkWatch(this.#control, (event) => {
        if (event.kind === 'failed') failure ??= event;
        if (event.kind !== 'gone') return;
        this.#closeControl();
        resolve(failure);
      });
    });
    return { stdio, failure: this.#sent };
  }

  #closeControl(): void {
    if (this.#controlClosed) return;
    this.#controlClosed = true;
    closeSync(this.#control);
  }

  /**
   * The launch spec of a command run beside the workload, as an exec into a container is (a
   * healthcheck probe of a prewarmed main, lib/pool/ready-health.ts): it joins the sandbox's
   * namespaces through PID 1's pidfd and the sandbox's cgroup, with the sandbox's user, env,
   * workdir, capabilities, no_new_privs and its own copy of the seccomp filter.
   * @throws SystemError `ECHILD` when PID 1 is gone.
   */
  besideSpec(argv: string[]): NativeLaunchSpec {
    if (this.#pid1.exitedAlready) throw new SystemError('ECHILD', "the sandbox's PID 1 is gone: nothing to run a command beside");
    const base = this.#request.options;
    const spec = this.#planExec(argv, {}, false, {
      cgroupProcs: this.#launched.cgroup.procsFiles,
      join: { pidfd: this.#pid1.pidfd, namespaces: execNamespaces({ network: base.network ?? 'none', userns: base.userns !== undefined }), helperFd: execHelperExecutableFd() },
    });
    return spec;
  }

  #planExec(
    argv: string[],
    options: ParkedExecOptions,
    stdinPiped: boolean,
    beside?: { cgroupProcs: readonly string[]; join: { pidfd: number; namespaces: number; helperFd: number } },
  ): NativeLaunchSpec {
    const ctx = parkedExecContext(this.#request, this.#launched.plan, argv, options, stdinPiped, stagingDir(), beside?.cgroupProcs ?? []);
    // No join: PID 1 becomes the workload inside every namespace and cgroup of the sandbox.
    const spec = planExec(ctx, beside?.join ?? { pidfd: -1, namespaces: 0, helperFd: -1 });
    // A process beside the workload comes from the host: it loads the filter itself.
    if (beside) return spec;
    // PID 1 loaded this very filter (planned from the same options) at launch, and a filter
    // is kept across execve: loading it again would only stack a duplicate.
    return { ...spec, seccomp: null };
  }


  /**
   * Pids (as this process sees them) of the sandbox's processes other than PID 1: those in its
   * cgroup and inside its pid namespace. A helper that only passes through the cgroup on its way
   * in (berth-exec's H, src-native/spawn-exec.cc) is in no pid namespace of the sandbox's and is
   * not counted.
   */
  processesBeside(): number[] {
    return this.#launched.cgroup.pids().filter((pid) => pid !== this.pid && inChildPidNamespace(pid));
  }

  /**
   * Kills every process of the sandbox (SIGKILL to PID 1 ends its pid namespace), waits for the
   * exit, removes the cgroup and releases the network. Idempotent; never rejects.
   */
  destroy(): Promise<void> {
    this.#destroying ??= (async () => {
      this.#pid1.kill(SIGKILL);
      await this.#pid1.exited;
      // PID 1's end is closed: the watch (if a workload was sent) reads its last message or EOF.
      if (this.#sent) await this.#sent;
      else this.#closeControl();
      await releaseLaunched(this.#launched);
      this.#releaseMountNamespace();
    })();
    return this.#destroying;
  }

  /**
   * Destroys the sandbox ({@link destroy}) and resolves once its mount namespace is gone too
   * (its overlay and tmpfs unmounted), which may be after `destroy()` resolved. Never rejects.
   *
   * Why apart: the last process to leave a mount namespace unmounts its whole tree in its own
   * exit, before the kernel reports the exit (`namespace_unlock()` and overlayfs's
   * `ovl_free_fs()` each wait for an expedited RCU grace period: 1.6 ms at least here, 6 ms
   * median under load, most of a pooled `/bin/true`'s exit). Node holds a reference from the
   * launch on, so the command's exit only drops its own and is reported at once; `destroy()`
   * drops Node's with an asynchronous `close()`, so the unmounting runs on a libuv worker
   * thread, off the caller's path and off the event loop. Nothing can enter the namespace meanwhile: no process is left
   * in it and the descriptor is Node's alone (close-on-exec).
   */
  async tornDown(): Promise<void> {
    await this.destroy();
    await this.#torndown;
  }

  #releaseMountNamespace(): void {
    const fd = this.#mountNs;
    this.#mountNs = -1;
    this.#torndown = fd < 0 ? Promise.resolve() : new Promise<void>((resolve) => close(fd, () => resolve()));
  }
}

/**
 * Whether `pid` runs in a pid namespace below this process's /proc's: its `NSpid` line (readable
 * for any process, unlike its ns/ links) lists more than one pid. False once it is gone.
 */
function inChildPidNamespace(pid: number): boolean {
  try {
    const line = /^NSpid:(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return line !== undefined && line.trim().split(/\s+/).length > 1;
  } catch {
    return false;
  }
}

/**
 * Opens PID 1's mount namespace (see {@link ParkedSandbox.tornDown}); -1 when it cannot be
 * opened, and the teardown then stays in the exit of the sandbox's last process, as with `run()`.
 */
function holdMountNamespace(pid1: ContainerProcess): number {
  // The pid is safe to name: PID 1 is this process's child and only this process reaps it.
  if (pid1.exitedAlready) return -1;
  try {
    return openSync(`/proc/${pid1.pid}/ns/mnt`, 'r');
  } catch {
    // A PID 1 that died already (its namespaces are gone), or no CAP_SYS_PTRACE over it (it is
    // not dumpable): correct either way, only slower.
    return -1;
  }
}

async function releaseLaunched(launched: Launched): Promise<void> {
  try {
    launched.cgroup.remove({ timeoutMs: 1000 });
  } catch {
    // a cgroup the kernel still holds is swept by the orphan sweep of the next start
  }
  await launched.network?.release().catch(() => {});
}

function feed(proc: ParkedWorkload, stdin: ParkedExecOptions['stdin']): void {
  if (!proc.stdin) return;
  if (stdin === undefined) return;
  if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) proc.stdin.end(stdin);
  else stdin.pipe(proc.stdin);
}
