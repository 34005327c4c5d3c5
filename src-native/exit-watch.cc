#include "exit-watch.h"

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "napi-errors.h"

namespace berth {
namespace {

struct Watch {
  uv_poll_t poll;
  int pidfd;
  Napi::FunctionReference callback;
  Napi::Env env;
};

void OnClosed(uv_handle_t* handle) { delete static_cast<Watch*>(handle->data); }

void OnReadable(uv_poll_t* handle, int status, int events) {
  auto* watch = static_cast<Watch*>(handle->data);
  siginfo_t info{};
  int r = waitid(static_cast<idtype_t>(P_PIDFD), watch->pidfd, &info, WEXITED | WNOHANG);
  if (r < 0 && errno == EINTR) return;
  if (r == 0 && info.si_pid == 0) return;  // spurious wake-up: not exited yet
  Napi::Env env = watch->env;
  Napi::HandleScope scope(env);
  Napi::Object result = Napi::Object::New(env);
  if (r < 0) {
    // ECHILD: someone else reaped it. Report what we can rather than hang the caller.
    result.Set("code", env.Null());
    result.Set("signal", env.Null());
    result.Set("error", Napi::String::New(env, strerror(errno)));
  } else if (info.si_code == CLD_EXITED) {
    result.Set("code", Napi::Number::New(env, info.si_status));
    result.Set("signal", env.Null());
  } else {
    result.Set("code", env.Null());
    result.Set("signal", Napi::Number::New(env, info.si_status));
    result.Set("coreDumped", Napi::Boolean::New(env, info.si_code == CLD_DUMPED));
  }
  uv_poll_stop(handle);
  close(watch->pidfd);
  watch->pidfd = -1;
  Napi::FunctionReference cb = std::move(watch->callback);
  uv_close(reinterpret_cast<uv_handle_t*>(handle), OnClosed);
  cb.MakeCallback(env.Global(), {result});
}

}  // namespace

Napi::Value WatchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    return ThrowTypeError(env, "watchExit(pidfd: number, callback: function)");
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return ThrowTypeError(env, "no event loop");
  auto* watch = new Watch{{}, info[0].As<Napi::Number>().Int32Value(),
                          Napi::Persistent(info[1].As<Napi::Function>()), env};
  watch->poll.data = watch;
  int r = uv_poll_init(loop, &watch->poll, watch->pidfd);
  if (r == 0) r = uv_poll_start(&watch->poll, UV_READABLE, OnReadable);
  if (r != 0) {
    delete watch;
    return ThrowSystemError(env, -r, "uv_poll_start", "pidfd");
  }
  return env.Undefined();
}

Napi::Value SendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    return ThrowTypeError(env, "sendSignal(pidfd: number, signal: number)");
  }
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  int sig = info[1].As<Napi::Number>().Int32Value();
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0) {
    if (errno == ESRCH || errno == EBADF) return Napi::Boolean::New(env, false);
    return ThrowSystemError(env, errno, "pidfd_send_signal", "");
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace berth
