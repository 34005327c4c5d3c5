#include "spawn.h"

#include "clone3-vm.h"
#include "shared-mm-dumpable.h"
#include "mount-attr.h"
#include "spawn-io.h"
#include "netns-pool.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "netlink.h"
#include "raw-syscall.h"

namespace berth {
namespace {

constexpr size_t kChildStackSize = 256 * 1024;
// How long a container's own setup (mounts, pivot, credentials) may take before berth gives up.
constexpr int64_t kSetupDeadlineNs = 60LL * 1000 * 1000 * 1000;


// Sends descriptors to the child as `tag` messages (SCM_RIGHTS carries at most 253 a message).
bool SendTrees(int sock, char tag, const std::vector<int>& trees, const char* what, NativeError* error) {
  for (size_t at = 0; at < trees.size(); at += 250) {
    size_t n = std::min<size_t>(250, trees.size() - at);
    iovec iov{&tag, 1};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * n));
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), trees.data() + at, sizeof(int) * n);
    if (sendmsg(sock, &msg, 0) < 0) {
      SetError(error, errno, "sendmsg", what);
      return false;
    }
  }
  return true;
}

// Writes a child's id map with the setuid newuidmap/newgidmap (`helper <pid> <inside outside
// count>...`), which check the ranges against /etc/subuid and /etc/subgid. posix_spawn: this
// thread must not fork a copy of Node. Bounded: the helper is killed past a deadline.
bool RunIdMapHelper(const std::string& helper, int pid, const std::string& map, NativeError* error) {
  std::vector<std::string> args{helper, std::to_string(pid)};
  size_t at = 0;
  while (at < map.size()) {
    size_t end = map.find_first_of(" \n", at);
    if (end == std::string::npos) end = map.size();
    if (end > at) args.push_back(map.substr(at, end - at));
    at = end + 1;
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t child = -1;
  int err = posix_spawn(&child, helper.c_str(), &actions, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    SetError(error, err, "posix_spawn", helper);
    return false;
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  if (pidfd >= 0) {
    if (WaitReadable(pidfd, NowNs() + 10LL * 1000 * 1000 * 1000) == 0) kill(child, SIGKILL);
    close(pidfd);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    SetError(error, EPERM, "exec", helper);
    error->message = helper + " refused the id map (is it setuid root, and is the range in /etc/subuid and /etc/subgid?)";
    return false;
  }
  return true;
}

// In a user namespace the container's root is an unprivileged host id, so image layers owned by
// host root would be read-only and un-copy-up-able to it. Give the child idmapped clones of the
// overlay's lower dirs (created here, by host root, against the child's user namespace); it
// attaches them in its own mount namespace and builds the overlay from those.
bool SendIdmappedLayers(const LaunchSpec& spec, int pid, int sock, NativeError* error) {
  std::vector<int> trees;
  auto close_all = [&]() {
    for (int fd : trees) close(fd);
  };
  std::string ns_path = "/proc/" + std::to_string(pid) + "/ns/user";
  int userns = -1;
  for (const MountOp& op : spec.mounts) {
    if (op.kind != MountOpKind::kOverlay) continue;
    for (const std::string& lower : op.lower_dirs) {
      if (userns < 0) {
        userns = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (userns < 0) {
          SetError(error, errno, "open", ns_path);
          return false;
        }
      }
      int tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, lower.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
      if (tree < 0) {
        SetError(error, errno, "open_tree", lower);
        close(userns);
        close_all();
        return false;
      }
      trees.push_back(tree);
      mount_attr attr{};
      attr.attr_set = MOUNT_ATTR_IDMAP;
      attr.userns_fd = static_cast<uint64_t>(userns);
      if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
        SetError(error, errno, "mount_setattr(MOUNT_ATTR_IDMAP)", lower);
        error->message = "the filesystem holding the layers does not support idmapped mounts";
        close(userns);
        close_all();
        return false;
      }
    }
  }
  if (userns >= 0) close(userns);
  bool ok = SendTrees(sock, 'L', trees, "idmapped layers", error);
  close_all();
  return ok;
}

// Host paths a user-namespaced child must mount, opened here by host root as detached trees:
// the child runs as an unprivileged host id, which cannot even traverse the (0700) state dir
// to a container's persistent upper dir or a volume's data. 'U': the directory holding a
// persistent overlay's upper and work dirs; 'B': each bind source, in the order of the ops,
// with its mount flags already set (the child may not change flags on a tree it did not make).
bool SendHostTrees(const LaunchSpec& spec, int sock, NativeError* error) {
  std::vector<int> binds;
  auto close_all = [&]() {
    for (int fd : binds) close(fd);
  };
  for (const MountOp& op : spec.mounts) {
    if (op.kind == MountOpKind::kOverlay && !op.source.empty() && op.source[0] == '/' &&
        op.source.compare(0, op.target.rfind('/') + 1, op.target, 0, op.target.rfind('/') + 1) != 0) {
      std::string dir = op.source.substr(0, op.source.rfind('/'));
      if (op.data.substr(0, op.data.rfind('/')) != dir) {
        SetError(error, EINVAL, "overlay", op.data);
        error->message = "the upper and work dirs of a user-namespaced container must share a directory";
        close_all();
        return false;
      }
      int tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
      if (tree < 0) {
        SetError(error, errno, "open_tree", dir);
        close_all();
        return false;
      }
      bool ok = SendTrees(sock, 'U', {tree}, "upper dir", error);
      close(tree);
      if (!ok) {
        close_all();
        return false;
      }
    } else if (op.kind == MountOpKind::kBindInRoot) {
      int tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, op.source.c_str(),
                                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (op.recursive ? AT_RECURSIVE : 0)));
      if (tree < 0) {
        SetError(error, errno, "open_tree", op.source);
        close_all();
        return false;
      }
      binds.push_back(tree);
      mount_attr attr{};
      attr.attr_set = MountAttrFromFlags(op.flags, op.readonly);
      if (attr.attr_set != 0 &&
          syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (op.recursive ? AT_RECURSIVE : 0), &attr, sizeof(attr)) < 0) {
        SetError(error, errno, "mount_setattr", op.source);
        close_all();
        return false;
      }
    }
  }
  bool ok = SendTrees(sock, 'B', binds, "bind sources", error);
  close_all();
  return ok;
}

