/**
 * From the host facts `rt.info()` gathers to what a user should do about them: one entry per
 * missing piece, each naming the problem and, when one command fixes it, that command. Pure
 * (facts in, advice out) so every rule is unit-tested over made-up hosts.
 * @module
 */
import type { CgroupInfo } from './cgroup/controllers.js';
import { kernelVersionOf, type IdMappingInfo, type KernelFeatures } from './host/index.js';
import type { NetworkToolsInfo } from './network/host-tools.js';

/** One missing piece and its fix. */
export interface Advice {
  /** What it concerns: `storage`, `cgroup`, `network`, `idmap` (rootless id mapping) or `kernel`. */
  readonly area: 'storage' | 'cgroup' | 'network' | 'idmap' | 'kernel';
  /** What is missing and what it costs, in one sentence. */
  readonly problem: string;
  /** One shell line (or API call) that fixes it on this host; absent when none does (a kernel build option). */
  readonly fix?: string;
}

/** The facts {@link deriveAdvice} reads: probed once per runtime, see `lib/runtime-info.ts`. */
export interface HostFacts {
  /** The runtime's state directory. */
  readonly root: string;
  /** Effective uid of this process. */
  readonly uid: number;
  /** The user's name, when `/etc/passwd` has one. */
  readonly userName: string | undefined;
  /** `uname -r`. */
  readonly kernelRelease: string;
  /** Filesystem of the state directory, in Docker's words (`extfs`, `overlayfs`, ...). */
  readonly backingFilesystem: string;
  readonly features: KernelFeatures;
  readonly idMapping: IdMappingInfo;
  readonly cgroups: CgroupInfo;
  readonly network: NetworkToolsInfo;
}

// Limits the default profile and launches need from the kernel; without them berth cannot
// start a container at all, so they are reported whoever runs it.
const ESSENTIAL: ReadonlyArray<[keyof KernelFeatures, string, string]> = [
  ['pidfd', 'pidfd_open (Linux 5.3)', 'berth waits for and signals containers through pidfds'],
  ['openat2', 'openat2 (Linux 5.6)', 'berth confines every path of a rootfs or layer with openat2(RESOLVE_IN_ROOT)'],
  ['seccomp', 'seccomp filters', "berth's default seccomp profile cannot be applied"],
];

function storageAdvice(f: HostFacts): Advice[] {
  if (f.features.overlay.available) return [];
  if (f.backingFilesystem === 'overlayfs') {
    return [{
      area: 'storage',
      problem: `the state directory ${f.root} is on overlayfs (berth inside a container?): kernel overlay refused it as an upper directory (${f.features.overlay.detail}), so the storage probe falls back to fuse-overlayfs where /dev/fuse works (a daemon per running container) and else to vfs (a full copy of the image per container: slower, more disk); rt.info().Storage says which`,
      fix: `Runtime.open({ root: '<a directory on a volume, tmpfs or the host disk>' }), e.g. mount a volume at ${f.root}`,
    }];
  }
  const detail = f.features.overlay.detail;
  if (f.uid !== 0 && /EPERM|not permitted/i.test(detail)) {
    // The probe runs in the host's user namespace, where only root may mount overlay; a
    // rootless container mounts it inside its own user namespace (userxattr), which works.
    return [];
  }
  if (/ENODEV|no such device/i.test(detail)) return [{ area: 'storage', problem: `kernel overlay is not available (${detail})`, fix: 'modprobe overlay' }];
  if (/EINVAL|invalid argument|lowerdir\+/i.test(detail) && !kernelAtLeast(f.kernelRelease, 6, 8)) {
    return [{ area: 'storage', problem: `kernel overlay could not be mounted on ${f.root} (${detail}); berth mounts layers with the Linux 6.8 mount API`, fix: 'upgrade the kernel to Linux 6.8 or newer' }];
  }
  return [{ area: 'storage', problem: `kernel overlay could not be mounted on ${f.root} (${f.backingFilesystem}): ${detail}`, fix: 'Runtime.open({ root: \'<a directory on ext4, xfs, btrfs or tmpfs>\' })' }];
}

function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const [a, b] = kernelVersionOf(release);
  return a > major || (a === major && b >= minor);
}

function cgroupAdvice(f: HostFacts): Advice[] {
  const c = f.cgroups;
  if (c.version === null) return [{ area: 'cgroup', problem: `no cgroup filesystem is mounted: containers cannot be limited (${c.detail})`, fix: 'mount -t cgroup2 none /sys/fs/cgroup' }];
  const out: Advice[] = [];
  const unusable = Object.entries(c.controllers).filter(([, s]) => !s.usable);
  for (const [name, s] of unusable) {
    if (s.fix !== undefined) out.push({ area: 'cgroup', problem: `cgroup controller ${name} is not usable: ${s.detail}`, fix: s.fix });
  }
  const unfixable = unusable.filter(([, s]) => s.fix === undefined).map(([name]) => name);
  if (unfixable.length > 0) {
    const names = unfixable.join(', ');
    if (f.uid !== 0 && c.version === 1) {
      out.push({ area: 'cgroup', problem: `cgroup v1 without root: limits on ${names} are refused (no delegation on v1; with limits: 'best-effort' containers run without them)`, fix: 'boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2) and delegate a subtree to the user (systemd-run --user --scope -p Delegate=yes)' });
    } else if (f.uid !== 0) {
      out.push({ area: 'cgroup', problem: `no delegated cgroup v2 subtree: limits on ${names} are refused (with limits: 'best-effort' containers run without them)`, fix: 'systemd-run --user --scope -p Delegate=yes node … (or chown a cgroup subtree to the user)' });
    } else {
      out.push({ area: 'cgroup', problem: `cgroup controllers ${names} are not usable: ${unusable.filter(([, s]) => s.fix === undefined).map(([n, s]) => `${n}: ${s.detail}`).join('; ')}` });
    }
  }
  return out;
}

