// Confined file-system operations for unpacking image layers and reading or copying trees a
// container (or an image) controls. Plain C++: every function returns 0 (or a count, an fd)
// on success and -errno on failure with *f saying which syscall failed on which path; none
// touches JavaScript (the N-API glue is fs-ops-napi.cc).
//
// Every path an operation takes is relative to a root directory fd and is resolved with
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV):
// the kernel itself guarantees that no `..`, absolute symlink or symlinked parent inside a
// (hostile) layer can make a write land outside the root, whatever races happen in between.
// The final component is always acted on with *at() calls that do not follow symlinks.
#pragma once

#include <sys/types.h>
#include <sys/stat.h>

#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace berth::fsops {

// A failed syscall: what failed and on which (root-relative) path.
struct Failure {
  int err = 0;
  const char* syscall = "";
  std::string path;
};

// Owns one descriptor.
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
  void Reset();

 private:
  int fd_ = -1;
};

using Xattrs = std::vector<std::pair<std::string, std::vector<char>>>;

// Metadata to apply; what is not `has*` is left alone.
struct Meta {
  bool hasOwner = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool hasMode = false;
  mode_t mode = 0;
  bool hasMtime = false;
  struct timespec mtime {};
  Xattrs xattrs;
};

// One tar entry to create.
struct Entry {
  std::string path;
  std::string kind;  // file | dir | symlink | link | char | block | fifo
  std::string target;
  unsigned major = 0, minor = 0;
  Meta meta;
};

// How paths below one root are resolved. The default (both false) is the strict lookup above.
// `follow`: symlinks on the way are followed, but *inside* the root (RESOLVE_IN_ROOT: an
// absolute target or a `..` restarts or stops at the root), never magic links; the final
// component of an entry is still never followed by the *at() calls. For a container's root,
// whose symlinks `docker cp` resolves as the container would. `cross_mounts`: a lookup may
// enter a mount below the root (a container's volumes and binds).
struct RootMode {
  bool follow = false;
  bool cross_mounts = false;
  // Create new entries with this fsuid/fsgid (the calling thread's, for the syscall only). A
  // running user-namespaced container's overlay belongs to its user namespace, where host root
  // is unmapped: the kernel refuses to make an inode for an unmapped creator (EOVERFLOW).
  bool create_as = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Opens `dir` (O_RDONLY|O_DIRECTORY) as a root. `private_root`: nothing but this process writes
// below it, so parent directories resolved for one entry may be reused for the next (fs-ops.cc).
int OpenRoot(const std::string& dir, bool private_root, RootMode mode, Failure* f);
// Opens the directory `path` below `root` (resolved in `root`'s mode, the final component
// followed when that mode follows) as a new root of its own, resolved in `mode`.
int OpenRootAt(int root, const std::string& path, RootMode mode, Failure* f);
// Makes `fd`, a directory this process opened itself (a detached mount), a root in `mode`.
void AdoptRoot(int fd, RootMode mode);
// Closes a root and forgets what was cached for it.
int CloseRoot(int root, Failure* f);

// Creates one entry. Whatever exists at the path is replaced, except that an existing
// directory stays (its contents survive) when the entry is a directory too: tar semantics.
// *fd is a write fd for regular files (finish it with FinishFile), -1 otherwise.
int MakeEntry(int root, const Entry& e, int* fd, Failure* f);
// chown, chmod, xattrs, mtime (in that order) on a file fd, then closes it (always). A chown or
// chmod that changes nothing is skipped: for files MakeEntry just made, and directories.
int FinishFile(int fd, const Meta& m, const std::string& path, Failure* f);

// Removes a path recursively, never following a symlink: 1, or 0 when nothing was there.
int RemoveAt(int root, const std::string& path, Failure* f);
// Renames `from` over `to` atomically; both must be in one directory of the root.
int RenameAt(int root, const std::string& from, const std::string& to, Failure* f);
// The names in a directory ("" is the root), without "." and "..".
int ReadDirAt(int root, const std::string& path, std::vector<std::string>* names, Failure* f);
// lstat: 1, or 0 when the path (or a parent) does not exist. "" is the root.
int LstatAt(int root, const std::string& path, struct stat* st, Failure* f);
// Opens a regular file or directory read-only; anything else is refused (ENXIO, ELOOP for a
// symlink). Returns the fd.
int OpenAt(int root, const std::string& path, Failure* f);
int SetXattrAt(int root, const std::string& path, const std::string& name, const char* value, size_t size, Failure* f);
// Every xattr of a path ("" is the root), not following a final symlink; none where the file
// system has none (ENOTSUP).
int ListXattrsAt(int root, const std::string& path, Xattrs* out, Failure* f);
// Sets atime and mtime to m.mtime without following a final symlink (nothing without one).
int SetTimesAt(int root, const std::string& path, const Meta& m, Failure* f);
// syncfs(2) on the file system holding fd.
int SyncFs(int fd, Failure* f);
// Sets or clears the "top of a directory hierarchy" flag (FS_TOPDIR_FL, `chattr +T`) of the
// directory fd: 1 if it was set before, 0 if not, kNoTopDirFlag where the file system has no
// such flag (ENOTTY, EOPNOTSUPP, EINVAL), -errno otherwise.
constexpr int kNoTopDirFlag = 2;
int SetTopDir(int fd, bool on, Failure* f);
// Non-blocking flock(2) (`how`: LOCK_EX, LOCK_SH or LOCK_UN): 1, or 0 when another open file
// description holds a conflicting lock.
int TryFlock(int fd, int how, Failure* f);

struct ParentCache;

// A layer's new entries, written by worker threads: regular files (open(O_CREAT|O_EXCL), write,
// chown, chmod, xattrs, mtime, close) handed over with their content or copied from a file
// below another root, and symlinks. On a disk where creating a file costs most of a
// millisecond, several threads creating at once finish much sooner; on any disk the JS thread
// is left with parsing and hashing. The caller decides what may run unordered: only new paths
// under directories that exist, and it drains the pool (Barrier) before anything that depends
// on or conflicts with a queued entry. Below a private root the workers cache parent
// directories like the JS thread does; below any other root they resolve every parent afresh
// (strictly, in the root), as MakeEntry does there.
//
// Every entry of one parent directory goes to the same worker (lanes by a hash of the parent):
// creating a name takes the directory's inode lock, so two workers creating in one directory
// only take turns, the waiter spinning on the lock (measured: 6 % of a pull's CPU, see
// docs/benchmarks.md); one worker per directory also keeps its one-entry parent cache hitting.
//
// A file too large to queue whole is streamed: kOpen creates it (its metadata kept for the end),
// kAppend jobs carry its content as it arrives, kClose applies the metadata and closes it. All
// three name the same path, so they land in one lane, in order, and the worker holds the open
// file between them; the caller opens one streamed file at a time per pool.
struct WriteJob {
  enum class Kind { kData, kCopy, kSymlink, kOpen, kAppend, kClose };
  Kind kind = Kind::kData;
  std::string path;
  Meta meta;
  // kData: the content; kAppend: the next piece of the streamed file.
  std::vector<char> data;
  // kCopy: a regular file below `srcRoot` (opened with OpenAt, copied with copy_file_range),
  // with its xattrs except overlay's own, after those in `meta`. The caller keeps `srcRoot`
  // open until the pool is stopped.
  int srcRoot = -1;
  std::string srcPath;
  // kSymlink: the link's target.
  std::string target;
};

class WritePool {
 public:
  WritePool(int root, unsigned threads);
  ~WritePool() { Stop(); }
  WritePool(const WritePool&) = delete;
  WritePool& operator=(const WritePool&) = delete;

