/**
 * Builds the ordered list of mount operations that turn a fresh mount namespace into a
 * container's filesystem. Pure: every fact about the host comes in as an argument, so the
 * order and flags are unit-tested without a kernel.
 * @module
 */
import { UnsupportedError, ValidationError } from '../errors.js';
import { CreateKind, MountOpKind, type NativeMountOp } from '../native.js';
import { MASKED_PATHS, READONLY_PATHS } from '../security/paths.js';
import type { ContainerLayerPaths, StorageDriver } from '../storage/driver.js';
import { parseBytes } from '../units.js';
import type { BindPropagation, MountSpec } from './run-options.js';

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_STRICTATIME = 0x1000000;

/** A cgroup filesystem to show at /sys/fs/cgroup[/name] inside the container. */
export interface CgroupMount {
  /** `cgroup` (v1 hierarchy) or `cgroup2`. */
  fstype: 'cgroup' | 'cgroup2';
  /** Mount data: the v1 controllers (`memory`, `cpu,cpuacct`, `name=systemd`). */
  data?: string;
  target: string;
}

/** The root filesystem's origin, resolved: image layers (or a rootfs dir) made a root by a storage driver, or the host's. */
export type RootfsSource =
  | { kind: 'layers'; lowerDirs: string[]; driver: StorageDriver }
  | { kind: 'host'; rootBinds: string[]; rootSymlinks: Array<{ path: string; target: string }> };

export interface RootfsPlanInput {
  source: RootfsSource;
  /** An empty host directory; a tmpfs is mounted on it inside the container's mount namespace only. */
  stagingDir: string;
  /** In a user namespace devices must be bound (mknod is refused) and overlay needs `userxattr`. */
  userns: boolean;
  /** Whether the container has its own network namespace (sysfs can only be mounted fresh then). */
  netns: boolean;
  privileged: boolean;
  readonlyRootfs: boolean;
  /** Files written into the root: /etc/hosts, /etc/hostname, /etc/resolv.conf, passwd for host mode. */
  files: Array<{ path: string; content: string; mode: number }>;
  /** Host files or dirs bound read-only at the same path (host mode's /etc entries). */
  readonlyBinds: Array<{ path: string; dir: boolean }>;
  symlinks: Array<{ path: string; target: string }>;
  cgroupMounts: CgroupMount[];
  workdir: string;
  mounts: MountSpec[];
  /** Extra directories to make (host mode: /etc, /root, home). */
  dirs: Array<{ path: string; mode: number }>;
  /** The container's persistent layer (on the host, in the state dir); default a throw-away one in the staging tmpfs. */
  upper?: ContainerLayerPaths;
  /** Fresh tmpfs mounts berth adds itself (host mode's /tmp). */
  tmpfs: Array<{ path: string; mode: number }>;
}

/** Devices every container gets, bound from the host's /dev (works in user namespaces too). */
export const DEFAULT_DEVICES: readonly string[] = Object.freeze(['null', 'zero', 'full', 'random', 'urandom', 'tty']);


/**
 * Flags of every filesystem a container can write: device nodes it creates (it keeps
 * CAP_MKNOD, as in Docker) cannot be opened, and set-id bits do nothing. `privileged` lifts
 * both, as Docker's --privileged does.
 */
export function writableFlags(privileged: boolean | undefined): number {
  return privileged ? 0 : MS_NODEV | MS_NOSUID;
}

function rootOps(input: RootfsPlanInput): NativeMountOp[] {
  const staging = input.stagingDir;
  // The tmpfs lives only in this container's mount namespace: when the last process exits,
  // the kernel frees it with the namespace, so a crashed owner leaks nothing on the host.
  // In host mode it *is* the container's writable root (/, /root, /etc, /var/tmp): like every
  // writable filesystem, nodev and nosuid (the container keeps CAP_MKNOD, as in Docker).
  const ops: NativeMountOp[] = [
    { kind: MountOpKind.Mount, source: 'tmpfs', target: staging, fstype: 'tmpfs', flags: writableFlags(input.privileged), data: 'mode=0755' },
  ];
  if (input.source.kind === 'layers') {
    ops.push(
      ...input.source.driver.rootMountOps({
        lowerDirs: input.source.lowerDirs,
        ...(input.upper ? { layer: input.upper } : {}),
        stagingDir: staging,
        userns: input.userns,
        flags: writableFlags(input.privileged),
      }),
    );
    return ops;
  }
  ops.push({ kind: MountOpKind.EnterRoot, target: staging });
  for (const path of input.source.rootBinds) {
    ops.push({ kind: MountOpKind.BindInRoot, source: path, target: path, readonly: true, recursive: true, flags: MS_NODEV | MS_NOSUID, create: CreateKind.Dir });
  }
  for (const link of input.source.rootSymlinks) {
    ops.push({ kind: MountOpKind.SymlinkInRoot, source: link.target, target: link.path });
  }
  return ops;
}

