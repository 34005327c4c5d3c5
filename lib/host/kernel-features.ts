/**
 * Kernel features berth relies on, probed by trying them where that is cheap and leaves nothing
 * behind (an overlay mount that is never attached, a pidfd of this process, an `openat2`
 * lookup), read from procfs where the kernel publishes the answer (seccomp, user namespace
 * sysctls), and inferred from the kernel version only where a try would need a user namespace
 * or a cgroup (each result says which).
 * @module
 */
import { closeSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { native } from '../native.js';

/** How a feature's availability was found out. */
export type ProbeMethod = 'tried' | 'procfs' | 'kernel-version';

/** One kernel feature: whether berth can use it here, and how that was decided. */
export interface FeatureProbe {
  readonly available: boolean;
  /** `tried`: the operation was performed; `procfs`: the kernel's own report was read; `kernel-version`: inferred from `KernelVersion`. */
  readonly method: ProbeMethod;
  /** Why it is missing (the error of the try, the sysctl that forbids it), or what was tried. */
  readonly detail: string;
}

/** The kernel features `rt.info()` reports. */
export interface KernelFeatures {
  /** Kernel overlayfs, mounted (detached, never attached) over directories of the state dir's filesystem. */
  readonly overlay: FeatureProbe;
  /** `openat2(2)` with `RESOLVE_IN_ROOT`: how berth confines every path inside a rootfs or layer. */
  readonly openat2: FeatureProbe;
  /** `pidfd_open(2)`: how berth waits for and signals containers without pid reuse races. */
  readonly pidfd: FeatureProbe;
  /** Seccomp filters with the actions berth's profile uses (`errno`, `allow`, `kill_process`). */
  readonly seccomp: FeatureProbe;
  /** Unprivileged user namespaces (rootless berth needs them); names the sysctl or AppArmor knob that forbids them. */
  readonly userNamespaces: FeatureProbe;
  /** Idmapped mounts (`mount_setattr(2)` with `MOUNT_ATTR_IDMAP`, Linux 5.12). */
  readonly idmappedMounts: FeatureProbe;
  /** `clone3(2)` with `CLONE_INTO_CGROUP` (Linux 5.7); berth uses it on cgroup v2 only. */
  readonly clone3IntoCgroup: FeatureProbe;
}

/** `major.minor` of a kernel release string (`6.1.0-18-amd64` -> [6, 1]); [0, 0] when unreadable. */
export function kernelVersionOf(releaseText: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(releaseText);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function atLeast(releaseText: string, major: number, minor: number): FeatureProbe {
  const [a, b] = kernelVersionOf(releaseText);
  const ok = a > major || (a === major && b >= minor);
  return { available: ok, method: 'kernel-version', detail: ok ? `Linux ${releaseText} >= ${major}.${minor}` : `needs Linux ${major}.${minor}, this is ${releaseText}` };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Mount an overlay of `<dir>/l` under `<dir>/u` with the new mount API and close it at once:
 * the mount is never attached, so nothing outlives the probe but the empty directories, which
 * are removed. `openat2` is tried on the same directory, through the native root helpers.
 */
function tryOverlayAndOpenat2(scratchParent: string): { overlay: FeatureProbe; openat2: FeatureProbe } {
  let dir: string | undefined;
  let overlay: FeatureProbe;
  let openat2: FeatureProbe;
  try {
    dir = mkdtempSync(join(scratchParent, '.probe-'));
    for (const d of ['l', 'u', 'w']) mkdirSync(join(dir, d));
    const core = native();
    try {
      const root = core.fsOpenRoot(dir);
      try {
        core.fsCloseRoot(core.fsOpenRootAt(root, 'l'));
        openat2 = { available: true, method: 'tried', detail: 'openat2(RESOLVE_IN_ROOT) below the state directory' };
      } finally {
        core.fsCloseRoot(root);
      }
    } catch (error) {
      openat2 = { available: false, method: 'tried', detail: messageOf(error) };
    }
    try {
      core.fsCloseRoot(core.fsMountOverlay({ lowerDirs: [join(dir, 'l')], upperDir: join(dir, 'u'), workDir: join(dir, 'w') }));
      overlay = { available: true, method: 'tried', detail: `mounted an overlay on ${scratchParent}'s filesystem` };
    } catch (error) {
      overlay = { available: false, method: 'tried', detail: messageOf(error) };
    }
  } catch (error) {
    // No scratch directory or no native core: nothing could be tried.
    const detail = `could not try: ${messageOf(error)}`;
    overlay = { available: false, method: 'tried', detail };
    openat2 = { available: false, method: 'tried', detail };
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
  return { overlay, openat2 };
}

function tryPidfd(): FeatureProbe {
  try {
    closeSync(native().pidfdOpen(process.pid));
    return { available: true, method: 'tried', detail: 'pidfd_open of this process' };
  } catch (error) {
    return { available: false, method: 'tried', detail: messageOf(error) };
  }
}

/** Where the kernel publishes its seccomp and user-namespace answers; a seam for tests. */
export interface ProcSource {
  read(path: string): string | undefined;
}

const realProc: ProcSource = { read: readProc };

/** Seccomp filter mode with the actions berth's default profile returns. */
export function seccompFeature(proc: ProcSource = realProc): FeatureProbe {
  const actions = proc.read('/proc/sys/kernel/seccomp/actions_avail');
  if (actions === undefined) return { available: false, method: 'procfs', detail: 'the kernel has no seccomp filter support (/proc/sys/kernel/seccomp/actions_avail missing)' };
  const have = new Set(actions.split(/\s+/));
  const missing = ['errno', 'allow', 'kill_process'].filter((a) => !have.has(a));
  return missing.length === 0
    ? { available: true, method: 'procfs', detail: `actions: ${actions}` }
    : { available: false, method: 'procfs', detail: `seccomp lacks the action(s) ${missing.join(', ')}` };
}

/**
 * Whether an unprivileged process may create a user namespace: `user.max_user_namespaces` above
 * 0, Debian's `kernel.unprivileged_userns_clone` (when the kernel has it) at 1, and Ubuntu
 * 24.04's AppArmor `kernel.apparmor_restrict_unprivileged_userns` (when present) at 0.
 */
export function userNamespacesFeature(proc: ProcSource = realProc): FeatureProbe {
  const max = proc.read('/proc/sys/user/max_user_namespaces');
  if (max === undefined) return { available: false, method: 'procfs', detail: 'the kernel has no user namespaces (/proc/sys/user/max_user_namespaces missing)' };
  if (Number(max) <= 0) return { available: false, method: 'procfs', detail: 'sysctl user.max_user_namespaces is 0' };
  if (proc.read('/proc/sys/kernel/unprivileged_userns_clone') === '0') return { available: false, method: 'procfs', detail: 'sysctl kernel.unprivileged_userns_clone is 0' };
  if (proc.read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') {
    return { available: false, method: 'procfs', detail: 'AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns is 1)' };
  }
  return { available: true, method: 'procfs', detail: `user.max_user_namespaces = ${max}` };
}

/**
 * Probe every feature once. `scratchParent` is a directory on the filesystem the state lives on
 * (the state dir itself): overlay is tried there because whether it mounts depends on that
 * filesystem (overlay over overlay is refused). Never throws: a missing feature is reported.
 */
export function probeKernelFeatures(scratchParent: string, kernelRelease: string = release()): KernelFeatures {
  const { overlay, openat2 } = tryOverlayAndOpenat2(scratchParent);
  return {
    overlay,
    openat2,
    pidfd: tryPidfd(),
    seccomp: seccompFeature(),
    userNamespaces: userNamespacesFeature(),
    // Trying these needs a user namespace (idmap) or a v2 cgroup (clone3): not cheap enough here.
    idmappedMounts: atLeast(kernelRelease, 5, 12),
    clone3IntoCgroup: atLeast(kernelRelease, 5, 7),
  };
}
