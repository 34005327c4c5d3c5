// Confined file-system operations for the layer unpacker. See fs-ops.h for the contract.
//
// Layout: plain C++ kernel code first (namespace fsops: every function returns 0 or -errno and
// never touches JS), then the N-API glue that converts arguments and turns failures into JS
// errors carrying { code, errno, syscall, path }.
#include "fs-ops.h"

#include "napi-errors.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth {
namespace fsops {

// A failed syscall: what failed and on which (root-relative) path.
struct Failure {
  int err = 0;
  const char* syscall = "";
  std::string path;
};

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    Reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

constexpr unsigned long long kResolve =
    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;

// Opens `rel` beneath `root`; the kernel refuses any resolution that would leave the root or
// pass through a symlink. `rel` may be "" for the root itself.
int OpenInRoot(int root, const std::string& rel, int flags, mode_t mode = 0) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = kResolve;
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

struct CachedParent {
  int root;
  std::string dir;
  Fd fd;
  uint64_t epoch;
};

struct ParentCache {
  std::vector<CachedParent> entries;
};

thread_local ParentCache g_main_cache;
thread_local std::vector<int> g_private_roots;
constexpr size_t kMaxCachedRoots = 64;

bool IsPrivateRoot(int root) {
  for (int r : g_private_roots) if (r == root) return true;
  return false;
}

void ForgetRoot(int root) {
  g_epoch++;
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

struct Meta {
  bool hasOwner = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool hasMode = false;
  mode_t mode = 0;
  bool hasMtime = false;
  struct timespec mtime {};
  std::vector<std::pair<std::string, std::vector<char>>> xattrs;
};

struct Entry {
  std::string path;
  std::string kind;  // file | dir | symlink | link | char | block | fifo
  std::string target;
  unsigned major = 0, minor = 0;
  Meta meta;
};

int ApplyMetaFd(int fd, const Meta& m, const std::string& path, Failure* f) {
  // Order matters: chown clears setuid/setgid and file capabilities, so mode and xattrs
  // (security.capability) come after it.
  if (m.hasOwner && fchown(fd, m.uid, m.gid) != 0) return *f = {errno, "fchown", path}, -f->err;
  if (m.hasMode && fchmod(fd, m.mode) != 0) return *f = {errno, "fchmod", path}, -f->err;
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

// Creates one tar entry. Whatever exists at the path is replaced, except that an existing
// directory stays (its contents survive) when the entry is a directory too: tar semantics.
// Returns an fd open for writing for regular files, -1 for everything else, or -errno.
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
    *fd = openat(p, b, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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

// Creates one tar entry. Whatever exists at the path is replaced, except that an existing
// directory stays (its contents survive) when the entry is a directory too: tar semantics.
// Returns 0 or -errno; *fd is a write fd for regular files, -1 otherwise.
int MakeEntry(int root, const Entry& e, int* fd, Failure* f, ParentCache* cache) {
  *fd = -1;
  Fd owned;
  int p = -1;
  std::string base;
  if (int r = ParentOf(root, e.path, cache, &p, &owned, &base, f); r < 0) return r;
  const char* b = base.c_str();

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

// A layer's regular files, written by worker threads: open(O_CREAT|O_EXCL), write, chown,
// chmod, xattrs, mtime, close, for each file handed over with its content. On a disk where
// creating a file costs most of a millisecond, several threads creating at once finish much
// sooner; on any disk the JS thread is left with parsing and hashing. The caller decides what
// may run unordered: only new paths under directories that exist, and it drains the pool
// (Barrier) before anything that depends on or conflicts with a queued file. Only for private
// roots: workers cache parent directories like the JS thread does.
struct WriteJob {
  std::string path;
  Meta meta;
  std::vector<char> data;
};

class WritePool {
 public:
  WritePool(int root, unsigned threads) : root_(fcntl(root, F_DUPFD_CLOEXEC, 0)) {
    if (root_.get() < 0) {
      failed_ = true;
      failure_ = {errno, "fcntl", ""};
      return;
    }
    for (unsigned i = 0; i < threads; i++) threads_.emplace_back([this] { Run(); });
  }
  ~WritePool() { Stop(); }
  WritePool(const WritePool&) = delete;
  WritePool& operator=(const WritePool&) = delete;

  // Queues a file; waits while more than kMaxQueuedBytes are queued (backpressure).
  void Submit(WriteJob&& job) {
    if (threads_.empty()) return;  // the constructor failed: Barrier reports it
    std::unique_lock<std::mutex> lock(mu_);
    space_.wait(lock, [&] { return queuedBytes_ < kMaxQueuedBytes || queue_.empty(); });
    queuedBytes_ += job.data.size();
    queue_.push_back(std::move(job));
    work_.notify_one();
  }

  // Waits until every queued file is written; false (and the first failure) if one failed.
  bool Barrier(Failure* out) {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [&] { return queue_.empty() && active_ == 0; });
    if (!failed_) return true;
    *out = failure_;
    return false;
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    root_.Reset();  // now, not when the JS handle is collected
  }

 private:
  static constexpr size_t kMaxQueuedBytes = 32 << 20;

  void Run() {
    ParentCache cache;  // this thread's; its fds close when the thread ends
    for (;;) {
      WriteJob job;
      bool skip;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping
        job = std::move(queue_.front());
        queue_.pop_front();
        active_++;
        skip = failed_;  // after a failure the layer is lost anyway: drain without writing
      }
      Failure f;
      const bool ok = skip || Write(job, &cache, &f);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!ok && !failed_) {
          failed_ = true;
          failure_ = f;
        }
        active_--;
        queuedBytes_ -= job.data.size();
        space_.notify_all();
        if (queue_.empty() && active_ == 0) idle_.notify_all();
      }
    }
  }

  bool Write(const WriteJob& job, ParentCache* cache, Failure* f) {
    Entry e;
    e.path = job.path;
    e.kind = "file";
    int fd = -1;
    if (MakeEntry(root_.get(), e, &fd, f, cache) < 0) return false;
    Fd file(fd);
    size_t off = 0;
    while (off < job.data.size()) {
      ssize_t n = write(fd, job.data.data() + off, job.data.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        *f = {errno, "write", job.path};
        return false;
      }
      off += static_cast<size_t>(n);
    }
    if (ApplyMetaFd(fd, job.meta, job.path, f) < 0) return false;
    if (close(file.release()) != 0) {
      *f = {errno, "close", job.path};
      return false;
    }
    return true;
  }

  Fd root_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_, idle_, space_;
  std::deque<WriteJob> queue_;
  size_t queuedBytes_ = 0;
  unsigned active_ = 0;
  bool stop_ = false;
  bool failed_ = false;
  Failure failure_;
};

}  // namespace fsops

