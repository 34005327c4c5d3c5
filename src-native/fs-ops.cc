// Confined file-system operations: the kernel side. See fs-ops.h for the contract; the N-API
// glue is fs-ops-napi.cc.
#include "fs-ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <linux/securebits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::fsops {

void Fd::Reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

// One cached parent directory (see "Parent directories of private roots" below).
struct CachedParent {
  int root;
  std::string dir;
  Fd fd;
  uint64_t epoch;
};

struct ParentCache {
  std::vector<CachedParent> entries;
};

namespace {

constexpr unsigned long long kResolve =
    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;

// Roots opened in a mode other than the strict default, per thread like the private roots
// below: a write-pool worker resolves in its own dup of a root and always strictly.
thread_local std::vector<std::pair<int, unsigned long long>> g_root_resolve;

unsigned long long ResolveOf(RootMode mode) {
  unsigned long long r = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  if (!mode.follow) r |= RESOLVE_NO_SYMLINKS;
  if (!mode.cross_mounts) r |= RESOLVE_NO_XDEV;
  return r;
}

unsigned long long ResolveFor(int root) {
  for (const auto& [fd, resolve] : g_root_resolve) if (fd == root) return resolve;
  return kResolve;
}

struct CreateOwner {
  int root;
  uid_t uid;
  gid_t gid;
};
thread_local std::vector<CreateOwner> g_create_as;

void SetRootResolve(int root, RootMode mode) {
  if (mode.create_as) g_create_as.push_back({root, mode.uid, mode.gid});
  if (!mode.follow && !mode.cross_mounts) return;
  g_root_resolve.emplace_back(root, ResolveOf(mode));
}

// Switches this thread's fsuid/fsgid for one creating syscall (see RootMode::create_as).
// SECBIT_NO_SETUID_FIXUP keeps the capabilities that a switch away from fsuid 0 would drop
// (CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER…): berth keeps its power over the container's
// files and only appears to the kernel as the container's root for the new inode's owner.
// Credentials are per thread in Linux (glibc's setfsuid does not broadcast), so no other
// thread of the process, nor the event loop after this call, ever runs with them.
class ScopedCreator {
 public:
  explicit ScopedCreator(int root) {
    for (const auto& c : g_create_as) {
      if (c.root != root) continue;
      int bits = prctl(PR_GET_SECUREBITS);
      if (bits < 0 || prctl(PR_SET_SECUREBITS, bits | SECBIT_NO_SETUID_FIXUP) != 0) return;
      bits_ = bits;
      old_gid_ = setfsgid(c.gid);
      old_uid_ = setfsuid(c.uid);
      active_ = true;
      return;
    }
  }
  ~ScopedCreator() {
    if (!active_) return;
    setfsuid(old_uid_);
    setfsgid(old_gid_);
    prctl(PR_SET_SECUREBITS, bits_);
  }
  ScopedCreator(const ScopedCreator&) = delete;
  ScopedCreator& operator=(const ScopedCreator&) = delete;

 private:
  bool active_ = false;
  int bits_ = 0;
  int old_uid_ = 0;
  int old_gid_ = 0;
};

// Opens `rel` beneath `root`; the kernel refuses any resolution that would leave the root (or,
// in the strict default mode, pass through a symlink or into a mount). `rel` may be "" for the
// root itself.
int OpenInRoot(int root, const std::string& rel, int flags, mode_t mode = 0) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = ResolveFor(root);
  const char* p = rel.empty() ? "." : rel.c_str();
  for (;;) {
    long fd = syscall(SYS_openat2, root, p, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // openat2 returns EAGAIN when a concurrent rename raced the lookup; retrying is the
    // documented answer.
    if (errno == EAGAIN || errno == EINTR) continue;
    return -errno;
  }
}

// Splits "a/b/c" into ("a/b", "c"). Names are validated by the caller (TypeScript) too; this
// is the second line: no empty, ".", ".." or absolute components reach a syscall.
bool SplitPath(const std::string& path, std::string* parent, std::string* base) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view comp(path.data() + start, end - start);
    if (comp.empty() || comp == "." || comp == "..") return false;
    start = end + 1;
  }
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    parent->clear();
    *base = path;
  } else {
    *parent = path.substr(0, slash);
    *base = path.substr(slash + 1);
  }
  return true;
}

