// Errors cross the native boundary as data: a JS Error with { code, errno, syscall, path }
// that lib/native.ts turns into the BerthError family.
#pragma once

#include <napi.h>

#include <string>

namespace berth {

// Builds (does not throw) an Error object carrying the errno facts.
Napi::Object MakeSystemError(Napi::Env env, int err, const std::string& syscall,
                             const std::string& path, const std::string& extra = "");

// Throws it and returns undefined, for use as `return ThrowSystemError(...)`.
Napi::Value ThrowSystemError(Napi::Env env, int err, const std::string& syscall,
                             const std::string& path, const std::string& extra = "");
Napi::Value ThrowTypeError(Napi::Env env, const std::string& message);

}  // namespace berth