function kernelFsOps(input: RootfsPlanInput): NativeMountOp[] {
  const dir = CreateKind.Dir;
  const ops: NativeMountOp[] = [
    { kind: MountOpKind.MountInRoot, source: 'proc', target: '/proc', fstype: 'proc', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, create: dir },
  ];
  if (input.privileged) {
    ops.push({ kind: MountOpKind.BindInRoot, source: '/dev', target: '/dev', recursive: true, create: dir });
  } else {
    ops.push({
      kind: MountOpKind.MountInRoot,
      source: 'tmpfs',
      target: '/dev',
      fstype: 'tmpfs',
      flags: MS_NOSUID | MS_NODEV | MS_STRICTATIME,
      data: 'mode=755,size=65536k',
      create: dir,
    });
    for (const name of DEFAULT_DEVICES) {
      ops.push({ kind: MountOpKind.BindInRoot, source: `/dev/${name}`, target: `/dev/${name}`, flags: MS_NOSUID | MS_NOEXEC, create: CreateKind.File });
    }
    ops.push(
      {
        kind: MountOpKind.MountInRoot,
        source: 'devpts',
        target: '/dev/pts',
        fstype: 'devpts',
        flags: MS_NOSUID | MS_NOEXEC,
        // gid=5 (tty) only where group 5 exists: in a user namespace it may be unmapped.
        data: input.userns ? 'newinstance,ptmxmode=0666,mode=0620' : 'newinstance,ptmxmode=0666,mode=0620,gid=5',
        create: dir,
      },
      { kind: MountOpKind.SymlinkInRoot, source: 'pts/ptmx', target: '/dev/ptmx' },
      {
        kind: MountOpKind.MountInRoot,
        source: 'shm',
        target: '/dev/shm',
        fstype: 'tmpfs',
        flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
        data: 'mode=1777,size=65536k',
        create: dir,
      },
      { kind: MountOpKind.MountInRoot, source: 'mqueue', target: '/dev/mqueue', fstype: 'mqueue', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, create: dir },
      { kind: MountOpKind.SymlinkInRoot, source: '/proc/self/fd', target: '/dev/fd' },
      { kind: MountOpKind.SymlinkInRoot, source: '/proc/self/fd/0', target: '/dev/stdin' },
      { kind: MountOpKind.SymlinkInRoot, source: '/proc/self/fd/1', target: '/dev/stdout' },
      { kind: MountOpKind.SymlinkInRoot, source: '/proc/self/fd/2', target: '/dev/stderr' },
    );
  }
  const sysFlags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (input.privileged ? 0 : MS_RDONLY);
  if (input.netns) {
    // A fresh sysfs shows only this network namespace's interfaces.
    ops.push({ kind: MountOpKind.MountInRoot, source: 'sysfs', target: '/sys', fstype: 'sysfs', flags: sysFlags, create: dir });
  } else {
    ops.push({ kind: MountOpKind.BindInRoot, source: '/sys', target: '/sys', recursive: true, readonly: !input.privileged, flags: sysFlags, create: dir });
  }
  if (input.netns && input.cgroupMounts.length > 0) ops.push(...cgroupOps(input));
  return ops;
}