// ---- N-API glue ---------------------------------------------------------------------------

namespace {

using fsops::Failure;
using fsops::Fd;

Napi::Value Throw(Napi::Env env, const Failure& f) { return ThrowSystemError(env, f.err, f.syscall, f.path); }

bool GetFd(const Napi::CallbackInfo& info, size_t i, int* fd) {
  if (info.Length() <= i || !info[i].IsNumber()) return false;
  *fd = info[i].As<Napi::Number>().Int32Value();
  return *fd >= 0;
}

bool GetString(const Napi::CallbackInfo& info, size_t i, std::string* s) {
  if (info.Length() <= i || !info[i].IsString()) return false;
  *s = info[i].As<Napi::String>().Utf8Value();
  return true;
}

// Reads { uid, gid, mode, mtime, xattrs } from a JS object; absent fields are left alone.
// `mtime` is seconds since the epoch as a double; `xattrs` is [[name, Buffer], …].
bool ReadMeta(Napi::Env env, Napi::Object o, fsops::Meta* m) {
  Napi::Value uid = o.Get("uid"), gid = o.Get("gid"), mode = o.Get("mode"), mtime = o.Get("mtime");
  if (uid.IsNumber() && gid.IsNumber()) {
    m->hasOwner = true;
    m->uid = uid.As<Napi::Number>().Uint32Value();
    m->gid = gid.As<Napi::Number>().Uint32Value();
  }
  if (mode.IsNumber()) {
    m->hasMode = true;
    m->mode = mode.As<Napi::Number>().Uint32Value() & 07777;
  }
  if (mtime.IsNumber()) {
    double t = mtime.As<Napi::Number>().DoubleValue();
    if (std::isfinite(t)) {
      m->hasMtime = true;
      double sec = std::floor(t);
      m->mtime.tv_sec = static_cast<time_t>(sec);
      m->mtime.tv_nsec = static_cast<long>(std::llround((t - sec) * 1e9));
      if (m->mtime.tv_nsec >= 1000000000L) m->mtime.tv_nsec = 999999999L;
    }
  }
  Napi::Value x = o.Get("xattrs");
  if (x.IsArray()) {
    Napi::Array arr = x.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value pair = arr.Get(i);
      if (!pair.IsArray()) return false;
      Napi::Array p = pair.As<Napi::Array>();
      Napi::Value name = p.Get(0u), value = p.Get(1u);
      if (!name.IsString() || !value.IsBuffer()) return false;
      auto buf = value.As<Napi::Buffer<char>>();
      m->xattrs.emplace_back(name.As<Napi::String>().Utf8Value(),
                             std::vector<char>(buf.Data(), buf.Data() + buf.Length()));
    }
  }
  (void)env;
  return true;
}