// The parent directory of `path`, opened beneath `root`, and the final component.
int OpenParent(int root, const std::string& path, Fd* parent, std::string* base, Failure* f) {
  std::string dir;
  if (!SplitPath(path, &dir, base)) {
    *f = {EINVAL, "openat2", path};
    return -EINVAL;
  }
  int fd = OpenInRoot(root, dir, O_PATH | O_DIRECTORY);
  if (fd < 0) {
    *f = {-fd, "openat2", dir.empty() ? std::string(".") : dir};
    return fd;
  }
  *parent = Fd(fd);
  return 0;
}

// Parent directories of private roots, one per root: the last one used. A layer tar writes
// runs of entries into one directory; resolving the parent once per run instead of once per
// entry saves an openat2 and a close per file. Only for roots opened with `private: true` —
// a temp dir inside the store that nothing else writes: a cached fd would follow a directory
// that a concurrent writer renamed out of the root, which resolving with RESOLVE_IN_ROOT on
// every call rules out for roots other processes can touch (`unpack()` into a user's dir).
//
// Each thread has its own cache (the JS thread, and each write-pool worker); anything that
// removes or replaces an entry bumps a global epoch, which makes every cached entry stale, and
// the write pool is always drained before such a change. Opening or closing a root forgets that
// fd's entry (fd numbers are reused).
std::atomic<uint64_t> g_epoch{0};

thread_local ParentCache g_main_cache;
thread_local std::vector<int> g_private_roots;
constexpr size_t kMaxCachedRoots = 64;

bool IsPrivateRoot(int root) {
  for (int r : g_private_roots) if (r == root) return true;
  return false;
}

void ForgetRoot(int root) {
  g_epoch++;
  for (size_t i = 0; i < g_root_resolve.size(); i++) {
    if (g_root_resolve[i].first == root) {
      g_root_resolve.erase(g_root_resolve.begin() + static_cast<long>(i));
      break;
    }
  }
  for (size_t i = 0; i < g_create_as.size(); i++) {
    if (g_create_as[i].root == root) {
      g_create_as.erase(g_create_as.begin() + static_cast<long>(i));
      break;
    }
  }
  auto& v = g_main_cache.entries;
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i].root == root) {
      v.erase(v.begin() + static_cast<long>(i));
      break;
    }
  }
  for (size_t i = 0; i < g_private_roots.size(); i++) {
    if (g_private_roots[i] == root) {
      g_private_roots.erase(g_private_roots.begin() + static_cast<long>(i));
      break;
    }
  }
}

void MarkPrivateRoot(int root) {
  ForgetRoot(root);
  if (g_private_roots.size() >= kMaxCachedRoots) {
    g_private_roots.clear();
    g_main_cache.entries.clear();
  }
  g_private_roots.push_back(root);
}

// Something was removed or replaced: any cached directory may be gone.
void ForgetParents() {
  g_epoch++;
  g_main_cache.entries.clear();
}

// Moves a cached parent fd out of `cache` into *owned (so that ForgetParents, which a removal
// below it triggers, does not close the fd its caller is still using).
void DetachParent(ParentCache* cache, int fd, Fd* owned) {
  if (cache == nullptr) return;
  auto& v = cache->entries;
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i].fd.get() == fd) {
      *owned = std::move(v[i].fd);
      v.erase(v.begin() + static_cast<long>(i));
      return;
    }
  }
}

// Like OpenParent; with a cache the parent fd comes from (and goes to) it and *fd is borrowed,
// without one *owned owns it.
int ParentOf(int root, const std::string& path, ParentCache* cache, int* fd, Fd* owned, std::string* base, Failure* f) {
  std::string dir;
  if (!SplitPath(path, &dir, base)) {
    *f = {EINVAL, "openat2", path};
    return -EINVAL;
  }
  const uint64_t epoch = g_epoch.load();
  if (cache) {
    for (auto& c : cache->entries) {
      if (c.root == root && c.dir == dir && c.epoch == epoch) {
        *fd = c.fd.get();
        return 0;
      }
    }
  }
  int pfd = OpenInRoot(root, dir, O_PATH | O_DIRECTORY);
  if (pfd < 0) {
    *f = {-pfd, "openat2", dir.empty() ? std::string(".") : dir};
    return pfd;
  }
  *fd = pfd;
  if (!cache) {
    *owned = Fd(pfd);
    return 0;
  }
  for (auto& c : cache->entries) {
    if (c.root == root) {
      c.dir = dir;
      c.fd = Fd(pfd);
      c.epoch = epoch;
      return 0;
    }
  }
  cache->entries.push_back(CachedParent{root, dir, Fd(pfd), epoch});
  return 0;
}

