// The request is sent on the JS thread (one non-blocking datagram); PID 1's messages are read
// by libuv polling the control socket, never by a worker thread: when PID 1 dies instead of
// answering, its end closes and the poll wakes with EOF.
#include "park-napi.h"

#include <unistd.h>
#include <uv.h>

#include "napi-errors.h"
#include "park-exec.h"
#include "spawn-io.h"
#include "spec-codec.h"

namespace berth {
namespace {

struct Watch {
  uv_poll_t poll;
  int control;
  Napi::Env env;
  Napi::FunctionReference callback;
};

void CloseWatch(uv_handle_t* handle) { delete static_cast<Watch*>(handle->data); }

Napi::Object EventObject(Napi::Env env, const ParkEvent& e) {
  Napi::Object out = Napi::Object::New(env);
  switch (e.kind) {
    case ParkEvent::kFailed: {
      out.Set("kind", "failed");
      Napi::Object error = MakeSystemError(env, e.report.err, e.report.syscall, e.report.path);
      error.Set("notFound", Napi::Boolean::New(env, e.report.kind == ChildReportKind::kNotFound));
      // 127/126: the command could not be executed (a result); otherwise the setup failed.
      out.Set("execFailed", Napi::Boolean::New(env, e.report.kind != ChildReportKind::kSetupError));
      out.Set("error", error);
      break;
    }
    default:
      out.Set("kind", "gone");
      break;
  }
  return out;
}

void OnReadable(uv_poll_t* handle, int status, int events) {
  auto* w = static_cast<Watch*>(handle->data);
  Napi::Env env = w->env;
  Napi::HandleScope scope(env);
  for (;;) {
    ParkEvent e = ReadParkEvent(w->control);
    if (e.kind == ParkEvent::kNone && status == 0) return;
    if (e.kind == ParkEvent::kNone) e.kind = ParkEvent::kGone;
    bool last = e.kind == ParkEvent::kGone;
    if (last) {
      uv_poll_stop(&w->poll);
      Napi::FunctionReference cb = std::move(w->callback);
      uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), CloseWatch);
      cb.MakeCallback(env.Global(), {EventObject(env, e)});
      return;
    }
    w->callback.MakeCallback(env.Global(), {EventObject(env, e)});
  }
}

// parkControl() -> [node, pid1]
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

// parkExecEncoded(control, spec: Buffer) -> [stdin, stdout, stderr] (Node's ends, -1: none)
Napi::Value ParkExecJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) {
    return ThrowTypeError(env, "parkExecEncoded(control: number, spec: Buffer)");
  }
  auto buf = info[1].As<Napi::Buffer<char>>();
  LaunchSpec spec;
  std::string decode_error;
  if (!DecodeLaunchSpec(buf.Data(), buf.Length(), &spec, &decode_error)) return ThrowTypeError(env, decode_error);
  int stdio[3] = {-1, -1, -1};
  NativeError error;
  if (!SendParkRequest(info[0].As<Napi::Number>().Int32Value(), spec, stdio, &error)) {
    return ThrowSystemError(env, error);
  }
  Napi::Array out = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; ++i) out.Set(i, stdio[i]);
  return out;
}

// parkWatch(control, callback): calls callback(event) for each of PID 1's failure reports, then
// once { kind: 'gone' } (EOF: the command exec'd, or PID 1 died) and stops.
Napi::Value ParkWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
    return ThrowTypeError(env, "parkWatch(control: number, callback: function)");
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return ThrowTypeError(env, "no event loop");
  auto* w = new Watch{{}, info[0].As<Napi::Number>().Int32Value(), env, Napi::Persistent(info[1].As<Napi::Function>())};
  w->poll.data = w;
  int r = uv_poll_init(loop, &w->poll, w->control);
  if (r != 0) {
    delete w;
    return ThrowSystemError(env, -r, "uv_poll_init", "park control");
  }
  r = uv_poll_start(&w->poll, UV_READABLE, OnReadable);
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), CloseWatch);
    return ThrowSystemError(env, -r, "uv_poll_start", "park control");
  }
  return env.Undefined();
}

// parkResult(control) -> event | null: PID 1's last word, read without blocking, once PID 1
// exited (its end is closed then: the report it sent before exiting, if any, then EOF). The
// first failure report, else { kind: 'gone' }; null when nothing is there yet (PID 1, or its
// command, still holds its end). A run to completion asks only after the exit, so Node is not
// woken while the command runs (parkWatch would wake it at the command's execve).
Napi::Value ParkResult(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowTypeError(env, "parkResult(control: number)");
  int control = info[0].As<Napi::Number>().Int32Value();
  ParkEvent e = ReadParkEvent(control);
  if (e.kind == ParkEvent::kNone) return env.Null();
  if (e.kind == ParkEvent::kFailed) {
    // Drain what follows (nothing does: PID 1 exits after one report) so the socket is done.
    for (int i = 0; i < 4 && ReadParkEvent(control).kind == ParkEvent::kFailed; ++i) {
    }
  }
  return EventObject(env, e);
}

}  // namespace

void RegisterPark(Napi::Env env, Napi::Object exports) {
  exports.Set("parkControl", Napi::Function::New(env, ParkControl, "parkControl"));
  exports.Set("parkExecEncoded", Napi::Function::New(env, ParkExecJs, "parkExecEncoded"));
  exports.Set("parkWatch", Napi::Function::New(env, ParkWatch, "parkWatch"));
  exports.Set("parkResult", Napi::Function::New(env, ParkResult, "parkResult"));
}

}  // namespace berth
