// N-API glue: the module's exports. Kernel work lives in spawn.cc / container-setup.cc /
// exit-watch.cc / fs-ops.cc / netlink.cc; their glue in *-napi.cc; this file only moves values
// across the boundary.
#include <errno.h>
#include <fcntl.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "btrfs-napi.h"
#include "device-filter.h"
#include "exit-watch.h"
#include "launch-watch.h"
#include "fs-ops-napi.h"
#include "napi-errors.h"
#include "netns-pool.h"
#include "dns-napi.h"
#include "netlink-napi.h"
#include "park-napi.h"
#include "spec-codec.h"
#include "spawn-io.h"
#include "spawn.h"
#include "gzip-napi.h"
#include "zstd-napi.h"

namespace berth {
namespace {

// The JavaScript side of Spawn's "before go" point: the worker thread asks the event loop
// (through a thread-safe function) to set up the child's network, and waits, bounded, for the
// answer `done()` gives. A late answer after the deadline finds the gate decided and is dropped.
struct GoGate {
  std::mutex mutex;
  std::condition_variable decided_cv;
  bool decided = false;
  bool ok = false;
  std::string message;

  void Decide(bool go, std::string why) {
    std::lock_guard<std::mutex> lock(mutex);
    if (decided) return;
    decided = true;
    ok = go;
    message = std::move(why);
    decided_cv.notify_all();
  }
};

// Longer than any setup the JavaScript side bounds itself (a user-mode stack: 20 s).
constexpr auto kBeforeGoDeadline = std::chrono::seconds(60);

// Runs Spawn() on a libuv worker thread. The worker threads live as long as the process, which
// matters: PR_SET_PDEATHSIG fires when the *thread* that cloned the child exits.
class SpawnWorker : public Napi::AsyncWorker {
 public:
  SpawnWorker(Napi::Env env, LaunchSpec spec)
      : Napi::AsyncWorker(env, "berth:spawn"), deferred_(Napi::Promise::Deferred::New(env)),
        spec_(std::move(spec)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void SetBeforeGo(Napi::Env env, Napi::Function fn) {
    before_go_ = Napi::ThreadSafeFunction::New(env, fn, "berth:before-go", 0, 1);
    has_before_go_ = true;
  }

  void Execute() override {
    if (spec_.join_pidfd >= 0) {
      result_ = SpawnExec(spec_, &error_);
      return;
    }
    if (!has_before_go_) {
      result_ = Spawn(spec_, &error_);
      return;
    }
    auto gate = std::make_shared<GoGate>();
    BeforeGo hook = [this, gate](int pid, NativeError* error) {
      napi_status st = before_go_.BlockingCall([gate, pid](Napi::Env env, Napi::Function fn) {
        Napi::Function done = Napi::Function::New(env, [gate](const Napi::CallbackInfo& info) {
          bool go = info.Length() == 0 || info[0].IsUndefined() || info[0].IsNull();
          gate->Decide(go, go || !info[0].IsString() ? "" : info[0].As<Napi::String>().Utf8Value());
        });
        fn.Call({Napi::Number::New(env, pid), done});
        if (env.IsExceptionPending()) {
          Napi::Error e = env.GetAndClearPendingException();
          gate->Decide(false, e.Message());
        }
      });
      if (st != napi_ok) {
        berth::SetError(error, ECANCELED, "spawn", "before go");
        error->message = "the launch's setup before go could not be called (the environment is closing)";
        return false;
      }
      std::unique_lock<std::mutex> lock(gate->mutex);
      if (!gate->decided_cv.wait_for(lock, kBeforeGoDeadline, [&] { return gate->decided; })) {
        gate->decided = true;
        berth::SetError(error, ETIMEDOUT, "spawn", "before go");
        error->message = "the container's setup before it runs (its network) did not finish within 60 s; it was killed";
        return false;
      }
      if (gate->ok) return true;
      berth::SetError(error, ECANCELED, "spawn", "before go");
      error->message = gate->message.empty() ? "the container's setup before it runs (its network) failed" : gate->message;
      return false;
    };
    result_ = Spawn(spec_, &error_, hook);
  }

  void OnOK() override {
    ReleaseBeforeGo();
    Napi::Env env = Env();
    if (!result_.exec_failed && !error_.ok()) {
      deferred_.Reject(MakeSystemError(env, error_));
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("pid", result_.pid);
    out.Set("pidfd", result_.pidfd);
    Napi::Array stdio = Napi::Array::New(env, 3);
    for (uint32_t i = 0; i < 3; ++i) stdio.Set(i, result_.stdio[i]);
    out.Set("stdio", stdio);
    out.Set("ttyMaster", result_.tty_master);
    if (result_.helper_pidfd >= 0) ReapWhenExited(env, result_.helper_pidfd);
    if (result_.status_fd >= 0) out.Set("launched", WatchLaunch(env, result_.status_fd));
    if (!result_.trace.empty()) {
      Napi::Array trace = Napi::Array::New(env, result_.trace.size());
      for (uint32_t i = 0; i < result_.trace.size(); ++i) trace.Set(i, result_.trace[i]);
      out.Set("trace", trace);
    }
    if (result_.exec_failed) {
      Napi::Object f = MakeSystemError(env, error_.err, error_.syscall, error_.path);
      f.Set("notFound", Napi::Boolean::New(env, error_.not_found));
      out.Set("execFailed", f);
    }
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    ReleaseBeforeGo();
    deferred_.Reject(e.Value());
  }

 private:
  void ReleaseBeforeGo() {
    if (has_before_go_) before_go_.Release();
    has_before_go_ = false;
  }

  Napi::Promise::Deferred deferred_;
  LaunchSpec spec_;
  SpawnResult result_;
  NativeError error_;
  Napi::ThreadSafeFunction before_go_;
  bool has_before_go_ = false;
};

// spawnEncoded(spec: Buffer, beforeGo?: (pid, done: (error?: string) => void) => void)
//   -> Promise<{ pid, pidfd, stdio: [in, out, err], ttyMaster, execFailed? }>
// The spec arrives in the binary format of spec-codec.h (encoded by lib/native/spec-codec.ts).
// `beforeGo` runs on the event loop while the child waits for "go"; the launch goes on once
// `done()` is called, and is abandoned (the child killed) on `done(message)`.
Napi::Value SpawnJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer() || (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsFunction())) {
    return ThrowTypeError(env, "spawnEncoded(spec: Buffer, beforeGo?: function)");
  }
  auto buf = info[0].As<Napi::Buffer<char>>();
  LaunchSpec spec;
  std::string error;
  if (!DecodeLaunchSpec(buf.Data(), buf.Length(), &spec, &error)) return ThrowTypeError(env, error);
  auto* worker = new SpawnWorker(env, std::move(spec));
  if (info.Length() > 1 && info[1].IsFunction()) worker->SetBeforeGo(env, info[1].As<Napi::Function>());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// sealExecutable(path) -> fd: a sealed, close-on-exec memfd copy of the helper binary. A
// container's PID 1 exec'd from it cannot write back to any host file (CVE-2019-5736 class):
// /proc/<pid>/exe points at an immutable anonymous file, not at prebuilds/.../berth-helper.
Napi::Value SealExecutable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowTypeError(env, "sealExecutable(path: string)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return ThrowSystemError(env, errno, "open", path);
  int mem = memfd_create("berth-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mem < 0) {
    int err = errno;
    close(src);
    return ThrowSystemError(env, err, "memfd_create", path);
  }
  char buf[65536];
  for (;;) {
    ssize_t n = read(src, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(src);
      close(mem);
      return ThrowSystemError(env, err, "read", path);
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(mem, buf + off, static_cast<size_t>(n - off));
      if (w < 0) {
        int err = errno;
        close(src);
        close(mem);
        return ThrowSystemError(env, err, "write", "memfd");
      }
      off += w;
    }
  }
  close(src);
  fchmod(mem, 0555);
  if (fcntl(mem, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
    int err = errno;
    close(mem);
    return ThrowSystemError(env, err, "fcntl(F_ADD_SEALS)", "memfd");
  }
  return Napi::Number::New(env, mem);
}

// pidfdOpen(pid) -> fd: a stable handle on a process this one did not start (a detached
// container's PID 1): signals through it can never hit a recycled pid.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowTypeError(env, "pidfdOpen(pid: number)");
  int pid = info[0].As<Napi::Number>().Int32Value();
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return ThrowSystemError(env, errno, "pidfd_open", std::to_string(pid));
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// pidfdGetfd(pidfd, fd) -> fd: a duplicate of another process's descriptor (pidfd_getfd),
// the same open file: a detached mount from open_tree stays owned by it, which a reopen through
// /proc/<pid>/fd would not keep (the mount dissolves when the original closes).
Napi::Value PidfdGetfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return ThrowTypeError(env, "pidfdGetfd(pidfd: number, fd: number)");
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  int target = info[1].As<Napi::Number>().Int32Value();
  long fd = syscall(SYS_pidfd_getfd, pidfd, target, 0);  // the new descriptor is close-on-exec
  if (fd < 0) return ThrowSystemError(env, errno, "pidfd_getfd", std::to_string(target));
  return Napi::Number::New(env, static_cast<double>(fd));
}

// resizeTty(masterFd, rows, cols): TIOCSWINSZ; the kernel sends SIGWINCH to the foreground
// process group of the container's terminal.
Napi::Value ResizeTty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    return ThrowTypeError(env, "resizeTty(fd: number, rows: number, cols: number)");
  }
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(info[1].As<Napi::Number>().Uint32Value());
  ws.ws_col = static_cast<unsigned short>(info[2].As<Napi::Number>().Uint32Value());
  if (ioctl(info[0].As<Napi::Number>().Int32Value(), TIOCSWINSZ, &ws) < 0) {
    return ThrowSystemError(env, errno, "ioctl(TIOCSWINSZ)", "tty");
  }
  return env.Undefined();
}

// loadDeviceFilter(program: Buffer) -> fd: the cgroup v2 device allow-list (BPF_CGROUP_DEVICE).
Napi::Value LoadDeviceFilterJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) return ThrowTypeError(env, "loadDeviceFilter(program: Buffer)");
  auto program = info[0].As<Napi::Buffer<char>>();
  std::string log;
  int fd = LoadDeviceFilter(program.Data(), program.Length(), &log);
  if (fd < 0) return ThrowSystemError(env, -fd, "bpf(BPF_PROG_LOAD)", "device filter", log);
  return Napi::Number::New(env, fd);
}

