/**
 * A recording fake of the native contract (`NativeBinding`, lib/native.ts), in the spirit of
 * youki's `TestHelperSyscall`: every call is recorded with its arguments, a test can make any
 * call fail with an errno (once, every time, from the n-th call on, or when its arguments
 * match), and everything else either runs a scripted stand-in or passes through to a delegate
 * (usually the real addon, for the confined file-system calls on a temp dir).
 *
 * Injected failures are built the way the addon builds them (a `SystemError` with `.errno`,
 * `.syscall`, `.path`), so the code under test cannot tell them from the kernel's. Async
 * members reject instead of throwing.
 *
 * ```ts
 * const fake = new NativeFake({ delegate: native() });
 * fake.fail('fsMakeEntry', 'ENOSPC', { after: 2 });       // the third entry finds the disk full
 * new LayerApplier(root, 'layer', 'sha256:…', fake.binding);
 * fake.callsOf('fsMakeEntry').length;
 * ```
 * @module
 */
import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { SystemError } from '../../lib/errors.js';
import type { NativeBinding } from '../../lib/native.js';

type Name = keyof NativeBinding;
type Impl<K extends Name> = NativeBinding[K];

/** Every member of the contract; the type below fails to compile when one is missing here. */
const MEMBERS = [
  'spawn', 'watchExit', 'sendSignal', 'parkControl', 'parkExec', 'parkWatch', 'parkResult', 'sealExecutable', 'pidfdOpen', 'pidfdGetfd', 'loadDeviceFilter', 'attachDeviceFilter', 'resizeTty',
  'netEnsureBridge', 'netDeleteLink', 'netListLinks', 'netAttach', 'netFlushConntrack', 'dnsParseQuery', 'dnsBuildAnswer', 'dnsUpdate',
  'fsOpenRoot', 'fsOpenRootAt', 'fsMountOverlay', 'fsCloseRoot', 'fsMakeEntry', 'fsFinishFile',
  'fsWritePoolCreate', 'fsWritePoolSubmit', 'fsWritePoolBarrier', 'fsWritePoolIdle', 'fsWritePoolHasRoom', 'fsWritePoolClose',
  'fsRemoveAt', 'fsRenameAt', 'fsReadDirAt', 'fsLstatAt', 'fsOpenAt', 'fsSetXattrAt', 'fsListXattrsAt', 'fsSetTimesAt',
  'fsSync', 'fsSyncAsync', 'fsSetTopDir', 'fsFlock',
  'btrfsSubvolume',
  'zstdCreate', 'zstdDecompress', 'zstdEnd', 'gzipCreate', 'gzipInflate', 'gzipEnd',
] as const satisfies readonly Name[];
type Missing = Exclude<Name, (typeof MEMBERS)[number]>;
const complete: [Missing] extends [never] ? true : Missing = true;
void complete;

/** Members that return a promise: an injected failure rejects. */
const ASYNC = new Set<Name>(['spawn', 'netEnsureBridge', 'netDeleteLink', 'netListLinks', 'netAttach', 'netFlushConntrack', 'dnsUpdate', 'fsSyncAsync', 'btrfsSubvolume']);

/** Members that own the fd they are given even when they fail (the addon closes it): so does the fake. */
const CONSUMES_FD = new Set<Name>(['fsFinishFile', 'fsCloseRoot']);

/** One recorded call. */
export interface NativeCall {
  name: Name;
  args: unknown[];
  /** The errno name of an injected failure, when this call got one. */
  failed?: string;
}

export interface FailOptions {
  /** Let this many matching calls through first. Default 0. */
  after?: number;
  /** Fail this many matching calls. Default 1; `Infinity` for every one. */
  times?: number;
  /** Only calls whose arguments pass. */
  when?: (...args: unknown[]) => boolean;
  /** Default: the member's name. */
  syscall?: string;
  /** Default: the root-relative path of an `fs*` call (its second argument, or that argument's `path`). */
  path?: string;
}

interface Fault extends Required<Pick<FailOptions, 'after' | 'times'>> {
  name: Name;
  code: string;
  when: FailOptions['when'];
  syscall: string | undefined;
  path: string | undefined;
  seen: number;
}

