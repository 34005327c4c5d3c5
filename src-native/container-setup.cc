// Child side of a launch: runs in a process cloned with CLONE_VM from a Node thread.
//
// Rules for everything in this file (see raw-syscall.h for why):
//  - no libc calls that touch errno, locks or the heap: only berth::raw syscalls;
//  - no allocation: buffers live on this child's own stack, data comes from LaunchSpec;
//  - every failure is reported to the parent as a ChildReport, then the child exits.
#include "container-setup.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>

#include <cstddef>
#include <cstring>

#include "mount-attr.h"
#include "raw-syscall.h"
#include "raw-text.h"

// <sys/mount.h> clashes with <linux/mount.h> on glibc 2.36, so define the one flag we need.
#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace berth {
namespace {

using raw::Call;

using raw::AppendUint;
using raw::Copy;
using raw::Len;

// "/proc/self/fd/<fd>": how mount(2) is pointed at an fd we resolved safely.
void FdPath(char* buf, int fd) {
  const char prefix[] = "/proc/self/fd/";
  size_t n = sizeof(prefix) - 1;
  for (size_t i = 0; i < n; ++i) buf[i] = prefix[i];
  AppendUint(buf + n, static_cast<unsigned>(fd));
}

constexpr int kMaxLayers = 2048;

struct Child {
  ChildContext* ctx;
  const LaunchSpec* spec;
  int root_fd = -1;
  // Idmapped clones of the overlay's lower dirs, sent by the parent in a user namespace.
  int layer_fds[kMaxLayers]{};
  int layer_count = 0;
  // In a user namespace the parent opens what lies on host paths (SendHostTrees in spawn.cc):
  // the directory of a persistent upper dir, and every bind source in the order of the ops.
  int upper_tree_fd = -1;
  int bind_fds[kMaxLayers]{};
  int bind_count = 0;
  int next_bind = 0;
  bool host_trees = false;
  // Where the upper tree is attached, and the upper and work dirs inside it.
  char upper_path[4096]{};
  char work_path[4096]{};

  // clock_gettime through the vDSO reads a shared page and, on success, touches no errno.
  void Mark(TraceStage stage) {
    if (!ctx->trace) return;
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ctx->trace_ns[stage] = ts.tv_sec * 1000000000LL + ts.tv_nsec - ctx->trace_start_ns;
  }

  [[noreturn]] void Fail(long neg_errno, const char* syscall, const char* path) {
    ReportAndExit(ctx->sync_fd, ChildReportKind::kSetupError, neg_errno, syscall, path);
  }

  long Check(long ret, const char* syscall, const char* path) {
    if (ret < 0) Fail(ret, syscall, path);
    return ret;
  }

  // ---- path resolution confined to the container root ----------------------------------

  long OpenInRoot(const char* path, long flags, bool follow = true) {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    if (!follow) how.flags |= O_NOFOLLOW;
    return Call(SYS_openat2, root_fd, path, &how, sizeof(how));
  }

  // Splits "/a/b/c" into the parent "/a/b" (written to buf) and returns the last component.
  static const char* SplitParent(const char* path, char* parent_buf, size_t cap) {
    size_t n = Len(path);
    while (n > 1 && path[n - 1] == '/') --n;
    size_t slash = n;
    while (slash > 0 && path[slash - 1] != '/') --slash;
    size_t plen = slash > 1 ? slash - 1 : 1;
    if (plen + 1 > cap) plen = cap - 1;
    for (size_t i = 0; i < plen; ++i) parent_buf[i] = path[i];
    parent_buf[plen] = '\0';
    if (slash == 0) Copy(parent_buf, cap, "/");
    return path + slash;
  }

  // mkdir -p inside the root: each component is created relative to an fd of its parent that
  // was itself resolved inside the root, so no symlink can lead the creation outside.
  void MkdirAllInRoot(const char* path, uint32_t mode) {
    char prefix[4096];
    size_t n = Len(path);
    if (n >= sizeof(prefix)) Fail(-ENAMETOOLONG, "mkdirat", path);
    size_t i = 0;
    while (i < n) {
      while (i < n && path[i] == '/') ++i;
      size_t start = i;
      while (i < n && path[i] != '/') ++i;
      if (i == start) break;
      // parent = path[0..start-1]
      for (size_t k = 0; k < start; ++k) prefix[k] = path[k];
      prefix[start == 0 ? 0 : start] = '\0';
      if (start == 0) Copy(prefix, sizeof(prefix), "/");
      char name[256];
      size_t nl = i - start;
      if (nl >= sizeof(name)) Fail(-ENAMETOOLONG, "mkdirat", path);
      for (size_t k = 0; k < nl; ++k) name[k] = path[start + k];
      name[nl] = '\0';
      long parent = OpenInRoot(prefix, O_PATH | O_DIRECTORY);
      if (parent < 0) Fail(parent, "openat2", prefix);
      long r = Call(SYS_mkdirat, static_cast<int>(parent), name, mode);
      raw::Close(static_cast<int>(parent));
      if (r < 0 && r != -EEXIST) Fail(r, "mkdirat", path);
    }
  }