  // Queues an entry; waits while more than kMaxQueuedBytes of content or kMaxQueuedJobs
  // entries are queued (backpressure: a copy job carries no bytes, and a tree of a million
  // files must not become a million queued jobs).
  void Submit(WriteJob&& job);
  // Waits until every queued entry is written; false (and the first failure) if one failed.
  bool Barrier(Failure* out);
  // Whether every queued entry is written (or failed): a Barrier now would not wait.
  bool Idle();
  // Whether the queue has room for another piece of input's entries (1 MiB of content and 512
  // entries below the limits): the caller can then submit them without Submit waiting.
  bool HasRoom();
  // Stops the threads after the queue drains; closes the root now, not when the JS handle is
  // collected.
  void Stop();

 private:
  static constexpr size_t kMaxQueuedBytes = 32 << 20;
  static constexpr size_t kMaxQueuedJobs = 8192;

  // One worker's queue.
  struct Lane {
    std::deque<WriteJob> queue;
    std::condition_variable work;
  };

  // The file a worker is streaming (kOpen .. kClose) and the metadata it gets at the end.
  struct Streamed {
    Fd fd;
    Meta meta;
  };

  void Run(Lane* lane);
  bool Write(const WriteJob& job, ParentCache* cache, Streamed* streamed, Failure* f);

  Fd root_;
  // Whether the root was opened private (decided on the creating thread, which owns that list).
  const bool cacheParents_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable idle_, space_;
  std::vector<Lane> lanes_;
  size_t queuedJobs_ = 0;
  size_t queuedBytes_ = 0;
  unsigned active_ = 0;
  bool stop_ = false;
  bool failed_ = false;
  Failure failure_;
};

}  // namespace berth::fsops
