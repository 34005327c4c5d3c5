// N-API glue of the confined file-system operations (fs-ops.h): converts arguments, calls the
// kernel side, turns a Failure into the one SystemError (napi-errors.h). The only syscalls
// here handle descriptors it was given (a dup for the async worker, a close on bad arguments).
#include "fs-ops-napi.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <vector>

#include "detached-overlay.h"
#include "fs-ops.h"
#include "napi-errors.h"

namespace berth {
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

bool GetBool(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

// { follow?, crossMounts? } of a root (fsops::RootMode).
fsops::RootMode ReadRootMode(const Napi::CallbackInfo& info, size_t i) {
  fsops::RootMode mode;
  if (info.Length() > i && info[i].IsObject()) {
    Napi::Object o = info[i].As<Napi::Object>();
    mode.follow = GetBool(o, "follow");
    mode.cross_mounts = GetBool(o, "crossMounts");
    Napi::Value as = o.Get("createAs");
    if (as.IsObject()) {
      Napi::Value uid = as.As<Napi::Object>().Get("uid"), gid = as.As<Napi::Object>().Get("gid");
      if (uid.IsNumber() && gid.IsNumber()) {
        mode.create_as = true;
        mode.uid = uid.As<Napi::Number>().Uint32Value();
        mode.gid = gid.As<Napi::Number>().Uint32Value();
      }
    }
  }
  return mode;
}

// fsOpenRoot(dir: string, options?: { private?, follow?, crossMounts? }): number
Napi::Value FsOpenRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir;
  if (!GetString(info, 0, &dir)) return ThrowTypeError(env, "fsOpenRoot(dir: string, options?: { private?: boolean, follow?: boolean, crossMounts?: boolean })");
  bool priv = info.Length() > 1 && info[1].IsObject() && GetBool(info[1].As<Napi::Object>(), "private");
  Failure f;
  int fd = fsops::OpenRoot(dir, priv, ReadRootMode(info, 1), &f);
  if (fd < 0) return Throw(env, f);
  return Napi::Number::New(env, fd);
}

// fsOpenRootAt(rootFd, path, options?: { follow?, crossMounts? }): number
Napi::Value FsOpenRootAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) {
    return ThrowTypeError(env, "fsOpenRootAt(rootFd: number, path: string, options?: { follow?: boolean, crossMounts?: boolean })");
  }
  Failure f;
  int fd = fsops::OpenRootAt(root, path, ReadRootMode(info, 2), &f);
  if (fd < 0) return Throw(env, f);
  return Napi::Number::New(env, fd);
}

// fsMountOverlay({ lowerDirs, upperDir, workDir, readonly?, userxattr? }, options?: { follow?,
// crossMounts? }): number — a root fd of a detached overlay mount (overlay::MountDetachedOverlay).
Napi::Value FsMountOverlay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "fsMountOverlay(spec: { lowerDirs: string[], upperDir: string, workDir: string, readonly?: boolean, userxattr?: boolean }, options?: { follow?: boolean })";
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowTypeError(env, usage);
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value lowers = o.Get("lowerDirs"), upper = o.Get("upperDir"), work = o.Get("workDir");
  if (!lowers.IsArray() || !upper.IsString() || !work.IsString()) return ThrowTypeError(env, usage);
  overlay::DetachedOverlay spec;
  Napi::Array arr = lowers.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) return ThrowTypeError(env, usage);
    spec.lower_dirs.push_back(v.As<Napi::String>().Utf8Value());
  }
  spec.upper_dir = upper.As<Napi::String>().Utf8Value();
  spec.work_dir = work.As<Napi::String>().Utf8Value();
  spec.readonly = GetBool(o, "readonly");
  spec.userxattr = GetBool(o, "userxattr");
  Failure f;
  int fd = overlay::MountDetachedOverlay(spec, &f);
  if (fd < 0) return Throw(env, f);
  fsops::AdoptRoot(fd, ReadRootMode(info, 1));
  return Napi::Number::New(env, fd);
}

// fsCloseRoot(fd): void
Napi::Value FsCloseRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return ThrowTypeError(env, "fsCloseRoot(fd: number)");
  Failure f;
  if (fsops::CloseRoot(fd, &f) < 0) return Throw(env, f);
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