std::string ProcPath(int dirfd, const std::string& base) {
  return "/proc/self/fd/" + std::to_string(dirfd) + (base.empty() ? "" : "/" + base);
}

int RemoveTree(int dirfd, const char* name, int depth);

int RemoveChildren(int fd, int depth) {
  if (depth > 4096) return -ELOOP;
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return -errno;
  DIR* d = fdopendir(dup);
  if (!d) {
    int e = errno;
    close(dup);
    return -e;
  }
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  closedir(d);
  for (const auto& n : names) {
    int r = RemoveTree(fd, n.c_str(), depth + 1);
    if (r < 0 && r != -ENOENT) return r;
  }
  return 0;
}

// Removes `name` in `dirfd` and, if it is a directory, everything beneath it. Never follows a
// symlink: children are opened with O_NOFOLLOW relative to their parent's fd.
int RemoveTree(int dirfd, const char* name, int depth) {
  if (depth == 0) ForgetParents();
  if (unlinkat(dirfd, name, 0) == 0) return 0;
  if (errno != EISDIR && errno != EPERM) return -errno;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  Fd owned(fd);
  int r = RemoveChildren(fd, depth);
  if (r < 0) return r;
  if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0) return -errno;
  return 0;
}

int ApplyMetaFd(int fd, const Meta& m, const std::string& path, Failure* f) {
  // Order matters: chown clears setuid/setgid and file capabilities, so mode and xattrs
  // (security.capability) come after it.
  // On ext4 every fchown/fchmod is a journalled inode update (≈ 0.1 ms of kernel time here,
  // more than creating the file's data): skip the ones that would change nothing. Most image
  // files are root's, and most get their final permission bits at creation (CreateNode).
  // Skipping a same-owner chown is safe because this is only ever called on a node just
  // created or a directory, which carry no setuid bits or capabilities a chown would clear.
  struct stat st;
  if (fstat(fd, &st) != 0) return *f = {errno, "fstat", path}, -f->err;
  if (m.hasOwner && (st.st_uid != m.uid || st.st_gid != m.gid) && fchown(fd, m.uid, m.gid) != 0) {
    return *f = {errno, "fchown", path}, -f->err;
  }
  // After a chown, which may have cleared setuid/setgid.
  const bool modeChanged = m.hasOwner && (st.st_uid != m.uid || st.st_gid != m.gid);
  if (m.hasMode && (modeChanged || (st.st_mode & 07777) != (m.mode & 07777)) && fchmod(fd, m.mode) != 0) {
    return *f = {errno, "fchmod", path}, -f->err;
  }
  for (const auto& [name, value] : m.xattrs) {
    if (fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) {
      return *f = {errno, "fsetxattr", path + " (" + name + ")"}, -f->err;
    }
  }
  if (m.hasMtime) {
    struct timespec ts[2] = {m.mtime, m.mtime};
    if (futimens(fd, ts) != 0) return *f = {errno, "futimens", path}, -f->err;
  }
  return 0;
}