// fsOpenRoot(dir: string, options?: { private?: boolean }): number
Napi::Value FsOpenRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir;
  if (!GetString(info, 0, &dir)) return ThrowTypeError(env, "fsOpenRoot(dir: string, options?: { private?: boolean })");
  bool priv = false;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value v = info[1].As<Napi::Object>().Get("private");
    priv = v.IsBoolean() && v.As<Napi::Boolean>().Value();
  }
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ThrowSystemError(env, errno, "open", dir);
  // A new root with this number: whatever was cached for an earlier fd of that number is stale.
  fsops::ForgetRoot(fd);
  if (priv) fsops::MarkPrivateRoot(fd);
  return Napi::Number::New(env, fd);
}

// fsCloseRoot(fd): void — closes a root and drops what was cached for it.
Napi::Value FsCloseRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return ThrowTypeError(env, "fsCloseRoot(fd: number)");
  fsops::ForgetRoot(fd);
  if (close(fd) != 0) return ThrowSystemError(env, errno, "close", "");
  return env.Undefined();
}

// fsWritePoolCreate(rootFd, threads): WritePool — see fsops::WritePool.
void FreeWritePool(Napi::Env, fsops::WritePool* pool) { delete pool; }

Napi::Value FsWritePoolCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  if (!GetFd(info, 0, &root) || info.Length() < 2 || !info[1].IsNumber()) return ThrowTypeError(env, "fsWritePoolCreate(rootFd: number, threads: number)");
  int threads = info[1].As<Napi::Number>().Int32Value();
  if (threads < 1 || threads > 64) return ThrowTypeError(env, "fsWritePoolCreate: threads must be 1..64");
  return Napi::External<fsops::WritePool>::New(env, new fsops::WritePool(root, static_cast<unsigned>(threads)), FreeWritePool);
}

fsops::WritePool* GetPool(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) return nullptr;
  return info[0].As<Napi::External<fsops::WritePool>>().Data();
}

// fsWritePoolSubmit(pool, path, meta: { uid?, gid?, mode?, mtime?, xattrs? }, data: Buffer): void
Napi::Value FsWritePoolSubmit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fsops::WritePool* pool = GetPool(info);
  std::string path;
  if (!pool || !GetString(info, 1, &path) || info.Length() < 4 || !info[2].IsObject() || !info[3].IsBuffer()) {
    return ThrowTypeError(env, "fsWritePoolSubmit(pool, path: string, meta: object, data: Buffer)");
  }
  fsops::WriteJob job;
  job.path = std::move(path);
  if (!ReadMeta(env, info[2].As<Napi::Object>(), &job.meta)) return ThrowTypeError(env, "meta.xattrs must be [name: string, value: Buffer][]");
  auto data = info[3].As<Napi::Buffer<char>>();
  job.data.assign(data.Data(), data.Data() + data.Length());
  pool->Submit(std::move(job));
  return env.Undefined();
}

// fsWritePoolBarrier(pool): void — waits for every queued file; throws the first failure.
Napi::Value FsWritePoolBarrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fsops::WritePool* pool = GetPool(info);
  if (!pool) return ThrowTypeError(env, "fsWritePoolBarrier(pool)");
  Failure f;
  if (!pool->Barrier(&f)) return Throw(env, f);
  return env.Undefined();
}