  long OpenParentInRoot(const char* path, const char** base) {
    char parent[4096];
    *base = SplitParent(path, parent, sizeof(parent));
    long fd = OpenInRoot(parent, O_PATH | O_DIRECTORY);
    if (fd < 0) Fail(fd, "openat2", parent);
    return fd;
  }

  // Returns an O_PATH fd for a mount target, creating it (as a dir or an empty file) when the
  // op asks for it.
  long MountTarget(const MountOp& op) {
    const char* path = op.target.c_str();
    long fd = OpenInRoot(path, O_PATH);
    if (fd >= 0 || op.create == CreateKind::kNone) {
      if (fd == -ENOENT && op.optional) return -ENOENT;
      return Check(fd, "openat2", path);
    }
    if (fd != -ENOENT) Fail(fd, "openat2", path);
    if (op.create == CreateKind::kDir) {
      MkdirAllInRoot(path, 0755);
    } else {
      char parent[4096];
      const char* base = SplitParent(path, parent, sizeof(parent));
      MkdirAllInRoot(parent, 0755);
      long pfd = Check(OpenInRoot(parent, O_PATH | O_DIRECTORY), "openat2", parent);
      // O_EXCL: never follow a (possibly dangling) symlink while creating.
      long f = Call(SYS_openat, static_cast<int>(pfd), base,
                    O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
      raw::Close(static_cast<int>(pfd));
      if (f < 0 && f != -EEXIST) Fail(f, "openat", path);
      if (f >= 0) raw::Close(static_cast<int>(f));
    }
    return Check(OpenInRoot(path, O_PATH), "openat2", path);
  }

  void SetAttr(int tree_fd, uint64_t attr_set, bool recursive, const char* path) {
    if (attr_set == 0) return;
    mount_attr attr{};
    attr.attr_set = attr_set;
    Check(Call(SYS_mount_setattr, tree_fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0),
               &attr, sizeof(attr)),
          "mount_setattr", path);
  }

