/**
 * One user namespace for all the rootless containers of this process, as Podman's pause
 * process keeps one per user: `berth-helper userns-hold` unshares it and holds it, its maps are
 * written once (newuidmap/newgidmap for the subordinate layout: two setuid executions that
 * cost more than the rest of a launch), and every rootless launch after that creates its
 * container inside it (spec `joinUserns`, src-native/spawn.cc CloneInUserns) with new mount,
 * pid, ipc, uts, network and cgroup namespaces of its own.
 *
 * Isolation between containers does not rest on the user namespace: each has its own pid
 * namespace (it cannot name another's processes, so cannot signal or ptrace them), its own
 * mount namespace and root (it cannot reach another's files), and the same seccomp profile,
 * bounding set and no_new_privs as before. All of them are the same host user anyway (the
 * caller and its subordinate range), with or without a shared namespace.
 *
 * Lifetime: the namespace lives while anything is in it: the holder, a container's process,
 * a descriptor (this process's, and a monitor's for detached containers). The holder is tied
 * to this process (parent-death signal, and EOF on its stdin), so it dies with it even on
 * SIGKILL; detached containers keep their namespace alive without it. The last
 * {@link releaseHeldUserns} (a `Runtime.close()`) ends the holder; a later launch makes a new
 * one, and a new owner process always makes its own.
 * @module
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { SystemError, UnsupportedError } from '../errors.js';
import { helperExecutablePath } from '../native.js';
import type { IdMapLine, RootlessIdMaps } from './id-maps.js';

/** How long the holder and the map helpers may take (a loaded 2-CPU VM: a few ms each). */
const READY_TIMEOUT_MS = 10_000;
/** Bytes of the holder's stderr kept for error messages. */
const STDERR_LIMIT = 4096;

/** A use of the held namespace, for one launch: the descriptor stays open until {@link release}. */
export interface HeldUsernsLease {
  /** A descriptor of the user namespace (`/proc/<holder>/ns/user`), for the spec's `joinUserns`. */
  readonly fd: number;
  /** The holder's pid. */
  readonly pid: number;
  /** Its map is a single-id one: setgroups(2) is denied there. */
  readonly setgroupsDenied: boolean;
  /** Done with `fd` (the launch spawned, or failed). Idempotent. */
  release(): void;
}

class Holder {
  readonly key: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly single: boolean;
  fd = -1;
  leases = 0;
  closed = false;
  readonly exited: Promise<number>;
  #stderr = '';