// fsWritePoolClose(pool): void — drains and stops the threads (without reporting failures).
Napi::Value FsWritePoolClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fsops::WritePool* pool = GetPool(info);
  if (!pool) return ThrowTypeError(env, "fsWritePoolClose(pool)");
  pool->Stop();
  return env.Undefined();
}

// fsMakeEntry(rootFd, { path, kind, target?, major?, minor?, uid?, gid?, mode?, mtime?, xattrs? }): number
Napi::Value FsMakeEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  if (!GetFd(info, 0, &root) || info.Length() < 2 || !info[1].IsObject()) {
    return ThrowTypeError(env, "fsMakeEntry(rootFd: number, entry: object)");
  }
  Napi::Object o = info[1].As<Napi::Object>();
  fsops::Entry e;
  Napi::Value path = o.Get("path"), kind = o.Get("kind"), target = o.Get("target");
  if (!path.IsString() || !kind.IsString()) return ThrowTypeError(env, "entry.path and entry.kind must be strings");
  e.path = path.As<Napi::String>().Utf8Value();
  e.kind = kind.As<Napi::String>().Utf8Value();
  if (target.IsString()) e.target = target.As<Napi::String>().Utf8Value();
  if (o.Get("major").IsNumber()) e.major = o.Get("major").As<Napi::Number>().Uint32Value();
  if (o.Get("minor").IsNumber()) e.minor = o.Get("minor").As<Napi::Number>().Uint32Value();
  if (!ReadMeta(env, o, &e.meta)) return ThrowTypeError(env, "entry.xattrs must be [name: string, value: Buffer][]");
  Failure f;
  int fd = -1;
  if (fsops::MakeEntry(root, e, &fd, &f, fsops::IsPrivateRoot(root) ? &fsops::g_main_cache : nullptr) < 0) return Throw(env, f);
  return Napi::Number::New(env, fd);
}

// fsFinishFile(fd, { uid?, gid?, mode?, mtime?, xattrs? }): void — applies metadata, closes fd.
Napi::Value FsFinishFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd) || info.Length() < 2 || !info[1].IsObject()) {
    return ThrowTypeError(env, "fsFinishFile(fd: number, meta: object)");
  }
  Fd owned(fd);
  fsops::Meta m;
  if (!ReadMeta(env, info[1].As<Napi::Object>(), &m)) return ThrowTypeError(env, "meta.xattrs must be [name: string, value: Buffer][]");
  Failure f;
  std::string path = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  if (fsops::ApplyMetaFd(fd, m, path, &f) < 0) return Throw(env, f);
  if (close(owned.release()) != 0) return ThrowSystemError(env, errno, "close", path);
  return env.Undefined();
}

// fsRemoveAt(rootFd, path): boolean — recursive; false when nothing was there.
Napi::Value FsRemoveAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsRemoveAt(rootFd: number, path: string)");
  Fd parent;
  std::string base;
  Failure f;
  int r = fsops::OpenParent(root, path, &parent, &base, &f);
  if (r == -ENOENT || r == -ENOTDIR) return Napi::Boolean::New(env, false);
  if (r < 0) return Throw(env, f);
  r = fsops::RemoveTree(parent.get(), base.c_str(), 0);
  if (r == -ENOENT) return Napi::Boolean::New(env, false);
  if (r < 0) return ThrowSystemError(env, -r, "unlinkat", path);
  return Napi::Boolean::New(env, true);
}

// fsRenameAt(rootFd, from, to): renames `from` over `to` atomically; both must be in one
// directory, resolved once inside the root (a reader of `to` sees the old file or the new one,
// never a missing or half-written one).
Napi::Value FsRenameAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string from, to;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &from) || !GetString(info, 2, &to)) {
    return ThrowTypeError(env, "fsRenameAt(rootFd: number, from: string, to: string)");
  }
  Fd parent;
  std::string from_base, to_dir, to_base;
  Failure f;
  if (fsops::OpenParent(root, from, &parent, &from_base, &f) < 0) return Throw(env, f);
  std::string from_dir;
  if (!fsops::SplitPath(from, &from_dir, &from_base) || !fsops::SplitPath(to, &to_dir, &to_base) || from_dir != to_dir) {
    return ThrowSystemError(env, EXDEV, "renameat", to);
  }
  if (renameat(parent.get(), from_base.c_str(), parent.get(), to_base.c_str()) < 0) return ThrowSystemError(env, errno, "renameat", to);
  fsops::g_epoch.fetch_add(1);
  return env.Undefined();
}