// For nodes we must not open (devices, FIFOs) or cannot open (symlinks): act through the
// parent's fd and the final name, never following the final component.
int ApplyMetaAt(int parent, const std::string& base, bool isSymlink, const Meta& m,
                const std::string& path, Failure* f) {
  if (m.hasOwner && fchownat(parent, base.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return *f = {errno, "fchownat", path}, -f->err;
  }
  if (!isSymlink && m.hasMode && fchmodat(parent, base.c_str(), m.mode, 0) != 0) {
    return *f = {errno, "fchmodat", path}, -f->err;
  }
  if (!m.xattrs.empty()) {
    std::string p = ProcPath(parent, base);
    for (const auto& [name, value] : m.xattrs) {
      if (lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
        return *f = {errno, "lsetxattr", path + " (" + name + ")"}, -f->err;
      }
    }
  }
  if (m.hasMtime) {
    struct timespec ts[2] = {m.mtime, m.mtime};
    if (utimensat(parent, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return *f = {errno, "utimensat", path}, -f->err;
    }
  }
  return 0;
}

// Makes the node for `e` at (p, base): 0 (and *fd for files) or -errno with *f set. EEXIST is
// returned without touching *f, so that the caller can replace what is there.
int CreateNode(int root, int p, const std::string& base, const Entry& e, int* fd, Failure* f) {
  const char* b = base.c_str();
  auto fail = [&](const char* syscall, const std::string& path) {
    if (errno == EEXIST) return -EEXIST;
    *f = {errno, syscall, path};
    return -f->err;
  };
  if (e.kind == "file") {
    // With its final permission bits when the caller gave them (less the umask; setuid, setgid
    // and sticky only after the chown, in ApplyMetaFd): one fchmod less per file. The node is
    // below a root only its owner can reach (a 0700 store or unpack destination).
    const mode_t mode = e.meta.hasMode ? (e.meta.mode & 0777) : 0600;
    *fd = openat(p, b, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    return *fd < 0 ? fail("openat", e.path) : 0;
  }
  if (e.kind == "dir") return mkdirat(p, b, 0700) != 0 ? fail("mkdirat", e.path) : 0;
  if (e.kind == "symlink") return symlinkat(e.target.c_str(), p, b) != 0 ? fail("symlinkat", e.path) : 0;
  if (e.kind == "link") {
    Fd tparent;
    std::string tbase;
    if (int r = OpenParent(root, e.target, &tparent, &tbase, f); r < 0) return r;
    // No AT_SYMLINK_FOLLOW: a hard link to a symlink links the symlink itself, as tar does,
    // and can never reach through it.
    return linkat(tparent.get(), tbase.c_str(), p, b, 0) != 0 ? fail("linkat", e.path + " -> " + e.target) : 0;
  }
  mode_t type;
  if (e.kind == "char") {
    type = S_IFCHR;
  } else if (e.kind == "block") {
    type = S_IFBLK;
  } else if (e.kind == "fifo") {
    type = S_IFIFO;
  } else {
    *f = {EINVAL, "mknodat", e.path + " (unknown kind " + e.kind + ")"};
    return -EINVAL;
  }
  return mknodat(p, b, type | 0600, makedev(e.major, e.minor)) != 0 ? fail("mknodat", e.path) : 0;
}

// MakeEntry, with the parent directory from (and to) `cache` when there is one.
int MakeEntryCached(int root, const Entry& e, int* fd, Failure* f, ParentCache* cache) {
  *fd = -1;
  Fd owned;
  int p = -1;
  std::string base;
  if (int r = ParentOf(root, e.path, cache, &p, &owned, &base, f); r < 0) return r;
  const char* b = base.c_str();

  ScopedCreator creator(root);
  // Create first and look only on EEXIST: in a fresh layer nothing is ever in the way.
  int r = CreateNode(root, p, base, e, fd, f);
  if (r == -EEXIST) {
    struct stat st;
    if (fstatat(p, b, &st, AT_SYMLINK_NOFOLLOW) != 0) return *f = {errno, "fstatat", e.path}, -f->err;
    if (e.kind == "dir" && S_ISDIR(st.st_mode)) {
      r = 0;
    } else {
      if (owned.get() < 0) DetachParent(cache, p, &owned);
      if (int rm = RemoveTree(p, b, 0); rm < 0 && rm != -ENOENT) return *f = {-rm, "unlinkat", e.path}, rm;
      r = CreateNode(root, p, base, e, fd, f);
      if (r == -EEXIST) return *f = {EEXIST, "create", e.path}, -EEXIST;
    }
  }
  if (r < 0) return r;
  if (e.kind == "file" || e.kind == "link") return 0;
  if (e.kind == "dir") {
    int dfd = openat(p, b, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return *f = {errno, "openat", e.path}, -f->err;
    Fd dir(dfd);
    return ApplyMetaFd(dfd, e.meta, e.path, f);
  }
  return ApplyMetaAt(p, base, e.kind == "symlink", e.meta, e.path, f);
}

}  // namespace

int OpenRoot(const std::string& dir, bool private_root, RootMode mode, Failure* f) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return *f = {errno, "open", dir}, -f->err;
  // A new root with this number: whatever was cached for an earlier fd of that number is stale.
  ForgetRoot(fd);
  if (private_root) MarkPrivateRoot(fd);
  SetRootResolve(fd, mode);
  return fd;
}

int OpenRootAt(int root, const std::string& path, RootMode mode, Failure* f) {
  int fd = OpenInRoot(root, path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return *f = {-fd, "openat2", path.empty() ? std::string(".") : path}, fd;
  AdoptRoot(fd, mode);
  return fd;
}

void AdoptRoot(int fd, RootMode mode) {
  ForgetRoot(fd);
  SetRootResolve(fd, mode);
}

int CloseRoot(int root, Failure* f) {
  ForgetRoot(root);
  if (close(root) != 0) return *f = {errno, "close", ""}, -f->err;
  return 0;
}

int MakeEntry(int root, const Entry& e, int* fd, Failure* f) {
  return MakeEntryCached(root, e, fd, f, IsPrivateRoot(root) ? &g_main_cache : nullptr);
}

int FinishFile(int fd, const Meta& m, const std::string& path, Failure* f) {
  Fd owned(fd);
  if (int r = ApplyMetaFd(fd, m, path, f); r < 0) return r;
  if (close(owned.release()) != 0) return *f = {errno, "close", path}, -f->err;
  return 0;
}

int RemoveAt(int root, const std::string& path, Failure* f) {
  Fd parent;
  std::string base;
  int r = OpenParent(root, path, &parent, &base, f);
  if (r == -ENOENT || r == -ENOTDIR) return 0;
  if (r < 0) return r;
  r = RemoveTree(parent.get(), base.c_str(), 0);
  if (r == -ENOENT) return 0;
  if (r < 0) return *f = {-r, "unlinkat", path}, r;
  return 1;
}

int RenameAt(int root, const std::string& from, const std::string& to, Failure* f) {
  Fd parent;
  std::string from_dir, from_base, to_dir, to_base;
  if (int r = OpenParent(root, from, &parent, &from_base, f); r < 0) return r;
  if (!SplitPath(from, &from_dir, &from_base) || !SplitPath(to, &to_dir, &to_base) || from_dir != to_dir) {
    return *f = {EXDEV, "renameat", to}, -EXDEV;
  }
  ScopedCreator creator(root);  // a rename creates a name: the same mapping rule as a new inode
  if (renameat(parent.get(), from_base.c_str(), parent.get(), to_base.c_str()) < 0) return *f = {errno, "renameat", to}, -f->err;
  g_epoch.fetch_add(1);
  return 0;
}

int ReadDirAt(int root, const std::string& path, std::vector<std::string>* names, Failure* f) {
  int fd = OpenInRoot(root, path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return *f = {-fd, "openat2", path}, fd;
  DIR* d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return *f = {e, "fdopendir", path}, -e;
  }
  while (struct dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names->emplace_back(e->d_name);
  }
  closedir(d);
  return 0;
}

int LstatAt(int root, const std::string& path, struct stat* st, Failure* f) {
  if (path.empty()) {
    if (fstat(root, st) != 0) return *f = {errno, "fstat", "."}, -f->err;
    return 1;
  }
  Fd parent;
  std::string base;
  int r = OpenParent(root, path, &parent, &base, f);
  if (r == -ENOENT || r == -ENOTDIR) return 0;
  if (r < 0) return r;
  if (fstatat(parent.get(), base.c_str(), st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return 0;
    return *f = {errno, "fstatat", path}, -f->err;
  }
  return 1;
}

// The paths read here (a running container's upper dir, a live container's root) are written
// by the container, which can swap a file for a device node, a FIFO or a symlink between any
// lstat and the open. open(2) of a device runs its driver's open on the host (a disk, a tty
// that becomes our controlling terminal) and a FIFO's reader open can wait for a writer. So the
// entry is pinned with O_PATH (which opens nothing), its type checked on that very inode, and
// only then reopened through /proc/self/fd for reading: the reopen names the pinned inode, not
// the path, so a swap after the check changes nothing.
int OpenAt(int root, const std::string& path, Failure* f) {
  int pinned = OpenInRoot(root, path, O_PATH | O_NOFOLLOW);
  if (pinned < 0) return *f = {-pinned, "openat2", path}, pinned;
  Fd pin(pinned);
  struct stat st;
  if (fstat(pinned, &st) != 0) return *f = {errno, "fstat", path}, -f->err;
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    // ELOOP for a symlink, as O_NOFOLLOW reports it; ENXIO ("no such device") for the rest.
    int err = S_ISLNK(st.st_mode) ? ELOOP : ENXIO;
    return *f = {err, "open (not a regular file or directory)", path}, -err;
  }
  std::string proc = "/proc/self/fd/" + std::to_string(pinned);
  int fd = open(proc.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
  if (fd < 0) return *f = {errno, "open", path}, -f->err;
  return fd;
}

// "" is the root itself; otherwise the parent is resolved in the root and the final name
// reached through /proc/self/fd, so that l*xattr() never follows anything.
static int XattrPath(int root, const std::string& path, Fd* parent, std::string* proc, Failure* f) {
  if (path.empty()) {
    *proc = ProcPath(root, "");
    return 0;
  }
  std::string base;
  if (int r = OpenParent(root, path, parent, &base, f); r < 0) return r;
  *proc = ProcPath(parent->get(), base);
  return 0;
}

int SetXattrAt(int root, const std::string& path, const std::string& name, const char* value, size_t size, Failure* f) {
  Fd parent;
  std::string proc;
  if (int r = XattrPath(root, path, &parent, &proc, f); r < 0) return r;
  if (lsetxattr(proc.c_str(), name.c_str(), value, size, 0) != 0) return *f = {errno, "lsetxattr", path + " (" + name + ")"}, -f->err;
  return 0;
}

int ListXattrsAt(int root, const std::string& path, Xattrs* out, Failure* f) {
  Fd parent;
  std::string proc;
  if (int r = XattrPath(root, path, &parent, &proc, f); r < 0) return r;
  std::vector<char> names(4096);
  ssize_t n;
  while ((n = llistxattr(proc.c_str(), names.data(), names.size())) < 0 && errno == ERANGE) names.resize(names.size() * 4);
  if (n < 0) {
    if (errno == ENOTSUP) return 0;
    return *f = {errno, "llistxattr", path}, -f->err;
  }
  for (ssize_t off = 0; off < n;) {
    std::string name(names.data() + off);
    off += static_cast<ssize_t>(name.size()) + 1;
    std::vector<char> value(256);
    ssize_t v;
    while ((v = lgetxattr(proc.c_str(), name.c_str(), value.data(), value.size())) < 0 && errno == ERANGE) value.resize(value.size() * 4);
    if (v < 0) {
      if (errno == ENODATA) continue;
      return *f = {errno, "lgetxattr", path + " (" + name + ")"}, -f->err;
    }
    value.resize(static_cast<size_t>(v));
    out->emplace_back(std::move(name), std::move(value));
  }
  return 0;
}

int SetTimesAt(int root, const std::string& path, const Meta& m, Failure* f) {
  if (!m.hasMtime) return 0;
  Meta times;
  times.hasMtime = true;
  times.mtime = m.mtime;
  if (path.empty()) return ApplyMetaFd(root, times, ".", f);
  Fd parent;
  std::string base;
  if (int r = OpenParent(root, path, &parent, &base, f); r < 0) return r;
  return ApplyMetaAt(parent.get(), base, true, times, path, f);
}

int SyncFs(int fd, Failure* f) {
  if (syncfs(fd) != 0) return *f = {errno, "syncfs", ""}, -f->err;
  return 0;
}

int SetTopDir(int fd, bool on, Failure* f) {
  // The ioctl's argument is an int, whatever its _IOR type says (every file system reads 4 bytes).
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) {
    if (errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL) return kNoTopDirFlag;
    return *f = {errno, "ioctl(FS_IOC_GETFLAGS)", ""}, -f->err;
  }
  const bool was = (flags & FS_TOPDIR_FL) != 0;
  if (was == on) return was ? 1 : 0;
  flags = on ? (flags | FS_TOPDIR_FL) : (flags & ~FS_TOPDIR_FL);
  if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) {
    if (errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL) return kNoTopDirFlag;
    return *f = {errno, "ioctl(FS_IOC_SETFLAGS)", ""}, -f->err;
  }
  return was ? 1 : 0;
}

int TryFlock(int fd, int how, Failure* f) {
  for (;;) {
    if (flock(fd, how | LOCK_NB) == 0) return 1;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return 0;
    return *f = {errno, "flock", ""}, -f->err;
  }
}

WritePool::WritePool(int root, unsigned threads)
    : root_(fcntl(root, F_DUPFD_CLOEXEC, 0)), cacheParents_(IsPrivateRoot(root)), lanes_(threads) {
  if (root_.get() < 0) {
    failed_ = true;
    failure_ = {errno, "fcntl", ""};
    return;
  }
  for (auto& lane : lanes_) threads_.emplace_back([this, &lane] { Run(&lane); });
}

void WritePool::Submit(WriteJob&& job) {
  if (threads_.empty()) return;  // the constructor failed: Barrier reports it
  const size_t slash = job.path.rfind('/');
  const std::string_view parent = slash == std::string::npos ? std::string_view() : std::string_view(job.path).substr(0, slash);
  Lane& lane = lanes_[std::hash<std::string_view>{}(parent) % lanes_.size()];
  std::unique_lock<std::mutex> lock(mu_);
  space_.wait(lock, [&] { return (queuedBytes_ < kMaxQueuedBytes && queuedJobs_ < kMaxQueuedJobs) || queuedJobs_ == 0; });
  queuedBytes_ += job.data.size();
  queuedJobs_++;
  lane.queue.push_back(std::move(job));
  lane.work.notify_one();
}

bool WritePool::Barrier(Failure* out) {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return queuedJobs_ == 0 && active_ == 0; });
  if (!failed_) return true;
  *out = failure_;
  return false;
}

