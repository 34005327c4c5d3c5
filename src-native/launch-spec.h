// The fully resolved plan for one container process, as plain data.
//
// TypeScript decides *what* (lib/launch/launch-plan.ts builds it) and encodes it
// (lib/native/spec-codec.ts); spec-codec.cc decodes the bytes into this struct on the main
// thread, before clone(), because the child may not allocate. The child only reads it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "process-setup.h"

namespace berth {

enum class MountOpKind : int {
  // mount(2) with host-absolute paths, done before the root is opened (e.g. the tmpfs that
  // holds the overlay upper dir, the overlay itself).
  kMount = 0,
  // mkdir with a host-absolute path (inside a tmpfs that only this mount namespace sees).
  kMkdirHost = 1,
  // Open `target` (host-absolute) as the container root; every later *InRoot op resolves its
  // path inside this root with openat2(RESOLVE_IN_ROOT), so a symlink in the image can never
  // send a mount onto a host path (CVE-2021-30465 class).
  kEnterRoot = 2,
  kMountInRoot = 3,   // new filesystem (proc, sysfs, tmpfs, devpts, mqueue, cgroup) on a path in the root
  kBindInRoot = 4,    // bind a host path (open_tree) onto a path in the root
  kMkdirInRoot = 5,
  kSymlinkInRoot = 6,
  // 7 was kMknodInRoot, which nothing emitted; the number stays unused.
  kWriteInRoot = 8,   // create a file with `content`
  kMaskInRoot = 9,    // hide: /dev/null over a file, an empty read-only tmpfs over a dir
  kReadonlyInRoot = 10,  // bind a path in the root onto itself, read-only, recursively
  kReadonlyRoot = 11,    // make the root mount itself read-only (readonlyRootfs)
  kRemountReadonlyInRoot = 12,  // make the mount at a path read-only (no new bind: the mount we made there)
  // An overlay at a host-absolute `target` from `lower_dirs` (top first), upper `source`,
  // work dir `data`. Built with fsopen/fsconfig("lowerdir+") so that neither the page-size
  // limit of mount(2)'s option string (images with 100+ layers) nor ':' and ',' in paths
  // matter.
  kOverlay = 13,
  // Write `content` into an existing file at a host-absolute path: no create, no truncate, no
  // symlink at the end. For the sysctls of the container's own namespaces, which the kernel
  // resolves by the writer's namespaces (/proc/sys/net/... is per network namespace of the
  // process that opens it), so the child writes them after it is in its netns and before
  // pivot_root, while /proc/sys is still writable. Runs wherever the plan puts it.
  kWriteHost = 14,
  // Attach a detached mount tree the launching process holds (decimal descriptor in `source`,
  // inherited through clone) at a host-absolute `target`, after setting `flags`/`readonly` on
  // it: the root of a rootless fuse-overlayfs, mounted by `berth-helper fuse-root` in another
  // mount namespace of the same user namespace (fuse-root.h).
  kMoveTree = 15,
};

enum class CreateKind : int { kNone = 0, kDir = 1, kFile = 2 };

struct MountOp {
  MountOpKind kind = MountOpKind::kMount;
  std::string source;
  std::string target;
  std::string fstype;
  std::string data;
  std::string content;
  std::vector<std::string> lower_dirs;
  unsigned long flags = 0;
  uint32_t mode = 0;
  bool readonly = false;
  bool recursive = false;
  bool optional = false;  // ENOENT on the target is not an error (masked paths)
  CreateKind create = CreateKind::kNone;
};

// One layout for the spec and for the process setup, which reads the vector's data in place.
using Rlimit = ProcessRlimit;

enum class StdioMode : int { kNull = 0, kPipe = 1, kInheritFd = 2 };

struct StdioSpec {
  StdioMode mode = StdioMode::kNull;
  int fd = -1;  // for kInheritFd: a fd of the Node process to give the container as-is
};

// One network interface of a container: a veth pair whose host end joins `bridge` and whose
// peer is created inside the container's network namespace as `ifname` (lib/network/ plans it;
// src-native/netlink.cc builds it between clone() and "go").
struct NetInterface {
  std::string host_ifname;             // the host end, e.g. "bv-1a2b3c4d5e6f"
  std::string bridge;                  // the bridge the host end joins
  std::string ifname;                  // the name inside the container ("eth0")
  std::vector<std::string> addresses;  // CIDR ("172.18.0.2/16")
  std::string gateway;                 // default route via this address; "" for none (internal)
  uint32_t mtu = 0;                    // 0: the kernel's default (1500)
  std::string mac;                     // "02:42:ac:12:00:02"; "" lets the kernel pick
  std::string alias;                   // IFLA_IFALIAS of the host end: reconciliation finds it by this
  bool hairpin = true;                 // bridge port hairpin mode: a container reaches its own published ports
};

struct LaunchSpec {
  // CLONE_NEW* flags for clone(); the cgroup namespace is unshared later, once the child is
  // inside its cgroup, so that the namespace's root is the container's own cgroup.
  int clone_flags = 0;
  bool new_cgroup_ns = false;
  std::string uid_map;  // "inside outside count\n..." — written by the parent
  std::string gid_map;
  // Rootless: the setuid helpers that write a map with subordinate ids (Debian `uidmap`); empty:
  // the parent writes the map itself (root, or an unprivileged single-id map).
  std::string newuidmap;
  std::string newgidmap;
  // The caller is not root: it cannot make idmapped clones or detached trees for the child (the
  // child, root of a namespace the caller owns, mounts the caller's own paths itself), and a
  // map it writes itself needs setgroups "deny" first.
  bool unprivileged = false;
  // Rootless with a held user namespace (lib/rootless/held-userns.ts): a descriptor of it. The
  // child is created inside it (CloneInUserns in spawn.cc) instead of in a new one: no maps are
  // written per launch. `clone_flags` still say CLONE_NEWUSER (the container has a user
  // namespace, just not a fresh one). `userns_setgroups_denied`: its map is a single-id one, so
  // setgroups(2) is refused there and the child keeps the groups it has.
  int userns_fd = -1;
  bool userns_setgroups_denied = false;
  std::vector<std::string> cgroup_procs;  // the parent writes the child's pid into each
  // cgroup v2: the container's cgroup directory. The child is cloned straight into it
  // (clone3 CLONE_INTO_CGROUP) and `cgroup_procs` is only the fallback for kernels without it.
  std::string cgroup_dir;
  // Exec into a running container: a pidfd of its PID 1 and the CLONE_NEW* flags to join.
  // With it, `mounts` is empty and the child setns()es instead of creating namespaces.
  int join_pidfd = -1;
  int join_namespaces = 0;
  // The sealed berth-exec memfd that performs the join (spawn-exec.cc): no process of Node's
  // ever enters a container's namespaces.
  int join_helper_fd = -1;

