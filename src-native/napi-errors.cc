#include "napi-errors.h"

#include <errno.h>
#include <string.h>

namespace berth {

Napi::Value InitializeErrors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) return ThrowTypeError(env, "initialize(SystemError: class)");
  // Napi's default finalizer deletes the reference when the environment goes away.
  env.SetInstanceData<Napi::FunctionReference>(new Napi::FunctionReference(Napi::Persistent(info[0].As<Napi::Function>())));
  return env.Undefined();
}

Napi::Object MakeSystemError(Napi::Env env, int err, const std::string& syscall,
                             const std::string& path, const std::string& extra) {
  if (err <= 0) err = EIO;  // a failure without an errno is still a failure
  const char* name = strerrorname_np(err);
  std::string code = name != nullptr ? name : "EUNKNOWN";
  std::string message = syscall + (path.empty() ? "" : " '" + path + "'") + ": " + strerror(err);
  if (!extra.empty()) message += " (" + extra + ")";
  Napi::Object details = Napi::Object::New(env);
  details.Set("errno", Napi::Number::New(env, err));
  details.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) details.Set("path", Napi::String::New(env, path));
  auto* cls = env.GetInstanceData<Napi::FunctionReference>();
  if (cls != nullptr && !cls->IsEmpty()) {
    Napi::Value e = cls->New({Napi::String::New(env, code), Napi::String::New(env, message), details});
    if (!e.IsEmpty() && e.IsObject()) return e.As<Napi::Object>();
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
  }
  // Not initialized (never the case through lib/native.ts): the same facts on a plain Error.
  Napi::Object e = Napi::Error::New(env, message).Value();
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", details.Get("errno"));
  e.Set("syscall", details.Get("syscall"));
  if (!path.empty()) e.Set("path", details.Get("path"));
  return e;
}

Napi::Object MakeSystemError(Napi::Env env, const NativeError& error) {
  return MakeSystemError(env, error.err != 0 ? error.err : EINVAL, error.syscall, error.path, error.message);
}

Napi::Value ThrowSystemError(Napi::Env env, int err, const std::string& syscall,
                             const std::string& path, const std::string& extra) {
  Napi::Error(env, MakeSystemError(env, err, syscall, path, extra)).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowSystemError(Napi::Env env, const NativeError& error) {
  Napi::Error(env, MakeSystemError(env, error)).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace berth
