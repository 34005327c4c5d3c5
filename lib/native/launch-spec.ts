/**
 * The launch spec: the plain data `spawn` takes, mirrored from src-native/launch-spec.h and
 * encoded by ./spec-codec.ts. Part of the native contract (re-exported by lib/native.ts).
 * @internal
 * @module
 */

/** Kinds of mount operation, mirrored from src-native/launch-spec.h. */
export enum MountOpKind {
  Mount = 0,
  MkdirHost = 1,
  EnterRoot = 2,
  MountInRoot = 3,
  BindInRoot = 4,
  MkdirInRoot = 5,
  SymlinkInRoot = 6,
  // 7 was MknodInRoot, which nothing emitted; the number stays unused.
  WriteInRoot = 8,
  MaskInRoot = 9,
  ReadonlyInRoot = 10,
  ReadonlyRoot = 11,
  RemountReadonlyInRoot = 12,
  Overlay = 13,
  /** Write `content` into an existing host-absolute file (a sysctl of the container's own netns). */
  WriteHost = 14,
  /** Attach the detached mount tree whose descriptor (decimal, held by the launching process) is `source` at `target`. */
  MoveTree = 15,
}

export enum CreateKind {
  None = 0,
  Dir = 1,
  File = 2,
}

export enum StdioMode {
  Null = 0,
  Pipe = 1,
  InheritFd = 2,
}

export interface NativeMountOp {
  kind: MountOpKind;
  target: string;
  source?: string;
  fstype?: string;
  data?: string;
  content?: string | Buffer;
  /** Overlay: the lower layers, top first. */
  lowerDirs?: string[];
  flags?: number;
  mode?: number;
  readonly?: boolean;
  recursive?: boolean;
  optional?: boolean;
  create?: CreateKind;
}

/**
 * One network interface of a container (src-native/launch-spec.h `NetInterface`): a veth pair
 * whose host end joins `bridge` and whose peer is created inside the container's network
 * namespace as `ifname`, configured before the container runs (planned by lib/network/).
 */
export interface NativeNetInterface {
  /** The host end (at most 15 bytes), e.g. `bv-1a2b3c4d5e6f`. */
  hostIfname: string;
  bridge: string;
  /** The name inside the container (`eth0`). */
  ifname: string;
  /** CIDR, e.g. `172.18.0.2/16`. */
  addresses: string[];
  /** Default route via this address; absent for none (internal networks, secondary networks). */
  gateway?: string;
  /** 0 or absent: the kernel's default. */
  mtu?: number;
  /** `02:42:ac:12:00:02`; absent: the kernel picks one. */
  mac?: string;
  /** IFLA_IFALIAS of the host end: how reconciliation recognises it. */
  alias?: string;
  /** Bridge-port hairpin mode (a container reaching its own published port). Default true. */
  hairpin?: boolean;
}

/** A fully resolved launch: what the child does between clone() and execve(), in order. */
export interface NativeLaunchSpec {
  cloneFlags: number;
  newCgroupNs: boolean;
  uidMap?: string;
  gidMap?: string;
  /**
   * Rootless with subordinate ids: the setuid helpers that write `uidMap`/`gidMap`
   * (`newuidmap <pid> <inside outside count>...`). Absent: the parent writes the maps itself.
   */
  idMapHelpers?: { newuidmap: string; newgidmap: string };
  /**
   * The caller is not root: a map it writes itself is preceded by setgroups `deny` (and the
   * child then leaves its supplementary groups alone), and the parent makes no idmapped or
   * detached mount trees for the child, which mounts the caller's own paths itself.
   */
  unprivileged?: boolean;
  /**
   * Rootless: a descriptor of the runtime's held user namespace (lib/rootless/held-userns.ts).
   * The child is created inside it instead of a new one, so no map is written per launch;
   * `cloneFlags` keep CLONE_NEWUSER, `idMapHelpers` must be absent. `setgroupsDenied`: its map
   * is a single-id one (the child keeps its supplementary groups).
   */
  joinUserns?: { fd: number; setgroupsDenied: boolean };
  cgroupProcs: string[];
  /** cgroup v2: clone the child straight into this directory (CLONE_INTO_CGROUP). */
  cgroupDir?: string;
  /**
   * Exec into a running container: join the namespaces of `pidfd`'s process instead of
   * creating new ones. `helperFd` is the sealed berth-exec that performs the join, so that no
   * process sharing Node's memory ever enters the container (src-native/spawn-exec.cc).
   */
  join?: { pidfd: number; namespaces: number; helperFd: number };
  mounts: NativeMountOp[];
  hostname?: string;
  loopbackUp: boolean;
  rlimits: Array<{ resource: number; soft: bigint; hard: bigint }>;
  uid: number;
  gid: number;
  groups: number[];
  capabilities: { bounding: bigint; effective: bigint; permitted: bigint; inheritable: bigint; ambient: bigint };
  noNewPrivileges: boolean;
  seccomp?: Buffer | null;
  dieWithParent: boolean;
  oomScoreAdj?: number;
  cwd: string;
  argv: string[];
  env: string[];
  execCandidates: string[];
  execFd: number;
  stdio: [{ mode: StdioMode; fd?: number }, { mode: StdioMode; fd?: number }, { mode: StdioMode; fd?: number }];
  tty: boolean;
  /** Record setup timings into {@link NativeSpawnResult.trace} (profiling). */
  trace?: boolean;
  ttyRows?: number;
  ttyCols?: number;
  /** Created and configured by the parent after the cgroup join, before the child runs on. */
  interfaces?: NativeNetInterface[];
  /** `network: 'container:<id>'`: an fd of that container's network namespace, joined by the child (no CLONE_NEWNET then). */
  netnsFd?: number;
  /** A user network's embedded resolver: the member's socket is handed to it before "go" (src-native/dns-protocol.h). */
  dns?: { control: string; message: string };
}
