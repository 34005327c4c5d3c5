/**
 * Where berth nests its `berth/` parent in one mounted cgroup hierarchy, and whether it can.
 *
 * On a bare host the mount shows the root of the hierarchy and berth nests at its top, as
 * Docker nests `/docker`. Inside a container the mount shows only the container's own cgroup:
 * runc and containerd bind-mount the container's subtree on v1 (mountinfo root
 * `/docker/<id>`), and a private cgroup namespace shows its root as `/`. Nesting there puts
 * every sandbox under the container's (the pod's) limits. What is never right is a tree that
 * does not contain berth's own cgroup: the host's `/sys/fs/cgroup` bind-mounted into a
 * container in a private cgroup namespace shows up with a root of `/../..`, and creating
 * `berth/` at its top would escape the container's cgroup and share the host's. Such a mount,
 * and a read-only one (a container engine's default), are reported, never written.
 * @module
 */
import { join, posix } from 'node:path';
import { UnsupportedError } from '../errors.js';
import type { MountEntry } from './probe.js';

/**
 * Berth may not create cgroups where it would (a read-only cgroupfs, a tree that does not
 * contain its own cgroup). A launch under `limits: 'best-effort'` runs without a cgroup on it,
 * as on any other refusal of a cgroup directory; `.reason` and `.fix` say why and what to change.
 */
export class CgroupUnavailableError extends UnsupportedError {
  /** Why berth cannot create cgroups here. */
  readonly reason: string;
  /** The change that would let it. */
  readonly fix: string;

  constructor(reason: string, fix: string, path: string) {
    super(`${reason}. Fix: ${fix}`, { path });
    this.reason = reason;
    this.fix = fix;
  }
}

/** Where berth's `berth/` parent goes in one hierarchy, or why berth cannot create cgroups there. */
export interface CgroupPlacement {
  /** The directory that holds `berth/`: the mount point, or a cgroup below it (see {@link placeInMount}). */
  readonly base: string;
  /** Why berth cannot create cgroups in this hierarchy; absent when it can. */
  readonly problem?: string;
  /** What would let it, when there is a `problem`. */
  readonly fix?: string;
  /** The mount (or its filesystem) is read-only. */
  readonly readOnly: boolean;
}

/** The docs page that explains the settings a container needs for berth. */
const DEPLOY_DOC = 'docs/deploy-kubernetes.md';

/**
 * True when cgroup `path` is `root` or below it (both absolute cgroup paths, as the kernel
 * shows them relative to this process's cgroup namespace). A path the kernel shows with a
 * leading `/..` lies outside the namespace's root, so below no root this process can see.
 */
export function cgroupWithin(path: string, root: string): boolean {
  if (path === '/..' || path.startsWith('/../')) return false;
  return root === '/' || path === root || path.startsWith(`${root}/`);
}

/**
 * Place berth's parent in the hierarchy mounted at `mount`.
 *
 * @param mount the hierarchy's mount (its `root` is the cgroup shown at the mount point).
 * @param own this process's cgroup in the hierarchy (`/proc/self/cgroup`), when known.
 * @param pid1 the cgroup of PID 1 of this process's PID namespace, when known and wanted.
 *   On v1 a container in the host's cgroup namespace may see the whole tree (`-v
 *   /sys/fs/cgroup:/sys/fs/cgroup`, the classic Docker-in-Docker recipe): the mount root is
 *   `/` and berth's own cgroup is `/docker/<id>`. The container's cgroup is then the one its
 *   PID 1 lives in, when berth's own cgroup is inside it; on a bare host PID 1 sits at the
 *   root and nothing changes. v2 callers leave it out: a v2 cgroup that holds processes (the
 *   container's PID 1) cannot enable controllers for children, so a v2 base must stay the
 *   namespace's root.
 */
export function placeInMount(mount: MountEntry, own: string | undefined, pid1?: string): CgroupPlacement {
  const readOnly = mount.mountOptions.includes('ro') || mount.superOptions.includes('ro');
  const what = mount.fsType === 'cgroup2' ? 'cgroup2 filesystem' : `cgroup v1 hierarchy (${mount.superOptions.filter((o) => o !== 'rw' && o !== 'ro').join(',')})`;
  if (mount.root.startsWith('/..') || (own !== undefined && !cgroupWithin(own, mount.root))) {
    const shown = mount.root.startsWith('/..') ? `${mount.root} (a cgroup outside this process's cgroup namespace)` : mount.root;
    return {
      base: mount.mountPoint,
      readOnly,
      problem:
        `the ${what} at ${mount.mountPoint} shows cgroup ${shown}, which does not contain this process's own cgroup${own === undefined ? '' : ` (${own})`}: ` +
        `berth's cgroups would land outside its container's (the host's /sys/fs/cgroup bind-mounted into a container)`,
      fix: `let the container engine mount the container's own cgroup instead (Docker: no -v /sys/fs/cgroup, --cgroupns private; see ${DEPLOY_DOC})`,
    };
  }
  let base = mount.mountPoint;
  if (pid1 !== undefined && own !== undefined && pid1 !== mount.root && cgroupWithin(pid1, mount.root) && cgroupWithin(own, pid1)) {
    base = join(mount.mountPoint, posix.relative(mount.root, pid1));
  }
  if (readOnly) {
    return {
      base,
      readOnly,
      problem: `the ${what} at ${mount.mountPoint} is mounted read-only (a container engine's default), so berth cannot create cgroups for its containers' limits`,
      fix:
        `give this container a writable cgroup filesystem: Kubernetes securityContext.privileged: true; Docker --privileged, or --cgroupns private with CAP_SYS_ADMIN ` +
        `and mount -o remount,bind,rw ${mount.mountPoint} (see ${DEPLOY_DOC})`,
    };
  }
  return { base, readOnly };
}