  constructor(key: string, single: boolean) {
    this.key = key;
    this.single = single;
    this.child = spawn(helperExecutablePath(), ['userns-hold', String(process.pid), single ? 'single' : 'subordinate'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid ?? -1;
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      if (this.#stderr.length < STDERR_LIMIT) this.#stderr += d.slice(0, STDERR_LIMIT - this.#stderr.length);
    });
    // A holder whose owner is gone gets EOF or EPIPE on its pipes; neither is ours to report.
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.once('error', () => resolve(127));
      this.child.once('exit', (code) => resolve(code ?? 137));
    });
    void this.exited.then(() => this.close());
  }

  stderr(): string {
    return this.#stderr.trim();
  }

  /** Resolves once the holder wrote `line` on stdout; rejects if it exits first or takes too long. */
  async expect(line: string, what: string): Promise<void> {
    const stdout = this.child.stdout!;
    stdout.setEncoding('utf8');
    let timer: NodeJS.Timeout | undefined;
    let onData: ((d: string) => void) | undefined;
    let seen = '';
    try {
      await Promise.race([
        new Promise<void>((resolve) => {
          onData = (d: string) => {
            seen += d;
            if (seen.includes(`${line}\n`)) resolve();
          };
          stdout.on('data', onData);
        }),
        this.exited.then((code) => {
          throw new SystemError('ERR_USERNS_HOLDER', `could not ${what} (berth-helper userns-hold exited ${code}): ${this.stderr() || 'no message'}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new SystemError('ETIMEDOUT', `could not ${what}: berth-helper userns-hold did not answer within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onData) stdout.off('data', onData);
    }
  }

  /** Ends the holder (EOF on its stdin); the descriptor closes once no launch uses it. Idempotent. */
  close(): void {
    if (!this.closed) {
      this.closed = true;
      this.child.stdin!.end();
      if (held === this) held = undefined;
    }
    this.#closeFd();
  }

  lease(): HeldUsernsLease {
    this.leases++;
    let released = false;
    return {
      fd: this.fd,
      pid: this.pid,
      setgroupsDenied: this.single,
      release: () => {
        if (released) return;
        released = true;
        this.leases--;
        this.#closeFd();
      },
    };
  }

  #closeFd(): void {
    if (this.closed && this.leases === 0 && this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Nothing of the holder keeps Node's event loop alive: it is ended by its owner, or dies with it. */
  unref(): void {
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

function mapArgs(lines: readonly IdMapLine[]): string[] {
  return lines.flatMap((l) => [String(l.containerId), String(l.hostId), String(l.size)]);
}

/** Runs newuidmap or newgidmap on the holder: `helper <pid> <inside outside count>...`. */
function runMapHelper(helper: string, pid: number, lines: readonly IdMapLine[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(helper, [String(pid), ...mapArgs(lines)], { timeout: READY_TIMEOUT_MS, killSignal: 'SIGKILL', env: {} }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const detail = String(stderr).trim() || error.message;
      reject(new UnsupportedError(`${helper} refused the id map ${mapArgs(lines).join(' ')} (${detail}): it must be setuid root (apt-get install uidmap) and the range must be the user's in /etc/subuid and /etc/subgid`, { path: helper }));
    });
  });
}

let held: Holder | undefined;
let pending: Promise<Holder> | undefined;
let owners = 0;

async function start(maps: RootlessIdMaps, key: string): Promise<Holder> {
  const single = maps.helpers === undefined;
  const h = new Holder(key, single);
  try {
    if (!single) {
      await h.expect('unshared', 'create the rootless user namespace');
      await runMapHelper(maps.helpers!.newuidmap, h.pid, maps.uidMap);
      await runMapHelper(maps.helpers!.newgidmap, h.pid, maps.gidMap);
      h.child.stdin!.write('g');
    }
    await h.expect('ready', 'create the rootless user namespace');
    // Our child, not yet reaped: the pid cannot name another process.
    h.fd = openSync(`/proc/${h.pid}/ns/user`, 'r');
  } catch (error) {
    h.close();
    h.child.kill('SIGKILL');
    throw error;
  }
  h.unref();
  return h;
}

/**
 * A lease on this process's held user namespace with `maps` (made now if there is none, or if
 * the maps changed, e.g. a subordinate range was added meanwhile).
 * @throws SystemError when the holder cannot create the namespace (its message says why);
 *   UnsupportedError when newuidmap/newgidmap refuse the maps (with the fix).
 */
export async function leaseHeldUserns(maps: RootlessIdMaps): Promise<HeldUsernsLease> {
  const key = JSON.stringify([maps.uidMap, maps.gidMap]);
  for (;;) {
    if (held && !held.closed && held.key === key) return held.lease();
    pending ??= start(maps, key)
      .then((h) => {
        held?.close();
        held = h;
        return h;
      })
      .finally(() => {
        pending = undefined;
      });
    await pending;
  }
}

/** The holder's pid, or undefined when this process holds no namespace now (for `rt.info()` and tests). */
export function heldUsernsPid(): number | undefined {
  return held && !held.closed ? held.pid : undefined;
}

/** A runtime of this process uses the held namespace until {@link releaseHeldUserns}. */
export function retainHeldUserns(): void {
  owners++;
}

/** The last owner is gone: the holder ends (containers already in the namespace keep it). */
export function releaseHeldUserns(): void {
  if (owners > 0) owners--;
  if (owners === 0) held?.close();
}
