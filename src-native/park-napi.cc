// The request is sent on the JS thread (one non-blocking datagram); the reply is awaited by
// libuv polling the control socket, never by a worker thread: a parked PID 1 answers right
// away, and when it dies instead, its end closes and the poll wakes with EOF.
#include "park-napi.h"

#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "launch-watch.h"
#include "napi-errors.h"
#include "park-exec.h"
#include "spawn-io.h"
#include "spec-codec.h"

namespace berth {
namespace {

struct ReplyWatch {
  uv_poll_t poll;
  int control;
  Napi::Env env;
  Napi::Promise::Deferred deferred;
  int stdio[3];
};

void CloseReplyWatch(uv_handle_t* handle) { delete static_cast<ReplyWatch*>(handle->data); }

void OnReply(uv_poll_t* handle, int status, int events) {
  auto* w = static_cast<ReplyWatch*>(handle->data);
  ParkStarted reply = ReadParkReply(w->control);
  if (reply.kind == ParkStarted::kNone && status == 0) return;
  Napi::Env env = w->env;
  Napi::HandleScope scope(env);
  uv_poll_stop(&w->poll);
  if (reply.kind == ParkStarted::kStarted) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("pid", reply.pid);
    out.Set("pidfd", -1);
    Napi::Array stdio = Napi::Array::New(env, 3);
    for (uint32_t i = 0; i < 3; ++i) stdio.Set(i, w->stdio[i]);
    out.Set("stdio", stdio);
    out.Set("ttyMaster", -1);
    out.Set("launched", WatchLaunch(env, reply.status_fd));
    w->deferred.Resolve(out);
  } else {
    for (int& fd : w->stdio) CloseIf(fd);
    if (reply.kind == ParkStarted::kNone) SetError(&reply.error, status < 0 ? -status : EIO, "uv_poll", "park control");
    w->deferred.Reject(MakeSystemError(env, reply.error));
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), CloseReplyWatch);
}

// parkControl() -> [nodeEnd, pid1End]
Napi::Value ParkControl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pair[2];
  NativeError error;
  if (!MakeParkControl(pair, &error)) return ThrowSystemError(env, error);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, pair[0]);
  out.Set(1u, pair[1]);
  return out;
}

// parkExecEncoded(control, spec: Buffer) -> Promise<{ pid, pidfd: -1, stdio, ttyMaster: -1, launched }>
Napi::Value ParkExecJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) {
    return ThrowTypeError(env, "parkExecEncoded(control: number, spec: Buffer)");
  }
  int control = info[0].As<Napi::Number>().Int32Value();
  auto buf = info[1].As<Napi::Buffer<char>>();
  LaunchSpec spec;
  std::string decode_error;
  if (!DecodeLaunchSpec(buf.Data(), buf.Length(), &spec, &decode_error)) return ThrowTypeError(env, decode_error);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return ThrowTypeError(env, "no event loop");
  auto* w = new ReplyWatch{{}, control, env, Napi::Promise::Deferred::New(env), {-1, -1, -1}};
  Napi::Promise promise = w->deferred.Promise();
  NativeError error;
  if (!SendParkRequest(control, spec, w->stdio, &error)) {
    w->deferred.Reject(MakeSystemError(env, error));
    delete w;
    return promise;
  }
  w->poll.data = w;
  int r = uv_poll_init(loop, &w->poll, control);
  if (r != 0) {
    // The request is out: PID 1 starts the workload, whose output nobody would read. Closing
    // the stdio ends it with SIGPIPE or EOF; the caller kills the sandbox on this rejection.
    for (int& fd : w->stdio) CloseIf(fd);
    w->deferred.Reject(MakeSystemError(env, -r, "uv_poll_init", "park control"));
    delete w;
    return promise;
  }
  r = uv_poll_start(&w->poll, UV_READABLE, OnReply);
  if (r != 0) {
    for (int& fd : w->stdio) CloseIf(fd);
    w->deferred.Reject(MakeSystemError(env, -r, "uv_poll_start", "park control"));
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), CloseReplyWatch);
  }
  return promise;
}

// parkExitStatus(control) -> { code, signal, coreDumped? } | null
Napi::Value ParkExitStatus(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowTypeError(env, "parkExitStatus(control: number)");
  int status = 0;
  if (!ReadParkExit(info[0].As<Napi::Number>().Int32Value(), &status)) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  if (WIFEXITED(status)) {
    out.Set("code", WEXITSTATUS(status));
    out.Set("signal", env.Null());
  } else {
    out.Set("code", env.Null());
    out.Set("signal", WTERMSIG(status));
    out.Set("coreDumped", Napi::Boolean::New(env, WCOREDUMP(status)));
  }
  return out;
}

}  // namespace

void RegisterPark(Napi::Env env, Napi::Object exports) {
  exports.Set("parkControl", Napi::Function::New(env, ParkControl, "parkControl"));
  exports.Set("parkExecEncoded", Napi::Function::New(env, ParkExecJs, "parkExecEncoded"));
  exports.Set("parkExitStatus", Napi::Function::New(env, ParkExitStatus, "parkExitStatus"));
}

}  // namespace berth