// fsWritePoolSubmit(pool, path, meta: { uid?, gid?, mode?, mtime?, xattrs? },
//                   content: Buffer | Buffer[] | { symlink: string } | { copyFrom: rootFd, path: string }
//                            | { stream: 'open' | 'end' } | { append: Buffer }): void
// An array is one file's content in pieces, joined here (one copy, not a Buffer.concat first).
// A streamed file: { stream: 'open' } (meta applies at the end), { append } per piece, then
// { stream: 'end' } — see fsops::WriteJob.
Napi::Value FsWritePoolSubmit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fsops::WritePool* pool = GetPool(info);
  std::string path;
  const char* usage = "fsWritePoolSubmit(pool, path: string, meta: object, content: Buffer | Buffer[] | { symlink: string } | { copyFrom: number, path: string } | { stream: 'open' | 'end' } | { append: Buffer })";
  if (!pool || !GetString(info, 1, &path) || info.Length() < 4 || !info[2].IsObject() || !(info[3].IsBuffer() || info[3].IsObject())) {
    return ThrowTypeError(env, usage);
  }
  fsops::WriteJob job;
  job.path = std::move(path);
  if (!ReadMeta(env, info[2].As<Napi::Object>(), &job.meta)) return ThrowTypeError(env, "meta.xattrs must be [name: string, value: Buffer][]");
  if (info[3].IsBuffer()) {
    auto data = info[3].As<Napi::Buffer<char>>();
    job.data.assign(data.Data(), data.Data() + data.Length());
  } else if (info[3].IsArray()) {
    Napi::Array pieces = info[3].As<Napi::Array>();
    const uint32_t n = pieces.Length();
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value piece = pieces.Get(i);
      if (!piece.IsBuffer()) return ThrowTypeError(env, usage);
      total += piece.As<Napi::Buffer<char>>().Length();
    }
    job.data.reserve(total);
    for (uint32_t i = 0; i < n; i++) {
      auto piece = pieces.Get(i).As<Napi::Buffer<char>>();
      job.data.insert(job.data.end(), piece.Data(), piece.Data() + piece.Length());
    }
  } else {
    Napi::Object c = info[3].As<Napi::Object>();
    Napi::Value symlink = c.Get("symlink"), copyFrom = c.Get("copyFrom"), from = c.Get("path");
    Napi::Value stream = c.Get("stream"), append = c.Get("append");
    if (append.IsBuffer()) {
      job.kind = fsops::WriteJob::Kind::kAppend;
      auto data = append.As<Napi::Buffer<char>>();
      job.data.assign(data.Data(), data.Data() + data.Length());
    } else if (stream.IsString()) {
      const std::string what = stream.As<Napi::String>().Utf8Value();
      if (what == "open") job.kind = fsops::WriteJob::Kind::kOpen;
      else if (what == "end") job.kind = fsops::WriteJob::Kind::kClose;
      else return ThrowTypeError(env, usage);
    } else if (symlink.IsString()) {
      job.kind = fsops::WriteJob::Kind::kSymlink;
      job.target = symlink.As<Napi::String>().Utf8Value();
    } else if (copyFrom.IsNumber() && from.IsString() && copyFrom.As<Napi::Number>().Int32Value() >= 0) {
      job.kind = fsops::WriteJob::Kind::kCopy;
      job.srcRoot = copyFrom.As<Napi::Number>().Int32Value();
      job.srcPath = from.As<Napi::String>().Utf8Value();
    } else {
      return ThrowTypeError(env, usage);
    }
  }
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

// fsWritePoolIdle(pool): boolean — whether a barrier now would return at once.
Napi::Value FsWritePoolIdle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fsops::WritePool* pool = GetPool(info);
  if (!pool) return ThrowTypeError(env, "fsWritePoolIdle(pool)");
  return Napi::Boolean::New(env, pool->Idle());
}

// fsWritePoolHasRoom(pool): boolean — whether more entries can be queued without Submit waiting.
Napi::Value FsWritePoolHasRoom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fsops::WritePool* pool = GetPool(info);
  if (!pool) return ThrowTypeError(env, "fsWritePoolHasRoom(pool)");
  return Napi::Boolean::New(env, pool->HasRoom());
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
  if (fsops::MakeEntry(root, e, &fd, &f) < 0) return Throw(env, f);
  return Napi::Number::New(env, fd);
}

// fsFinishFile(fd, { uid?, gid?, mode?, mtime?, xattrs? }, pathForErrors?): void — closes fd.
Napi::Value FsFinishFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd) || info.Length() < 2 || !info[1].IsObject()) {
    return ThrowTypeError(env, "fsFinishFile(fd: number, meta: object)");
  }
  fsops::Meta m;
  if (!ReadMeta(env, info[1].As<Napi::Object>(), &m)) {
    close(fd);
    return ThrowTypeError(env, "meta.xattrs must be [name: string, value: Buffer][]");
  }
  std::string path = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  Failure f;
  if (fsops::FinishFile(fd, m, path, &f) < 0) return Throw(env, f);
  return env.Undefined();
}

// fsRemoveAt(rootFd, path): boolean — false when nothing was there.
Napi::Value FsRemoveAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsRemoveAt(rootFd: number, path: string)");
  Failure f;
  int r = fsops::RemoveAt(root, path, &f);
  if (r < 0) return Throw(env, f);
  return Napi::Boolean::New(env, r > 0);
}

// fsRenameAt(rootFd, from, to): void — a reader of `to` sees the old file or the new one,
// never a missing or half-written one.
Napi::Value FsRenameAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string from, to;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &from) || !GetString(info, 2, &to)) {
    return ThrowTypeError(env, "fsRenameAt(rootFd: number, from: string, to: string)");
  }
  Failure f;
  if (fsops::RenameAt(root, from, to, &f) < 0) return Throw(env, f);
  return env.Undefined();
}