// fsReadDirAt(rootFd, path): string[] — "" lists the root.
Napi::Value FsReadDirAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsReadDirAt(rootFd: number, path: string)");
  int fd = fsops::OpenInRoot(root, path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ThrowSystemError(env, -fd, "openat2", path);
  DIR* d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return ThrowSystemError(env, e, "fdopendir", path);
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  while (struct dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    out.Set(i++, Napi::String::New(env, e->d_name));
  }
  closedir(d);
  return out;
}

// fsLstatAt(rootFd, path): { mode, uid, gid, size, nlink, ino, dev, rdevMajor, rdevMinor, mtime } | null
Napi::Value FsLstatAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsLstatAt(rootFd: number, path: string)");
  struct stat st;
  if (path.empty()) {
    if (fstat(root, &st) != 0) return ThrowSystemError(env, errno, "fstat", ".");
  } else {
    Fd parent;
    std::string base;
    Failure f;
    int r = fsops::OpenParent(root, path, &parent, &base, &f);
    if (r == -ENOENT || r == -ENOTDIR) return env.Null();
    if (r < 0) return Throw(env, f);
    if (fstatat(parent.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return env.Null();
      return ThrowSystemError(env, errno, "fstatat", path);
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("mode", Napi::Number::New(env, st.st_mode));
  o.Set("uid", Napi::Number::New(env, st.st_uid));
  o.Set("gid", Napi::Number::New(env, st.st_gid));
  o.Set("size", Napi::Number::New(env, static_cast<double>(st.st_size)));
  o.Set("nlink", Napi::Number::New(env, static_cast<double>(st.st_nlink)));
  o.Set("ino", Napi::Number::New(env, static_cast<double>(st.st_ino)));
  o.Set("dev", Napi::Number::New(env, static_cast<double>(st.st_dev)));
  o.Set("rdevMajor", Napi::Number::New(env, major(st.st_rdev)));
  o.Set("rdevMinor", Napi::Number::New(env, minor(st.st_rdev)));
  o.Set("mtime", Napi::Number::New(env, static_cast<double>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1e9));
  return o;
}

// fsOpenAt(rootFd, path): number — read-only, never following a symlink; only a regular file
// or a directory is ever opened.
//
// The paths read here (a running container's upper dir, a live container's root) are written
// by the container, which can swap a file for a device node, a FIFO or a symlink between any
// lstat and the open. open(2) of a device runs its driver's open on the host (a disk, a tty
// that becomes our controlling terminal) and a FIFO's reader open can wait for a writer. So the
// entry is pinned with O_PATH (which opens nothing), its type checked on that very inode, and
// only then reopened through /proc/self/fd for reading: the reopen names the pinned inode, not
// the path, so a swap after the check changes nothing.
Napi::Value FsOpenAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsOpenAt(rootFd: number, path: string)");
  int pinned = fsops::OpenInRoot(root, path, O_PATH | O_NOFOLLOW);
  if (pinned < 0) return ThrowSystemError(env, -pinned, "openat2", path);
  struct stat st;
  if (fstat(pinned, &st) != 0) {
    int e = errno;
    close(pinned);
    return ThrowSystemError(env, e, "fstat", path);
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    close(pinned);
    // ELOOP for a symlink, as O_NOFOLLOW reports it; ENXIO ("no such device") for the rest.
    return ThrowSystemError(env, S_ISLNK(st.st_mode) ? ELOOP : ENXIO, "open (not a regular file or directory)", path);
  }
  std::string proc = "/proc/self/fd/" + std::to_string(pinned);
  int fd = open(proc.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
  int e = errno;
  close(pinned);
  if (fd < 0) return ThrowSystemError(env, e, "open", path);
  return Napi::Number::New(env, fd);
}

// fsSetXattrAt(rootFd, path, name, value: Buffer): void — "" is the root itself.
Napi::Value FsSetXattrAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path, name;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path) || !GetString(info, 2, &name) || info.Length() < 4 || !info[3].IsBuffer()) {
    return ThrowTypeError(env, "fsSetXattrAt(rootFd: number, path: string, name: string, value: Buffer)");
  }
  auto value = info[3].As<Napi::Buffer<char>>();
  std::string proc;
  Fd parent;
  if (path.empty()) {
    proc = fsops::ProcPath(root, "");
  } else {
    std::string base;
    Failure f;
    if (fsops::OpenParent(root, path, &parent, &base, &f) < 0) return Throw(env, f);
    proc = fsops::ProcPath(parent.get(), base);
  }
  if (lsetxattr(proc.c_str(), name.c_str(), value.Data(), value.Length(), 0) != 0) {
    return ThrowSystemError(env, errno, "lsetxattr", path + " (" + name + ")");
  }
  return env.Undefined();
}