  std::vector<MountOp> mounts;
  std::string hostname;
  bool loopback_up = false;

  std::vector<Rlimit> rlimits;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;
  uint64_t cap_bounding = 0;
  uint64_t cap_effective = 0;
  uint64_t cap_permitted = 0;
  uint64_t cap_inheritable = 0;
  uint64_t cap_ambient = 0;
  bool no_new_privs = true;
  std::string seccomp;  // raw struct sock_filter[]; empty = unconfined
  bool die_with_parent = true;
  int oom_score_adj = 0;
  bool set_oom_score_adj = false;

  std::string cwd;
  std::vector<std::string> argv;   // what the process sees as argv
  std::vector<std::string> env;    // "K=V"
  // Absolute paths (inside the container) to try in order, PATH already applied; the first
  // that execve() accepts wins. ENOENT everywhere means "not found" (exit 127).
  std::vector<std::string> exec_candidates;
  int exec_fd = -1;  // if >= 0: execveat(exec_fd) instead (the sealed init helper)

  StdioSpec stdio[3];
  bool trace = false;  // record setup timings (SpawnResult::trace)
  bool tty = false;
  uint16_t tty_rows = 24;
  uint16_t tty_cols = 80;

  // Created by the parent after the cgroup join, before "go" (SetupContainerNetwork).
  std::vector<NetInterface> interfaces;
  // `network: 'container:<id>'`: a descriptor of that container's network namespace, which the
  // child joins (setns) right after "go"; clone_flags then lack CLONE_NEWNET.
  int netns_fd = -1;
  // A user network's embedded resolver (dns-protocol.h): its abstract socket name and the
  // hand-over text. Empty: no resolver (the default bridge, `none`, `container:`).
  std::string dns_control;
  std::string dns_message;
};

}  // namespace berth