bool WritePool::Idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return queuedJobs_ == 0 && active_ == 0;
}

bool WritePool::HasRoom() {
  std::lock_guard<std::mutex> lock(mu_);
  return queuedJobs_ == 0 || (queuedBytes_ + (1 << 20) <= kMaxQueuedBytes && queuedJobs_ + 512 <= kMaxQueuedJobs);
}

void WritePool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  for (auto& lane : lanes_) lane.work.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  root_.Reset();  // now, not when the JS handle is collected
}

void WritePool::Run(Lane* lane) {
  // This thread's; its fds close when the thread ends. A root other processes may write
  // (`unpack()` into a user's directory) gets none: every parent is resolved again, in the
  // root, for every file, so a directory renamed out of the root is never written through.
  ParentCache cache;
  ParentCache* const parents = cacheParents_ ? &cache : nullptr;
  Streamed streamed;
  for (;;) {
    WriteJob job;
    bool skip;
    {
      std::unique_lock<std::mutex> lock(mu_);
      lane->work.wait(lock, [&] { return stop_ || !lane->queue.empty(); });
      if (lane->queue.empty()) return;  // stopping
      job = std::move(lane->queue.front());
      lane->queue.pop_front();
      active_++;
      skip = failed_;  // after a failure the layer is lost anyway: drain without writing
    }
    Failure f;
    // After a failure a streamed file still closes at its end (or when the next one opens).
    if (skip && (job.kind == WriteJob::Kind::kOpen || job.kind == WriteJob::Kind::kClose)) streamed.fd.Reset();
    const bool ok = skip || Write(job, parents, &streamed, &f);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ok && !failed_) {
        failed_ = true;
        failure_ = f;
      }
      active_--;
      queuedJobs_--;
      queuedBytes_ -= job.data.size();
      space_.notify_all();
      if (queuedJobs_ == 0 && active_ == 0) idle_.notify_all();
    }
  }
}

