#include "napi-errors.h"

#include <string.h>

namespace berth {

Napi::Object MakeSystemError(Napi::Env env, int err, const std::string& syscall,
                             const std::string& path, const std::string& extra) {
  const char* name = strerrorname_np(err);
  std::string message = syscall + (path.empty() ? "" : " " + path) + ": " + strerror(err);
  if (!extra.empty()) message += " (" + extra + ")";
  Napi::Object e = Napi::Error::New(env, message).Value();
  e.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

Napi::Value ThrowSystemError(Napi::Env env, int err, const std::string& syscall,
                             const std::string& path, const std::string& extra) {
  Napi::Error(env, MakeSystemError(env, err, syscall, path, extra)).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace berth