// fsListXattrsAt(rootFd, path): [name, Buffer][]
Napi::Value FsListXattrsAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsListXattrsAt(rootFd: number, path: string)");
  Fd parent;
  std::string proc;
  if (path.empty()) {
    proc = fsops::ProcPath(root, "");
  } else {
    std::string base;
    Failure f;
    if (fsops::OpenParent(root, path, &parent, &base, &f) < 0) return Throw(env, f);
    proc = fsops::ProcPath(parent.get(), base);
  }
  std::vector<char> names(4096);
  ssize_t n;
  while ((n = llistxattr(proc.c_str(), names.data(), names.size())) < 0 && errno == ERANGE) names.resize(names.size() * 4);
  if (n < 0) {
    if (errno == ENOTSUP) return Napi::Array::New(env);
    return ThrowSystemError(env, errno, "llistxattr", path);
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (ssize_t off = 0; off < n;) {
    std::string name(names.data() + off);
    off += static_cast<ssize_t>(name.size()) + 1;
    std::vector<char> value(256);
    ssize_t v;
    while ((v = lgetxattr(proc.c_str(), name.c_str(), value.data(), value.size())) < 0 && errno == ERANGE) value.resize(value.size() * 4);
    if (v < 0) {
      if (errno == ENODATA) continue;
      return ThrowSystemError(env, errno, "lgetxattr", path + " (" + name + ")");
    }
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::String::New(env, name));
    pair.Set(1u, Napi::Buffer<char>::Copy(env, value.data(), static_cast<size_t>(v)));
    out.Set(i++, pair);
  }
  return out;
}

// fsSetTimesAt(rootFd, path, mtime: number /* seconds */): void — atime = mtime, no follow.
Napi::Value FsSetTimesAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path) || info.Length() < 3 || !info[2].IsNumber()) {
    return ThrowTypeError(env, "fsSetTimesAt(rootFd: number, path: string, mtime: number)");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("mtime", info[2]);
  fsops::Meta m;
  ReadMeta(env, o, &m);
  if (!m.hasMtime) return env.Undefined();
  Failure f;
  if (path.empty()) {
    if (fsops::ApplyMetaFd(root, m, ".", &f) < 0) return Throw(env, f);
    return env.Undefined();
  }
  Fd parent;
  std::string base;
  if (fsops::OpenParent(root, path, &parent, &base, &f) < 0) return Throw(env, f);
  if (fsops::ApplyMetaAt(parent.get(), base, true, m, path, &f) < 0) return Throw(env, f);
  return env.Undefined();
}

// fsSync(fd): void — syncfs(2) on the file system holding fd: one call makes a whole unpacked
// layer durable before it is renamed into place.
Napi::Value FsSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return ThrowTypeError(env, "fsSync(fd: number)");
  if (syncfs(fd) != 0) return ThrowSystemError(env, errno, "syncfs", "");
  return env.Undefined();
}

// fsSyncAsync(fd): Promise<void> — syncfs(2) on a libuv thread-pool thread. A layer's data
// can take long to reach the disk; the main thread keeps unpacking other layers meanwhile, and
// the store coalesces concurrent requests into one call. The fd is dup'ed so that the caller
// may close its own at once.
class SyncFsWorker : public Napi::AsyncWorker {
 public:
  SyncFsWorker(Napi::Env env, int fd)
      : Napi::AsyncWorker(env, "berth:syncfs"), fd_(fd), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    if (syncfs(fd_.get()) != 0) err_ = errno;
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_ == 0) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    deferred_.Reject(MakeSystemError(env, err_, "syncfs", ""));
  }

 private:
  Fd fd_;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