namespace {

// Copies the whole of `src` into `dst` in the kernel (copy_file_range: no copy through user
// space, a shared extent where the file system can reflink); read/write where it cannot.
int CopyContent(int src, int dst, const std::string& path, Failure* f) {
  for (;;) {
    ssize_t n = copy_file_range(src, nullptr, dst, nullptr, 1 << 30, 0);
    if (n > 0) continue;
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return *f = {errno, "copy_file_range", path}, -f->err;
    break;
  }
  std::vector<char> buf(256 * 1024);
  for (;;) {
    ssize_t n = read(src, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return *f = {errno, "read", path}, -f->err;
    }
    if (n == 0) return 0;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(dst, buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return *f = {errno, "write", path}, -f->err;
      }
      off += w;
    }
  }
}

// The extended attributes of an open file, except overlay's own (`trusted.overlay.*`,
// `user.overlay.*`: how a layer dir stores opaque directories and the like, not content).
int ContentXattrs(int fd, const std::string& path, Xattrs* out, Failure* f) {
  std::vector<char> names(4096);
  ssize_t n;
  while ((n = flistxattr(fd, names.data(), names.size())) < 0 && errno == ERANGE) names.resize(names.size() * 4);
  if (n < 0) {
    if (errno == ENOTSUP) return 0;
    return *f = {errno, "flistxattr", path}, -f->err;
  }
  for (ssize_t off = 0; off < n;) {
    std::string name(names.data() + off);
    off += static_cast<ssize_t>(name.size()) + 1;
    if (name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0) continue;
    std::vector<char> value(256);
    ssize_t v;
    while ((v = fgetxattr(fd, name.c_str(), value.data(), value.size())) < 0 && errno == ERANGE) value.resize(value.size() * 4);
    if (v < 0) {
      if (errno == ENODATA) continue;
      return *f = {errno, "fgetxattr", path + " (" + name + ")"}, -f->err;
    }
    value.resize(static_cast<size_t>(v));
    out->emplace_back(std::move(name), std::move(value));
  }
  return 0;
}

}  // namespace