// fsReadDirAt(rootFd, path): string[]
Napi::Value FsReadDirAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsReadDirAt(rootFd: number, path: string)");
  std::vector<std::string> names;
  Failure f;
  if (fsops::ReadDirAt(root, path, &names, &f) < 0) return Throw(env, f);
  Napi::Array out = Napi::Array::New(env, names.size());
  for (uint32_t i = 0; i < names.size(); i++) out.Set(i, Napi::String::New(env, names[i]));
  return out;
}

// fsLstatAt(rootFd, path): { mode, uid, gid, size, nlink, ino, dev, rdevMajor, rdevMinor, mtime } | null
Napi::Value FsLstatAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsLstatAt(rootFd: number, path: string)");
  struct stat st;
  Failure f;
  int r = fsops::LstatAt(root, path, &st, &f);
  if (r < 0) return Throw(env, f);
  if (r == 0) return env.Null();
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

// fsOpenAt(rootFd, path): number — a regular file or directory, read-only (see fsops::OpenAt).
Napi::Value FsOpenAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsOpenAt(rootFd: number, path: string)");
  Failure f;
  int fd = fsops::OpenAt(root, path, &f);
  if (fd < 0) return Throw(env, f);
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
  Failure f;
  if (fsops::SetXattrAt(root, path, name, value.Data(), value.Length(), &f) < 0) return Throw(env, f);
  return env.Undefined();
}

// fsListXattrsAt(rootFd, path): [name, Buffer][]
Napi::Value FsListXattrsAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int root;
  std::string path;
  if (!GetFd(info, 0, &root) || !GetString(info, 1, &path)) return ThrowTypeError(env, "fsListXattrsAt(rootFd: number, path: string)");
  fsops::Xattrs xattrs;
  Failure f;
  if (fsops::ListXattrsAt(root, path, &xattrs, &f) < 0) return Throw(env, f);
  Napi::Array out = Napi::Array::New(env, xattrs.size());
  for (uint32_t i = 0; i < xattrs.size(); i++) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::String::New(env, xattrs[i].first));
    pair.Set(1u, Napi::Buffer<char>::Copy(env, xattrs[i].second.data(), xattrs[i].second.size()));
    out.Set(i, pair);
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
  Failure f;
  if (fsops::SetTimesAt(root, path, m, &f) < 0) return Throw(env, f);
  return env.Undefined();
}

// fsSync(fd): void — one syncfs makes a whole unpacked layer durable before it is renamed into place.
Napi::Value FsSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd)) return ThrowTypeError(env, "fsSync(fd: number)");
  Failure f;
  if (fsops::SyncFs(fd, &f) < 0) return Throw(env, f);
  return env.Undefined();
}

// fsSetTopDir(fd, on): boolean | null — sets or clears FS_TOPDIR_FL on a directory; whether
// it was set before, null where the file system has no such flag.
Napi::Value FsSetTopDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(info, 0, &fd) || info.Length() < 2 || !info[1].IsBoolean()) return ThrowTypeError(env, "fsSetTopDir(fd: number, on: boolean)");
  Failure f;
  int r = fsops::SetTopDir(fd, info[1].As<Napi::Boolean>().Value(), &f);
  if (r == fsops::kNoTopDirFlag) return env.Null();
  if (r < 0) return Throw(env, f);
  return Napi::Boolean::New(env, r > 0);
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
    Failure f;
    if (fsops::SyncFs(fd_.get(), &f) < 0) err_ = f.err;
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
  Failure f;
  int r = fsops::TryFlock(fd, how, &f);
  if (r < 0) return Throw(env, f);
  return Napi::Boolean::New(env, r > 0);
}

}  // namespace

void RegisterFsOps(Napi::Env env, Napi::Object exports) {
  exports.Set("fsOpenRoot", Napi::Function::New(env, FsOpenRoot, "fsOpenRoot"));
  exports.Set("fsOpenRootAt", Napi::Function::New(env, FsOpenRootAt, "fsOpenRootAt"));
  exports.Set("fsMountOverlay", Napi::Function::New(env, FsMountOverlay, "fsMountOverlay"));
  exports.Set("fsCloseRoot", Napi::Function::New(env, FsCloseRoot, "fsCloseRoot"));
  exports.Set("fsWritePoolCreate", Napi::Function::New(env, FsWritePoolCreate, "fsWritePoolCreate"));
  exports.Set("fsWritePoolSubmit", Napi::Function::New(env, FsWritePoolSubmit, "fsWritePoolSubmit"));
  exports.Set("fsWritePoolBarrier", Napi::Function::New(env, FsWritePoolBarrier, "fsWritePoolBarrier"));
  exports.Set("fsWritePoolIdle", Napi::Function::New(env, FsWritePoolIdle, "fsWritePoolIdle"));
  exports.Set("fsWritePoolHasRoom", Napi::Function::New(env, FsWritePoolHasRoom, "fsWritePoolHasRoom"));
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
  exports.Set("fsSetTopDir", Napi::Function::New(env, FsSetTopDir, "fsSetTopDir"));
  exports.Set("fsSyncAsync", Napi::Function::New(env, FsSyncAsync, "fsSyncAsync"));
  exports.Set("fsFlock", Napi::Function::New(env, FsFlock, "fsFlock"));
}

}  // namespace berth