Napi::Value FsSyncAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return ThrowTypeError(env, "fsSyncAsync(fd: number)");
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    // A promise-returning function reports failures by rejecting, never by throwing.
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(MakeSystemError(env, errno, "fcntl", ""));
    return deferred.Promise();
  }
  auto* worker = new SyncFsWorker(env, dup);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// fsFlock(fd, op: 'exclusive' | 'shared' | 'unlock'): boolean — never blocks; false when
// another open file description holds a conflicting lock.
Napi::Value FsFlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  std::string op;
  if (!GetFd(info, 0, &fd) || !GetString(info, 1, &op)) return ThrowTypeError(env, "fsFlock(fd: number, op: 'exclusive' | 'shared' | 'unlock')");
  int how = op == "exclusive" ? LOCK_EX : op == "shared" ? LOCK_SH : op == "unlock" ? LOCK_UN : -1;
  if (how < 0) return ThrowTypeError(env, "fsFlock: op must be 'exclusive', 'shared' or 'unlock'");
  for (;;) {
    if (flock(fd, how | LOCK_NB) == 0) return Napi::Boolean::New(env, true);
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    return ThrowSystemError(env, errno, "flock", "");
  }
}

// ---- zstd ----

struct ZstdStream {
  ZSTD_DStream* ds = nullptr;
  bool frameDone = false;  // true between frames: where the input may legally end
  bool ended = false;
  // One step's output. Its size is ZSTD_DStreamOutSize() (one block), never anything a frame
  // header claims: a few hundred KiB of hostile input decode to gigabytes (a decompression
  // bomb), so each call hands back at most this much and JavaScript loops, consuming as it goes.
  std::vector<char> scratch;
};

void FreeZstd(Napi::Env, ZstdStream* z) {
  if (z->ds) ZSTD_freeDStream(z->ds);
  delete z;
}

// A decoder failure is a SystemError like any other, with `syscall: 'zstd'`: ENOMEM when libzstd
// could not allocate, EINVAL for input that is not a valid frame (corrupt, a checksum mismatch,
// a window larger than we allow), EIO for input that stops inside a frame.
Napi::Value ZstdError(Napi::Env env, size_t code) {
  int err = ZSTD_getErrorCode(code) == ZSTD_error_memory_allocation ? ENOMEM : EINVAL;
  return ThrowSystemError(env, err, "zstd", "", ZSTD_getErrorName(code));
}

// zstdCreate(): ZstdHandle
Napi::Value ZstdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* z = new ZstdStream();
  z->ds = ZSTD_createDStream();
  if (!z->ds) {
    delete z;
    return ThrowSystemError(env, ENOMEM, "zstd", "", "ZSTD_createDStream");
  }
  // Bound the window a hostile frame may ask for (128 MiB, zstd's own default for --long).
  ZSTD_DCtx_setParameter(z->ds, ZSTD_d_windowLogMax, 27);
  z->scratch.resize(ZSTD_DStreamOutSize());
  return Napi::External<ZstdStream>::New(env, z, FreeZstd);
}

ZstdStream* GetZstd(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) return nullptr;
  auto* z = info[0].As<Napi::External<ZstdStream>>().Data();
  return z && z->ds && !z->ended ? z : nullptr;
}