// attachDeviceFilter(cgroupDir: string, programFd: number): attaches it to a cgroup v2 directory.
Napi::Value AttachDeviceFilterJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    return ThrowTypeError(env, "attachDeviceFilter(cgroupDir: string, programFd: number)");
  }
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  int r = AttachDeviceFilter(dir, info[1].As<Napi::Number>().Int32Value());
  if (r < 0) return ThrowSystemError(env, -r, "bpf(BPF_PROG_ATTACH)", dir);
  return env.Undefined();
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  // Join the pool's thread before the process (or worker) tears the addon down.
  EnableNetnsPool();
  napi_add_env_cleanup_hook(env, [](void*) { StopNetnsPool(); }, nullptr);
  exports.Set("specFormatVersion", Napi::Number::New(env, kSpecFormatVersion));
  exports.Set("initialize", Napi::Function::New(env, InitializeErrors, "initialize"));
  exports.Set("spawnEncoded", Napi::Function::New(env, SpawnJs, "spawnEncoded"));
  exports.Set("watchExit", Napi::Function::New(env, WatchExit, "watchExit"));
  exports.Set("sendSignal", Napi::Function::New(env, SendSignal, "sendSignal"));
  exports.Set("sealExecutable", Napi::Function::New(env, SealExecutable, "sealExecutable"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdGetfd", Napi::Function::New(env, PidfdGetfd, "pidfdGetfd"));
  exports.Set("resizeTty", Napi::Function::New(env, ResizeTty, "resizeTty"));
  exports.Set("loadDeviceFilter", Napi::Function::New(env, LoadDeviceFilterJs, "loadDeviceFilter"));
  exports.Set("attachDeviceFilter", Napi::Function::New(env, AttachDeviceFilterJs, "attachDeviceFilter"));
  RegisterNetOps(env, exports);
  RegisterDns(env, exports);
  RegisterPark(env, exports);
  RegisterFsOps(env, exports);
  RegisterBtrfs(env, exports);
  RegisterZstd(env, exports);
  RegisterGzip(env, exports);
  return exports;
}

}  // namespace
}  // namespace berth

// NODE_API_MODULE pastes the function name into an identifier, so it needs an unqualified one.
static Napi::Object Init(Napi::Env env, Napi::Object exports) { return berth::InitModule(env, exports); }

NODE_API_MODULE(berth, Init)