// The middle process of a launch into a held user namespace (CloneInUserns). Raw system
// calls only: it shares Node's memory and the calling thread's TLS (see raw-syscall.h).
struct JoinedClone {
  int userns_fd;
  clone_args* args;
  ChildContext* ctx;
  long result;
  const char* failed;
};

int JoinThenClone(void* p) {
  auto* j = static_cast<JoinedClone*>(p);
  long r = raw::Call(SYS_setns, j->userns_fd, CLONE_NEWUSER);
  if (r < 0) {
    j->result = r;
    j->failed = "setns(CLONE_NEWUSER)";
    return 0;
  }
  j->result = berth_clone3_vm(j->args, sizeof(clone_args), ChildMain, j->ctx);
  if (j->result < 0) j->failed = "clone3";
  return 0;
}

constexpr size_t kMiddleStackSize = 64 * 1024;

// Clones the container's first process inside the user namespace `userns_fd`. A Node thread
// cannot join a user namespace (setns refuses a multi-threaded caller), so a short-lived
// middle process does: it shares our memory and fd table (CLONE_VM | CLONE_FILES, so the pidfd
// lands in ours), joins the namespace, clones the child with CLONE_PARENT (the child is ours,
// to wait for and to signal, exactly as without it) and exits. CLONE_VFORK suspends this
// thread until then; setns and clone3 do not block. Returns the child's pid or -errno, and
// the syscall that failed in `failed`.
long CloneInUserns(int userns_fd, clone_args* args, ChildContext* ctx, const char** failed) {
  void* stack = mmap(nullptr, kMiddleStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    *failed = "mmap";
    return -errno;
  }
  // clone3 refuses an exit signal with CLONE_PARENT: the child inherits the middle process's
  // (SIGCHLD, below), as a child of ours always had.
  args->flags |= CLONE_PARENT;
  args->exit_signal = 0;
  JoinedClone j{userns_fd, args, ctx, -EINVAL, "clone3"};
  int middle = clone(JoinThenClone, static_cast<char*>(stack) + kMiddleStackSize, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &j);
  if (middle < 0) {
    int err = errno;
    munmap(stack, kMiddleStackSize);
    *failed = "clone";
    return -err;
  }
  int status = 0;
  while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  munmap(stack, kMiddleStackSize);
  *failed = j.failed;
  return j.result;
}

}  // namespace