namespace {

int WriteAll(int fd, const std::vector<char>& data, const std::string& path, Failure* f) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return *f = {errno, "write", path}, -f->err;
    }
    off += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

bool WritePool::Write(const WriteJob& job, ParentCache* cache, Streamed* streamed, Failure* f) {
  Entry e;
  e.path = job.path;
  if (job.kind == WriteJob::Kind::kAppend || job.kind == WriteJob::Kind::kClose) {
    if (streamed->fd.get() < 0) return *f = {EBADF, "write", job.path}, false;  // no kOpen before it
    if (job.kind == WriteJob::Kind::kAppend) return WriteAll(streamed->fd.get(), job.data, job.path, f) == 0;
    const int fd = streamed->fd.release();
    if (ApplyMetaFd(fd, streamed->meta, job.path, f) < 0) {
      close(fd);
      return false;
    }
    if (close(fd) != 0) return *f = {errno, "close", job.path}, false;
    return true;
  }
  if (job.kind == WriteJob::Kind::kSymlink) {
    e.kind = "symlink";
    e.target = job.target;
    e.meta = job.meta;
    int none = -1;
    return MakeEntryCached(root_.get(), e, &none, f, cache) >= 0;
  }
  Fd src;
  Meta copied;
  const Meta* meta = &job.meta;
  if (job.kind == WriteJob::Kind::kCopy) {
    // Pinned and checked to be a regular file before it is opened for reading (OpenAt).
    int s = OpenAt(job.srcRoot, job.srcPath, f);
    if (s < 0) return false;
    src = Fd(s);
    // Its xattrs (a capability, an ACL) come from the open source here, not from a lookup by
    // path on the JS thread for every file.
    copied = job.meta;
    if (ContentXattrs(s, job.srcPath, &copied.xattrs, f) < 0) return false;
    meta = &copied;
  }
  e.kind = "file";
  e.meta.hasMode = job.meta.hasMode;
  e.meta.mode = job.meta.mode;
  int fd = -1;
  if (MakeEntryCached(root_.get(), e, &fd, f, cache) < 0) return false;
  if (job.kind == WriteJob::Kind::kOpen) {
    streamed->fd = Fd(fd);
    streamed->meta = job.meta;
    return true;
  }
  Fd file(fd);
  if (job.kind == WriteJob::Kind::kCopy) {
    if (CopyContent(src.get(), fd, job.path, f) < 0) return false;
  }
  if (WriteAll(fd, job.data, job.path, f) < 0) return false;
  if (ApplyMetaFd(fd, *meta, job.path, f) < 0) return false;
  if (close(file.release()) != 0) {
    *f = {errno, "close", job.path};
    return false;
  }
  return true;
}

}  // namespace berth::fsops