function networkAdvice(f: HostFacts): Advice[] {
  const n = f.network;
  const out: Advice[] = [];
  if (f.uid === 0) {
    if (n.firewall === null) out.push({ area: 'network', problem: 'neither nft nor iptables works: bridge networks and published ports are unavailable', fix: 'apt-get install nftables' });
    if (!n.bridge.available && /CONFIG_BRIDGE/.test(n.bridge.detail)) out.push({ area: 'network', problem: 'the kernel has no bridge driver: bridge networks are unavailable', fix: 'modprobe bridge' });
  } else if (n.pasta === null && n.slirp4netns === null) {
    out.push({ area: 'network', problem: 'neither pasta nor slirp4netns is installed: rootless containers get no outbound network or published ports', fix: 'apt-get install passt' });
  } else if (!n.userMode.tun.usable) {
    out.push({ area: 'network', problem: `pasta and slirp4netns cannot open the tun device (${n.userMode.tun.detail}): rootless containers get no outbound network or published ports`, ...(n.userMode.tun.fix ? { fix: n.userMode.tun.fix } : {}) });
  }
  return out;
}

function idMappingAdvice(f: HostFacts): Advice[] {
  if (f.uid === 0) return [];
  const m = f.idMapping;
  const user = f.userName ?? String(f.uid);
  const out: Advice[] = [];
  if (m.newuidmap.path === null || m.newgidmap.path === null) {
    out.push({ area: 'idmap', problem: 'newuidmap/newgidmap are missing: containers get a single-id map (chown to other ids fails)', fix: 'apt-get install uidmap' });
  } else if (!m.newuidmap.setuid || !m.newgidmap.setuid) {
    out.push({ area: 'idmap', problem: 'newuidmap/newgidmap are not setuid root: they cannot write a multi-id map', fix: `chmod u+s ${m.newuidmap.path} ${m.newgidmap.path}` });
  }
  const noUid = !m.subuid.some((r) => r.count >= 65536);
  const noGid = !m.subgid.some((r) => r.count >= 65536);
  if (noUid || noGid) {
    const files = [noUid ? '/etc/subuid' : '', noGid ? '/etc/subgid' : ''].filter(Boolean).join(' and ');
    const flags = [noUid ? '--add-subuids 100000-165535' : '', noGid ? '--add-subgids 100000-165535' : ''].filter(Boolean).join(' ');
    out.push({ area: 'idmap', problem: `${user} has no range of 65536 ids in ${files}: containers get a single-id map`, fix: `usermod ${flags} ${user}` });
  }
  return out;
}

function kernelAdvice(f: HostFacts): Advice[] {
  const out: Advice[] = [];
  for (const [key, name, why] of ESSENTIAL) {
    const p = f.features[key];
    if (!p.available) out.push({ area: 'kernel', problem: `${name} is not available (${p.detail}): ${why}`, ...(key === 'seccomp' ? {} : { fix: 'upgrade the kernel' }) });
  }
  const userns = f.features.userNamespaces;
  // Root may create user namespaces whatever the unprivileged sysctls say, but not past max_user_namespaces = 0.
  const matters = f.uid !== 0 || /max_user_namespaces is 0|has no user namespaces/.test(userns.detail);
  if (!userns.available && matters) {
    const fix = /apparmor/i.test(userns.detail)
      ? 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile allowing userns for node)'
      : /unprivileged_userns_clone/.test(userns.detail)
        ? 'sysctl -w kernel.unprivileged_userns_clone=1'
        : /max_user_namespaces/.test(userns.detail)
          ? 'sysctl -w user.max_user_namespaces=15000'
          : undefined;
    out.push({ area: 'kernel', problem: `user namespaces are not available: ${userns.detail}`, ...(fix === undefined ? {} : { fix }) });
  }
  if (f.uid !== 0 && !f.features.idmappedMounts.available) {
    out.push({ area: 'kernel', problem: `idmapped mounts are not available (${f.features.idmappedMounts.detail}): rootless layers must be copied and chowned`, fix: 'upgrade the kernel to Linux 5.12 or newer' });
  }
  return out;
}

/**
 * Every missing piece of `facts`, storage first, each with its one-line fix when there is one.
 * What only matters without root (id maps, user-mode networks, delegation) is reported only
 * for a non-root runtime.
 */
export function deriveAdvice(facts: HostFacts): Advice[] {
  return [...storageAdvice(facts), ...cgroupAdvice(facts), ...networkAdvice(facts), ...idMappingAdvice(facts), ...kernelAdvice(facts)];
}

/** Docker's `Warnings` lines: the problem, then the fix. */
export function warningLines(advice: readonly Advice[]): string[] {
  return advice.map((a) => (a.fix === undefined ? `WARNING: ${a.problem}` : `WARNING: ${a.problem}. Fix: ${a.fix}`));
}