  // Attaches a detached mount tree (from open_tree) onto a target fd.
  void MoveOnto(int tree_fd, int target_fd, const char* path) {
    Check(Call(SYS_move_mount, tree_fd, "", target_fd, "",
               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
          "move_mount", path);
  }

  // ---- the mount operations ------------------------------------------------------------

  void RunOp(const MountOp& op) {
    const char* target = op.target.c_str();
    char fdpath[32];
    switch (op.kind) {
      case MountOpKind::kMount:
        Check(Call(SYS_mount, op.source.c_str(), target, op.fstype.c_str(), op.flags,
                   op.data.empty() ? nullptr : op.data.c_str()),
              "mount", target);
        return;
      case MountOpKind::kMkdirHost: {
        long r = Call(SYS_mkdirat, AT_FDCWD, target, op.mode);
        if (r < 0 && r != -EEXIST) Fail(r, "mkdir", target);
        return;
      }
      case MountOpKind::kEnterRoot:
        root_fd = static_cast<int>(
            Check(Call(SYS_openat, AT_FDCWD, target, O_PATH | O_DIRECTORY | O_CLOEXEC),
                  "open", target));
        return;
      case MountOpKind::kMountInRoot: {
        long fd = MountTarget(op);
        if (fd < 0) return;  // optional and absent
        FdPath(fdpath, static_cast<int>(fd));
        Check(Call(SYS_mount, op.source.c_str(), fdpath, op.fstype.c_str(), op.flags,
                   op.data.empty() ? nullptr : op.data.c_str()),
              "mount", target);
        raw::Close(static_cast<int>(fd));
        return;
      }
      case MountOpKind::kBindInRoot: {
        // The parent's tree comes with its flags set; one is consumed per bind op, in order.
        long tree = -1;
        if (host_trees) {
          if (next_bind >= bind_count) Fail(-EBADF, "open_tree", op.source.c_str());
          tree = bind_fds[next_bind++];
        }
        long fd = MountTarget(op);
        if (fd < 0) {
          if (tree >= 0) raw::Close(static_cast<int>(tree));
          return;
        }
        if (tree < 0) {
          tree = Call(SYS_open_tree, AT_FDCWD, op.source.c_str(),
                      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (op.recursive ? AT_RECURSIVE : 0));
          if (tree < 0) Fail(tree, "open_tree", op.source.c_str());
          SetAttr(static_cast<int>(tree), MountAttrFromFlags(op.flags, op.readonly), op.recursive, op.source.c_str());
        }
        MoveOnto(static_cast<int>(tree), static_cast<int>(fd), target);
        raw::Close(static_cast<int>(tree));
        raw::Close(static_cast<int>(fd));
        return;
      }
      case MountOpKind::kMoveTree: {
        long tree = 0;
        for (const char* p = op.source.c_str(); *p != '\0'; ++p) {
          if (*p < '0' || *p > '9' || tree > (1 << 20)) Fail(-EBADF, "move_mount", target);
          tree = tree * 10 + (*p - '0');
        }
        if (op.source.empty()) Fail(-EBADF, "move_mount", target);
        SetAttr(static_cast<int>(tree), MountAttrFromFlags(op.flags, op.readonly), false, target);
        Check(Call(SYS_move_mount, static_cast<int>(tree), "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH), "move_mount", target);
        raw::Close(static_cast<int>(tree));
        return;
      }
      case MountOpKind::kMkdirInRoot:
        MkdirAllInRoot(target, op.mode);
        if (op.mode & 07000) {
          // mkdir ignores the sticky/setgid bits on some filesystems; set them explicitly.
          long fd = Check(OpenInRoot(target, O_RDONLY | O_DIRECTORY), "openat2", target);
          Check(Call(SYS_fchmod, static_cast<int>(fd), op.mode), "fchmod", target);
          raw::Close(static_cast<int>(fd));
        }
        return;
      case MountOpKind::kSymlinkInRoot: {
        const char* base;
        long pfd = OpenParentInRoot(target, &base);
        long r = Call(SYS_symlinkat, op.source.c_str(), static_cast<int>(pfd), base);
        raw::Close(static_cast<int>(pfd));
        if (r < 0 && r != -EEXIST) Fail(r, "symlinkat", target);
        return;
      }
      case MountOpKind::kWriteInRoot: {
        const char* base;
        long pfd = OpenParentInRoot(target, &base);
        long flags = O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW;
        long fd = Call(SYS_openat, static_cast<int>(pfd), base, flags, op.mode);
        if (fd == -EEXIST) {
          // Replace whatever the image had there (a file, or a symlink we must not follow).
          Call(SYS_unlinkat, static_cast<int>(pfd), base, 0);
          fd = Call(SYS_openat, static_cast<int>(pfd), base, flags, op.mode);
        }
        raw::Close(static_cast<int>(pfd));
        if (fd < 0) Fail(fd, "openat", target);
        const char* p = op.content.data();
        size_t left = op.content.size();
        while (left > 0) {
          long w = raw::Write(static_cast<int>(fd), p, left);
          if (w == -EINTR) continue;
          if (w < 0) Fail(w, "write", target);
          p += w;
          left -= static_cast<size_t>(w);
        }
        raw::Close(static_cast<int>(fd));
        return;
      }
      case MountOpKind::kMaskInRoot: {
        long fd = OpenInRoot(target, O_PATH, /*follow=*/false);
        if (fd == -ENOENT) return;
        Check(fd, "openat2", target);
        struct stat st;
        Check(Call(SYS_newfstatat, static_cast<int>(fd), "", &st, AT_EMPTY_PATH), "fstat", target);
        if (S_ISDIR(st.st_mode)) {
          FdPath(fdpath, static_cast<int>(fd));
          Check(Call(SYS_mount, "tmpfs", fdpath, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     "size=0,mode=0555"),
                "mount", target);
        } else {
          long tree = Check(Call(SYS_open_tree, AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC),
                            "open_tree", "/dev/null");
          MoveOnto(static_cast<int>(tree), static_cast<int>(fd), target);
          raw::Close(static_cast<int>(tree));
        }
        raw::Close(static_cast<int>(fd));
        return;
      }
      case MountOpKind::kReadonlyInRoot: {
        long fd = OpenInRoot(target, O_PATH, /*follow=*/false);
        if (fd == -ENOENT) return;
        Check(fd, "openat2", target);
        long tree = Check(Call(SYS_open_tree, static_cast<int>(fd), "",
                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE),
                          "open_tree", target);
        SetAttr(static_cast<int>(tree), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, true,
                target);
        MoveOnto(static_cast<int>(tree), static_cast<int>(fd), target);
        raw::Close(static_cast<int>(tree));
        raw::Close(static_cast<int>(fd));
        return;
      }
      case MountOpKind::kRemountReadonlyInRoot: {
        long fd = Check(OpenInRoot(target, O_PATH | O_DIRECTORY), "openat2", target);
        SetAttr(static_cast<int>(fd), MOUNT_ATTR_RDONLY, false, target);
        raw::Close(static_cast<int>(fd));
        return;
      }
      case MountOpKind::kOverlay:
        MountOverlay(op);
        return;
      case MountOpKind::kReadonlyRoot:
        // Only the root mount itself: /proc, /dev, volumes keep their own flags, as in Docker.
        SetAttr(root_fd, MOUNT_ATTR_RDONLY, false, "/");
        return;
      case MountOpKind::kWriteHost: {
        long fd = Check(Call(SYS_openat, AT_FDCWD, target, O_WRONLY | O_CLOEXEC | O_NOFOLLOW), "open", target);
        // One write: a sysctl parses each write(2) as a whole value.
        long w;
        do {
          w = raw::Write(static_cast<int>(fd), op.content.data(), op.content.size());
        } while (w == -EINTR);
        raw::Close(static_cast<int>(fd));
        if (w < 0) Fail(w, "write", target);
        if (static_cast<size_t>(w) != op.content.size()) Fail(-EIO, "write", target);
        return;
      }
    }
  }

  // "<staging>/layers": where idmapped layer clones are attached (see WaitForGo).
  void StagedLayersDir(const MountOp& op, char* dir, size_t cap) {
    Copy(dir, cap, op.target.c_str());
    size_t len = Len(dir);
    while (len > 0 && dir[len - 1] != '/') --len;
    Copy(dir + len, cap - len, "layers");
  }

  // The path of lower layer i: the image's directory, or its idmapped clone's mount point.
  const char* LowerPath(const MountOp& op, int i, char* buf, size_t cap) {
    if (layer_count == 0) return op.lower_dirs[i].c_str();
    StagedLayersDir(op, buf, cap);
    size_t n = Len(buf);
    buf[n] = '/';
    AppendUint(buf + n + 1, static_cast<unsigned>(i));
    return buf;
  }

  void AttachIdmappedLayers(const MountOp& op) {
    char dir[4096];
    StagedLayersDir(op, dir, sizeof(dir));
    long r = Call(SYS_mkdirat, AT_FDCWD, dir, 0755);
    if (r < 0 && r != -EEXIST) Fail(r, "mkdir", dir);
    for (int i = 0; i < layer_count && i < static_cast<int>(op.lower_dirs.size()); ++i) {
      char path[4096];
      LowerPath(op, i, path, sizeof(path));
      r = Call(SYS_mkdirat, AT_FDCWD, path, 0755);
      if (r < 0 && r != -EEXIST) Fail(r, "mkdir", path);
      Check(Call(SYS_move_mount, layer_fds[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH), "move_mount",
            op.lower_dirs[i].c_str());
      raw::Close(layer_fds[i]);
    }
  }

  // The upper and work dirs: the host paths, or their places in the tree the parent opened
  // (attached at "<staging>/rw").
  void ResolveUpper(const MountOp& op, const char** upper, const char** work) {
    *upper = op.source.c_str();
    *work = op.data.c_str();
    if (upper_tree_fd < 0) return;
    char dir[4096];
    StagedLayersDir(op, dir, sizeof(dir));
    size_t len = Len(dir);
    while (len > 0 && dir[len - 1] != '/') --len;
    Copy(dir + len, sizeof(dir) - len, "rw");
    long r = Call(SYS_mkdirat, AT_FDCWD, dir, 0755);
    if (r < 0 && r != -EEXIST) Fail(r, "mkdir", dir);
    Check(Call(SYS_move_mount, upper_tree_fd, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH), "move_mount", *upper);
    raw::Close(upper_tree_fd);
    upper_tree_fd = -1;
    auto join = [&](char* out, const char* host) {
      const char* base = host + Len(host);
      while (base > host && base[-1] != '/') --base;
      Copy(out, 4096, dir);
      size_t n = Len(out);
      out[n] = '/';
      Copy(out + n + 1, 4096 - n - 1, base);
    };
    join(upper_path, *upper);
    join(work_path, *work);
    *upper = upper_path;
    *work = work_path;
  }

  void MountOverlay(const MountOp& op) {
    const char* target = op.target.c_str();
    if (layer_count > 0) AttachIdmappedLayers(op);
    const char* upper;
    const char* work;
    ResolveUpper(op, &upper, &work);
    const int layers = static_cast<int>(op.lower_dirs.size());
    long fs = Check(Call(SYS_fsopen, "overlay", FSOPEN_CLOEXEC), "fsopen", "overlay");
    auto set = [&](const char* key, const char* value) {
      Check(Call(SYS_fsconfig, static_cast<int>(fs), FSCONFIG_SET_STRING, key, value, 0), "fsconfig", value);
    };
    char buf[4096];
    long first = layers > 0 ? Call(SYS_fsconfig, static_cast<int>(fs), FSCONFIG_SET_STRING, "lowerdir+",
                                   LowerPath(op, 0, buf, sizeof(buf)), 0)
                            : -EINVAL;
    if (first == -EINVAL) {
      // Kernels before 6.8 know no "lowerdir+": fall back to mount(2)'s one-page option string.
      raw::Close(static_cast<int>(fs));
      MountOverlayLegacy(op, upper, work);
      return;
    }
    Check(first, "fsconfig", op.lower_dirs[0].c_str());
    for (int i = 1; i < layers; ++i) set("lowerdir+", LowerPath(op, i, buf, sizeof(buf)));
    set("upperdir", upper);
    set("workdir", work);
    if (!op.fstype.empty()) {
      // Extra flag options such as "userxattr", comma-free by construction in TypeScript.
      Check(Call(SYS_fsconfig, static_cast<int>(fs), FSCONFIG_SET_FLAG, op.fstype.c_str(), nullptr, 0), "fsconfig",
            op.fstype.c_str());
    }
    Check(Call(SYS_fsconfig, static_cast<int>(fs), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0), "fsconfig(create)",
          target);
    long mnt = Check(Call(SYS_fsmount, static_cast<int>(fs), FSMOUNT_CLOEXEC, MountAttrFromFlags(op.flags, false)),
                     "fsmount", target);
    raw::Close(static_cast<int>(fs));
    Check(Call(SYS_move_mount, static_cast<int>(mnt), "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH), "move_mount",
          target);
    raw::Close(static_cast<int>(mnt));
  }

  // "lowerdir=a:b,upperdir=u,workdir=w": limited to a page, and ':' ',' '\\' cannot appear in
  // paths. Reported as E2BIG / EINVAL naming the problem path.
  void MountOverlayLegacy(const MountOp& op, const char* upper, const char* work) {
    char data[4096];
    size_t n = 0;
    auto append = [&](const char* text, bool is_path) {
      for (size_t i = 0; text[i] != '\0'; ++i) {
        if (is_path && (text[i] == ':' || text[i] == ',' || text[i] == '\\')) Fail(-EINVAL, "mount(overlay): path has : , or \\", text);
        if (n + 1 >= sizeof(data)) Fail(-E2BIG, "mount(overlay): too many layers for this kernel's option page (needs Linux 6.8)", text);
        data[n++] = text[i];
      }
      data[n] = '\0';
    };
    append("lowerdir=", false);
    char buf[4096];
    for (int i = 0; i < static_cast<int>(op.lower_dirs.size()); ++i) {
      if (i > 0) append(":", false);
      append(LowerPath(op, i, buf, sizeof(buf)), true);
    }
    append(",upperdir=", false);
    append(upper, true);
    append(",workdir=", false);
    append(work, true);
    if (!op.fstype.empty()) {
      append(",", false);
      append(op.fstype.c_str(), false);
    }
    Check(Call(SYS_mount, "overlay", op.target.c_str(), "overlay", op.flags, data), "mount(overlay)", op.target.c_str());
  }

  void PivotRoot() {
    if (root_fd < 0) return;
    Check(Call(SYS_fchdir, root_fd), "fchdir", "/");
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." with
    // MNT_DETACH then drops the whole host tree from this mount namespace in one call.
    Check(Call(SYS_pivot_root, ".", "."), "pivot_root", "/");
    Check(Call(SYS_umount2, ".", MNT_DETACH), "umount2", "/");
    Check(Call(SYS_chdir, "/"), "chdir", "/");
    raw::Close(root_fd);
    root_fd = -1;
  }

  void BringLoopbackUp() {
    long s = Check(Call(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket", "lo");
    ifreq req{};
    Copy(req.ifr_name, sizeof(req.ifr_name), "lo");
    Check(Call(SYS_ioctl, static_cast<int>(s), SIOCGIFFLAGS, &req), "ioctl(SIOCGIFFLAGS)", "lo");
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
    Check(Call(SYS_ioctl, static_cast<int>(s), SIOCSIFFLAGS, &req), "ioctl(SIOCSIFFLAGS)", "lo");
    raw::Close(static_cast<int>(s));
  }

  // Reads the parent's messages up to "go": idmapped layer trees ('L' + fds) may come first.
  void WaitForGo() {
    for (;;) {
      char tag = 0;
      iovec iov{&tag, 1};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 250)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      long r = Call(SYS_recvmsg, ctx->sync_fd, &msg, MSG_CMSG_CLOEXEC);
      if (r == -EINTR) continue;
      if (r != 1) raw::ExitGroup(125);
      if (tag == 'G') return;
      if (tag != 'L' && tag != 'U' && tag != 'B') raw::ExitGroup(125);
      if (tag != 'L') host_trees = true;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; ++i) {
          int fd;
          __builtin_memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          if (tag == 'L' && layer_count < kMaxLayers) layer_fds[layer_count++] = fd;
          if (tag == 'U') upper_tree_fd = fd;
          if (tag == 'B' && bind_count < kMaxLayers) bind_fds[bind_count++] = fd;
        }
      }
    }
  }

  // Everything from stdio to execve (process-setup.cc), on this child's own context.
  [[noreturn]] void FinishAndExec() {
    ProcessContext process{ctx->process_spec, ctx->sync_fd, {ctx->stdio_fds[0], ctx->stdio_fds[1], ctx->stdio_fds[2]},
                           ctx->argv, ctx->envp, ctx->trace ? ctx->trace_ns : nullptr, ctx->trace_start_ns};
    berth::FinishAndExec(&process);
  }

  [[noreturn]] void Run() {
    // Signal handlers were copied from Node; a signal landing here would run libuv's handler
    // on memory shared with Node. The parent blocked all signals before clone().
    ResetSignalDispositions();
    Call(SYS_umask, 0);

    // Wait until the parent has put us in our cgroups (and written id maps).
    WaitForGo();
    Mark(kTraceGo);
    // `container:<id>` networking: join that namespace before anything (sysfs, loopback) looks at it.
    if (spec->netns_fd >= 0) Check(Call(SYS_setns, spec->netns_fd, CLONE_NEWNET), "setns(CLONE_NEWNET)", "network container");
    if (ctx->pooled_netns_fd >= 0) Check(Call(SYS_setns, ctx->pooled_netns_fd, CLONE_NEWNET), "setns(CLONE_NEWNET)", "pooled netns");

    if (spec->clone_flags & CLONE_NEWUSER) {
      // clone() does not change our kernel ids: we are still host root, which the new
      // namespace does not map (it shows as 65534, and files we create would have no owner:
      // EOVERFLOW). Become the namespace's root now that the parent has written the maps.
      Check(Call(SYS_setresgid, 0, 0, 0), "setresgid", "userns");
      Check(Call(SYS_setresuid, 0, 0, 0), "setresuid", "userns");
    }
    if (spec->die_with_parent) Call(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (spec->new_cgroup_ns) Check(Call(SYS_unshare, CLONE_NEWCGROUP), "unshare(CLONE_NEWCGROUP)", "");

    for (const MountOp& op : spec->mounts) RunOp(op);
    Mark(kTraceMounts);
    if (!spec->hostname.empty()) {
      Check(Call(SYS_sethostname, spec->hostname.c_str(), spec->hostname.size()), "sethostname",
            spec->hostname.c_str());
    }
    if (spec->loopback_up && ctx->pooled_netns_fd < 0) BringLoopbackUp();
    PivotRoot();
    Mark(kTracePivot);
    FinishAndExec();
  }

};

}  // namespace

int ChildMain(void* context) {
  auto* ctx = static_cast<ChildContext*>(context);
  Child child{ctx, ctx->spec};
  child.Run();
}


}  // namespace berth