// zstdDecompress(handle, input: Buffer, offset: number): { output, offset, more } — one
// bounded step: decodes from input[offset..] into at most one ZSTD_DStreamOutSize() buffer.
// `offset` is where the next step starts; `more` says the output buffer filled up, so the
// decoder may hold more output even when the input is consumed (call again).
Napi::Value ZstdDecompress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ZstdStream* z = GetZstd(info);
  if (!z || info.Length() < 3 || !info[1].IsBuffer() || !info[2].IsNumber()) {
    return ThrowTypeError(env, "zstdDecompress(handle: ZstdHandle, input: Buffer, offset: number)");
  }
  auto in = info[1].As<Napi::Buffer<char>>();
  double off = info[2].As<Napi::Number>().DoubleValue();
  if (!(off >= 0) || off > static_cast<double>(in.Length())) return ThrowTypeError(env, "zstdDecompress: offset out of range");
  ZSTD_inBuffer input{in.Data(), in.Length(), static_cast<size_t>(off)};
  ZSTD_outBuffer output{z->scratch.data(), z->scratch.size(), 0};
  size_t r = ZSTD_decompressStream(z->ds, &output, &input);
  if (ZSTD_isError(r)) return ZstdError(env, r);
  // 0 means a frame was completely decoded and flushed: a legal place for input to end.
  z->frameDone = r == 0;
  Napi::Object result = Napi::Object::New(env);
  result.Set("output", Napi::Buffer<char>::Copy(env, z->scratch.data(), output.pos));
  result.Set("offset", Napi::Number::New(env, static_cast<double>(input.pos)));
  result.Set("more", Napi::Boolean::New(env, output.pos == output.size));
  return result;
}

// zstdEnd(handle): void — throws when the input stopped in the middle of a frame.
Napi::Value ZstdEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ZstdStream* z = GetZstd(info);
  if (!z) return ThrowTypeError(env, "zstdEnd(handle: ZstdHandle)");
  z->ended = true;
  bool complete = z->frameDone;
  ZSTD_freeDStream(z->ds);
  z->ds = nullptr;
  if (!complete) return ThrowSystemError(env, EIO, "zstd", "", "input ends in the middle of a frame");
  return env.Undefined();
}

}  // namespace

void RegisterFsOps(Napi::Env env, Napi::Object exports) {
  exports.Set("fsOpenRoot", Napi::Function::New(env, FsOpenRoot, "fsOpenRoot"));
  exports.Set("fsCloseRoot", Napi::Function::New(env, FsCloseRoot, "fsCloseRoot"));
  exports.Set("fsWritePoolCreate", Napi::Function::New(env, FsWritePoolCreate, "fsWritePoolCreate"));
  exports.Set("fsWritePoolSubmit", Napi::Function::New(env, FsWritePoolSubmit, "fsWritePoolSubmit"));
  exports.Set("fsWritePoolBarrier", Napi::Function::New(env, FsWritePoolBarrier, "fsWritePoolBarrier"));
  exports.Set("fsWritePoolClose", Napi::Function::New(env, FsWritePoolClose, "fsWritePoolClose"));
  exports.Set("fsMakeEntry", Napi::Function::New(env, FsMakeEntry, "fsMakeEntry"));
  exports.Set("fsFinishFile", Napi::Function::New(env, FsFinishFile, "fsFinishFile"));
  exports.Set("fsRemoveAt", Napi::Function::New(env, FsRemoveAt, "fsRemoveAt"));
  exports.Set("fsRenameAt", Napi::Function::New(env, FsRenameAt, "fsRenameAt"));
  exports.Set("fsReadDirAt", Napi::Function::New(env, FsReadDirAt, "fsReadDirAt"));
  exports.Set("fsLstatAt", Napi::Function::New(env, FsLstatAt, "fsLstatAt"));
  exports.Set("fsOpenAt", Napi::Function::New(env, FsOpenAt, "fsOpenAt"));
  exports.Set("fsSetXattrAt", Napi::Function::New(env, FsSetXattrAt, "fsSetXattrAt"));
  exports.Set("fsListXattrsAt", Napi::Function::New(env, FsListXattrsAt, "fsListXattrsAt"));
  exports.Set("fsSetTimesAt", Napi::Function::New(env, FsSetTimesAt, "fsSetTimesAt"));
  exports.Set("fsSync", Napi::Function::New(env, FsSync, "fsSync"));
  exports.Set("fsSyncAsync", Napi::Function::New(env, FsSyncAsync, "fsSyncAsync"));
  exports.Set("fsFlock", Napi::Function::New(env, FsFlock, "fsFlock"));
  exports.Set("zstdCreate", Napi::Function::New(env, ZstdCreate, "zstdCreate"));
  exports.Set("zstdDecompress", Napi::Function::New(env, ZstdDecompress, "zstdDecompress"));
  exports.Set("zstdEnd", Napi::Function::New(env, ZstdEnd, "zstdEnd"));
}

}  // namespace berth