function cgroupOps(input: RootfsPlanInput): NativeMountOp[] {
  const flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
  const ops: NativeMountOp[] = [];
  if (input.cgroupMounts.some((m) => m.fstype === 'cgroup')) {
    // v1: a tmpfs holds one mount point per hierarchy; it becomes read-only afterwards.
    ops.push({ kind: MountOpKind.MountInRoot, source: 'tmpfs', target: '/sys/fs/cgroup', fstype: 'tmpfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: 'mode=755' });
  }
  for (const m of input.cgroupMounts) {
    ops.push({ kind: MountOpKind.MountInRoot, source: 'cgroup', target: m.target, fstype: m.fstype, flags, ...(m.data ? { data: m.data } : {}), create: CreateKind.Dir });
  }
  if (input.cgroupMounts.some((m) => m.fstype === 'cgroup')) {
    ops.push({ kind: MountOpKind.RemountReadonlyInRoot, target: '/sys/fs/cgroup' });
  }
  return ops;
}

/**
 * Whether the mount namespace starts as a slave of the host's instead of private: only when a
 * bind asks for slave propagation (as Docker sets the rootfs propagation to rslave then).
 * Mounts made inside never reach the host either way.
 */
function slaveNamespace(mounts: MountSpec[]): boolean {
  return mounts.some((m) => m.type === 'bind' && (m.propagation === 'slave' || m.propagation === 'rslave'));
}

/** The mount(2) flags that set a bind's propagation once it is attached. */
function propagationFlags(p: BindPropagation | undefined, at: string): number {
  switch (p ?? 'rprivate') {
    case 'private':
      return MS_PRIVATE;
    case 'rprivate':
      return MS_PRIVATE | MS_REC;
    case 'slave':
      return MS_SLAVE;
    case 'rslave':
      return MS_SLAVE | MS_REC;
    default:
      // A shared bind must be a peer of the host's mount, which a namespace made private or
      // slave at its start can no longer join: the source would have to be cloned before that.
      throw new UnsupportedError(`${at}.propagation: "${p}" propagation is not supported yet (mounts made in the container cannot reach the host); use "rslave" to see host mounts`);
  }
}

function userMountOps(mounts: MountSpec[], privileged: boolean): NativeMountOp[] {
  const slave = slaveNamespace(mounts);
  return mounts.flatMap((m, i): NativeMountOp[] => {
    if (m.type === 'volume') {
      throw new ValidationError(
        `mounts[${i}]`,
        'a volume mount needs a Runtime to resolve it: use rt.run(source, cmd, options) (or a container), which turns volumes into mounts of their data directories',
      );
    }
    if (m.type === 'bind') {
      const bind: NativeMountOp = {
        kind: MountOpKind.BindInRoot,
        source: m.source,
        target: m.target,
        readonly: m.readonly === true,
        recursive: true,
        flags: writableFlags(privileged),
        // Filled in by the caller, which knows whether the source is a file or a directory.
        create: CreateKind.Dir,
      };
      const flags = propagationFlags(m.propagation, `mounts[${i}]`);
      // In a private namespace every clone is private already. In a slave one, set each bind's
      // own mode: the target is resolved in the root again, and mount(2) goes through the fd.
      if (!slave) return [bind];
      return [bind, { kind: MountOpKind.MountInRoot, source: 'none', target: m.target, fstype: '', flags, create: CreateKind.None }];
    }
    const data = [`mode=${(m.mode ?? 0o1777).toString(8)}`];
    if (m.size !== undefined) data.push(`size=${parseBytes(m.size, `mounts[${i}].size`)}`);
    return [{
      kind: MountOpKind.MountInRoot,
      source: 'tmpfs',
      target: m.target,
      fstype: 'tmpfs',
      flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
      data: data.join(','),
      create: CreateKind.Dir,
    }];
  });
}

/**
 * The whole mount plan, in the order the child runs it:
 * private propagation → staging tmpfs → root (overlay, or host binds) → /proc, /dev, /sys →
 * generated files → user mounts → masked and read-only paths → read-only root.
 * Masks come after user mounts so that a mount cannot uncover a masked path.
 */
export function planRootfs(input: RootfsPlanInput): NativeMountOp[] {
  const ops: NativeMountOp[] = [
    // Nothing we mount may propagate back to the host, and no host mount event may reach us
    // (unless a bind asks for slave propagation: then host events flow in, never out).
    { kind: MountOpKind.Mount, source: 'none', target: '/', fstype: '', flags: MS_REC | (slaveNamespace(input.mounts) ? MS_SLAVE : MS_PRIVATE) },
    ...rootOps(input),
    ...kernelFsOps(input),
  ];
  for (const d of input.dirs) ops.push({ kind: MountOpKind.MkdirInRoot, target: d.path, mode: d.mode });
  for (const t of input.tmpfs) {
    ops.push({
      kind: MountOpKind.MountInRoot,
      source: 'tmpfs',
      target: t.path,
      fstype: 'tmpfs',
      flags: MS_NOSUID | MS_NODEV,
      data: `mode=${t.mode.toString(8)}`,
      create: CreateKind.Dir,
    });
  }
  for (const b of input.readonlyBinds) {
    ops.push({
      kind: MountOpKind.BindInRoot,
      source: b.path,
      target: b.path,
      readonly: true,
      recursive: true,
      flags: MS_NOSUID | MS_NODEV,
      create: b.dir ? CreateKind.Dir : CreateKind.File,
    });
  }
  for (const link of input.symlinks) ops.push({ kind: MountOpKind.SymlinkInRoot, source: link.target, target: link.path });
  // A scratch image may have no /etc at all: make the parents of generated files first.
  const fileDirs = new Set(input.files.map((f) => f.path.slice(0, f.path.lastIndexOf('/')) || '/'));
  for (const dir of fileDirs) if (dir !== '/') ops.push({ kind: MountOpKind.MkdirInRoot, target: dir, mode: 0o755 });
  for (const f of input.files) ops.push({ kind: MountOpKind.WriteInRoot, target: f.path, content: f.content, mode: f.mode });
  if (input.workdir !== '/') ops.push({ kind: MountOpKind.MkdirInRoot, target: input.workdir, mode: 0o755 });
  ops.push(...userMountOps(input.mounts, input.privileged));
  if (!input.privileged) {
    for (const path of MASKED_PATHS) ops.push({ kind: MountOpKind.MaskInRoot, target: path });
    for (const path of READONLY_PATHS) ops.push({ kind: MountOpKind.ReadonlyInRoot, target: path });
  }
  if (input.readonlyRootfs) ops.push({ kind: MountOpKind.ReadonlyRoot, target: '/' });
  return ops;
}