SpawnResult Spawn(const LaunchSpec& spec, NativeError* error, const BeforeGo& before_go) {
  SpawnResult result;
  if (spec.join_pidfd >= 0) {
    SetError(error, EINVAL, "spawn", "join");
    error->message = "an exec into a running container goes through SpawnExec";
    return result;
  }
  const int64_t start_ns = NowNs();
  int64_t parent_marks[3] = {0, 0, 0};
  int child_stdio[3] = {-1, -1, -1};
  int sync[2] = {-1, -1};

  auto cleanup_fds = [&]() {
    for (int i = 0; i < 3; ++i) {
      CloseIf(child_stdio[i]);
      CloseIf(result.stdio[i]);
    }
    CloseIf(sync[0]);
    CloseIf(sync[1]);
  };

  if (!MakeStdio(spec, child_stdio, result.stdio, error)) {
    cleanup_fds();
    return result;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
    SetError(error, errno, "socketpair", "");
    cleanup_fds();
    return result;
  }

  // argv/envp arrays must exist before clone: the child may not allocate.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& v : spec.env) envp.push_back(const_cast<char*>(v.c_str()));
  envp.push_back(nullptr);

  // The child may not allocate: the process part of the spec is laid out as pointers first.
  std::vector<const char*> candidates;
  ProcessSpec process{};
  FillProcessSpec(spec, &process, &candidates);

  ChildContext ctx{};
  ctx.spec = &spec;
  ctx.process_spec = &process;
  ctx.sync_fd = sync[1];
  for (int i = 0; i < 3; ++i) ctx.stdio_fds[i] = child_stdio[i];
  ctx.argv = argv.data();
  ctx.envp = envp.data();
  ctx.trace = spec.trace;
  ctx.trace_start_ns = start_ns;

  void* stack = mmap(nullptr, kChildStackSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    SetError(error, errno, "mmap", "child stack");
    cleanup_fds();
    return result;
  }

  // Until the child has exec'd or died (every return below), it runs on our memory, and its
  // switch to the container's user makes that memory undumpable: the window puts it back.
  SharedMmWindow shared_mm;
  // Block every signal across clone(): the child starts with Node's handlers installed and
  // shares Node's memory, so it must not run a handler before it has reset them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  // CLONE_VM without CLONE_VFORK: no page-table copy of the (large) Node process, and this
  // thread stays free to write id maps and cgroup files while the child waits for "go".
  int clone_flags = spec.clone_flags;
  // Network "none" (a new, empty namespace with loopback): take one made ahead of time. Not
  // with a user namespace (the netns must belong to it) nor with interfaces to set up (that
  // code configures the child's own netns before "go").
  int pooled_netns = -1;
  if ((clone_flags & CLONE_NEWNET) && !(clone_flags & CLONE_NEWUSER) && spec.interfaces.empty() &&
      spec.netns_fd < 0) {
    pooled_netns = TakePooledNetns();
    if (pooled_netns >= 0) clone_flags &= ~CLONE_NEWNET;
  }
  ctx.pooled_netns_fd = pooled_netns;
  // A held user namespace (lib/rootless/held-userns.ts): the child is born inside it rather
  // than in a new one, so there are no maps to write.
  const bool join_userns = spec.userns_fd >= 0;
  if (join_userns) clone_flags &= ~CLONE_NEWUSER;
  int flags = CLONE_VM | CLONE_PIDFD | clone_flags | SIGCHLD;
  int pid = -1;
  int clone_errno = 0;
  const char* clone_syscall = "clone";
  bool in_cgroup = false;
  int cgroup_fd = spec.cgroup_dir.empty() ? -1 : open(spec.cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (int attempt = 0; attempt < 2 && pid < 0 && clone_errno == 0; ++attempt) {
    const bool into_cgroup = attempt == 0 && cgroup_fd >= 0;
    if (!into_cgroup && !join_userns) break;  // the plain clone() below
    clone_args args{};
    args.flags = static_cast<uint64_t>(CLONE_VM | CLONE_PIDFD | clone_flags) | (into_cgroup ? CLONE_INTO_CGROUP : 0);
    args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    args.stack = reinterpret_cast<uint64_t>(stack);
    args.stack_size = kChildStackSize;
    if (into_cgroup) args.cgroup = static_cast<uint64_t>(cgroup_fd);
    long r = join_userns ? CloneInUserns(spec.userns_fd, &args, &ctx, &clone_syscall) : berth_clone3_vm(&args, sizeof(args), ChildMain, &ctx);
    if (r >= 0) {
      pid = static_cast<int>(r);
      in_cgroup = into_cgroup;
    } else if (!into_cgroup || (r != -ENOSYS && r != -E2BIG && r != -EINVAL && r != -EOPNOTSUPP)) {
      clone_errno = static_cast<int>(-r);
    }
    // Kernels without clone3 or CLONE_INTO_CGROUP fall through to a clone + cgroup.procs.
  }
  if (cgroup_fd >= 0) close(cgroup_fd);
  if (pid < 0 && clone_errno == 0 && !join_userns) {
    pid = clone(ChildMain, static_cast<char*>(stack) + kChildStackSize, flags, &ctx, &pidfd);
    clone_errno = errno;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  for (int i = 0; i < 3; ++i) CloseIf(child_stdio[i]);
  CloseIf(sync[1]);
  // The child has its own copy of the pooled netns fd (clone copied the fd table).
  CloseIf(pooled_netns);
  parent_marks[0] = NowNs() - start_ns;

  if (pid < 0) {
    munmap(stack, kChildStackSize);
    SetError(error, clone_errno, clone_syscall, join_userns ? "held user namespace" : "");
    if (join_userns && clone_errno == EPERM) {
      error->message = "could not join the runtime's user namespace (its holder belongs to another user?)";
    } else if (clone_errno == EINVAL || clone_errno == EPERM) {
      error->message = "the kernel refused the namespaces berth asked for";
    }
    cleanup_fds();
    return result;
  }

  auto abort_child = [&]() {
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    CloseIf(sync[0]);  // the child sees EOF if it is still waiting for "go"
    Reap(pidfd);
    close(pidfd);
    munmap(stack, kChildStackSize);
    cleanup_fds();
  };

  std::string proc = "/proc/" + std::to_string(pid) + "/";
  if (!spec.uid_map.empty() && !join_userns) {
    bool mapped;
    if (!spec.newuidmap.empty()) {
      mapped = RunIdMapHelper(spec.newuidmap, pid, spec.uid_map, error) && RunIdMapHelper(spec.newgidmap, pid, spec.gid_map, error);
    } else {
      // An unprivileged process may write a gid map only once setgroups is denied (user_namespaces(7)).
      mapped = (!spec.unprivileged || WriteKernelFile(proc + "setgroups", "deny", error)) &&
               WriteKernelFile(proc + "uid_map", spec.uid_map, error) && WriteKernelFile(proc + "gid_map", spec.gid_map, error);
    }
    if (!mapped) {
      abort_child();
      return result;
    }
  }
  std::string pid_text = std::to_string(pid);
  // Born in its cgroup (clone3): no migration, so no wait on the threadgroup rwsem.
  for (const auto& procs : in_cgroup ? std::vector<std::string>{} : spec.cgroup_procs) {
    if (!WriteKernelFile(procs, pid_text, error)) {
      abort_child();
      return result;
    }
  }
  // Interfaces exist and are configured before "go": the container's first instruction
  // already sees its network.
  if (!SetupContainerNetwork(pid, spec, error)) {
    abort_child();
    return result;
  }
  if (!spec.uid_map.empty() && !spec.unprivileged && !join_userns && (!SendIdmappedLayers(spec, pid, sync[0], error) || !SendHostTrees(spec, sync[0], error))) {
    abort_child();
    return result;
  }
  if (before_go && !before_go(pid, error)) {
    abort_child();
    return result;
  }
  parent_marks[1] = NowNs() - start_ns;
  char go = 'G';
  if (write(sync[0], &go, 1) != 1) {
    SetError(error, errno, "write", "sync socket");
    abort_child();
    return result;
  }

  // Until exec the child may send the tty master ('T' + fd) and/or one failure report. EOF
  // means the sync socket was closed by execve (it is CLOEXEC), or that the child died.
  // Nothing but berth's own setup runs in the child until then (it is PID 1 of namespaces
  // nobody else has entered), but the wait still has a deadline: a worker thread must never
  // block without bound.
  ChildReport report{};
  bool reported = false;
  const int64_t deadline = NowNs() + kSetupDeadlineNs;
  for (;;) {
    int ready = WaitReadable(sync[0], deadline);
    if (ready == 0) {
      SetError(error, ETIMEDOUT, "spawn", "container setup");
      error->message = "the container's setup did not finish within 60 s; it was killed";
      CloseIf(result.tty_master);
      abort_child();
      return result;
    }
    union {
      ChildReport report;
      char tag;
    } msg{};
    int fds[2] = {-1, -1};
    ssize_t r = ReceiveMessage(sync[0], &msg, sizeof(msg), fds);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) break;
    if (fds[0] >= 0 && msg.tag == 'T' && result.tty_master < 0) {
      result.tty_master = fds[0];
    } else {
      if (r == static_cast<ssize_t>(sizeof(ChildReport)) && !reported) {
        report = msg.report;
        reported = true;
      }
      CloseIf(fds[0]);
    }
    CloseIf(fds[1]);
  }
  CloseIf(sync[0]);

  if (reported) {
    if (pidfd >= 0) {
      Reap(pidfd);
      close(pidfd);
    }
    munmap(stack, kChildStackSize);
    if (report.kind == ChildReportKind::kSetupError) {
      SetError(error, report.err, report.syscall, report.path);
      CloseIf(result.tty_master);
      cleanup_fds();
      return result;
    }
    // Exec failure: keep the pipes (nothing will be written) and let TypeScript report 127/126.
    error->not_found = report.kind == ChildReportKind::kNotFound;
    error->err = report.err;
    error->syscall = report.syscall;
    error->path = report.path;
    result.exec_failed = true;
    result.pid = pid;
    return result;
  }
  parent_marks[2] = NowNs() - start_ns;
  if (spec.trace) {
    for (int i = 0; i < kTraceExec; ++i) result.trace.push_back(ctx.trace_ns[i] / 1e6);
    for (int64_t m : parent_marks) result.trace.push_back(m / 1e6);
  }
  // The child has exec'd (or died and will be reported by the exit watcher): our stack copy
  // is no longer in use.
  munmap(stack, kChildStackSize);
  result.pid = pid;
  result.pidfd = pidfd;
  return result;
}

}  // namespace berth