/** A failure exactly as src-native/napi-errors.cc builds one. */
export function nativeFailure(code: string, syscall: string, path?: string): SystemError & { errno: number; syscall: string } {
  const errno = (constants.errno as Record<string, number | undefined>)[code];
  if (errno === undefined) throw new TypeError(`not an errno name: ${code}`);
  const text = getSystemErrorMap().get(-errno)?.[1] ?? code;
  return new SystemError(code, `${syscall}${path ? ` '${path}'` : ''}: ${text}`, { errno, syscall, ...(path ? { path } : {}) }) as SystemError & { errno: number; syscall: string };
}

/** The path the addon would report for an `fs*` call: `(rootFd, path, …)` or `(rootFd, { path, … })`. */
function pathOf(args: unknown[]): string | undefined {
  const second = args[1];
  if (typeof second === 'string') return second;
  if (typeof second === 'object' && second !== null && typeof (second as { path?: unknown }).path === 'string') return (second as { path: string }).path;
  return undefined;
}

export class NativeFake {
  /** Every call, in order. */
  readonly calls: NativeCall[] = [];
  /** The fake as the contract: hand this to the service under test. */
  readonly binding: NativeBinding;
  readonly #delegate: Partial<NativeBinding>;
  readonly #stubs = new Map<Name, (...args: never[]) => unknown>();
  #faults: Fault[] = [];

  /** @param options.delegate where unscripted calls go (e.g. `native()`); without one they throw ENOSYS. */
  constructor(options: { delegate?: Partial<NativeBinding> } = {}) {
    this.#delegate = options.delegate ?? {};
    const binding: Record<string, unknown> = {};
    for (const name of MEMBERS) binding[name] = (...args: unknown[]) => this.#call(name, args);
    this.binding = Object.freeze(binding) as unknown as NativeBinding;
  }

  /** Runs `impl` for `name` instead of the delegate. */
  stub<K extends Name>(name: K, impl: Impl<K>): this {
    this.#stubs.set(name, impl as (...args: never[]) => unknown);
    return this;
  }

  /** Makes calls of `name` fail with the errno `code` (see {@link FailOptions}). */
  fail(name: Name, code: string, options: FailOptions = {}): this {
    this.#faults.push({
      name,
      code,
      after: options.after ?? 0,
      times: options.times ?? 1,
      when: options.when,
      syscall: options.syscall,
      path: options.path,
      seen: 0,
    });
    return this;
  }

  /** The recorded calls of one member. */
  callsOf(name: Name): NativeCall[] {
    return this.calls.filter((c) => c.name === name);
  }

  /** The recorded member names, in order (`['fsOpenRoot', 'fsMakeEntry', …]`). */
  names(): Name[] {
    return this.calls.map((c) => c.name);
  }

  #call(name: Name, args: unknown[]): unknown {
    const call: NativeCall = { name, args };
    this.calls.push(call);
    const fault = this.#faultFor(name, args);
    if (fault) {
      call.failed = fault.code;
      const path = fault.path ?? pathOf(args);
      const error = nativeFailure(fault.code, fault.syscall ?? name, path);
      if (CONSUMES_FD.has(name) && typeof args[0] === 'number') {
        try {
          closeSync(args[0]);
        } catch {
          // a test's made-up fd
        }
      }
      if (ASYNC.has(name)) return Promise.reject(error);
      throw error;
    }
    const impl = (this.#stubs.get(name) ?? this.#delegate[name]) as ((...a: unknown[]) => unknown) | undefined;
    if (!impl) {
      const error = nativeFailure('ENOSYS', name);
      if (ASYNC.has(name)) return Promise.reject(error);
      throw error;
    }
    return impl(...args);
  }

  #faultFor(name: Name, args: unknown[]): Fault | undefined {
    for (const f of this.#faults) {
      if (f.name !== name || (f.when && !f.when(...args))) continue;
      f.seen++;
      if (f.seen <= f.after) continue;
      if (f.seen > f.after + f.times) continue;
      return f;
    }
    return undefined;
  }
}
