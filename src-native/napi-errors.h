// The one way a failure crosses into JavaScript.
//
// lib/native.ts hands the addon its `SystemError` class once, when it loads it
// (`initialize(SystemError)`, as better-sqlite3 does with its SqliteError), and every failure
// is constructed here as `new SystemError(code, message, { errno, syscall, path })`: code is the
// errno name, the message reads "<syscall> '<path>': <strerror> (<extra>)". Kernel code never
// builds JS values; it returns -errno or fills a NativeError, and its glue calls one of these.
//
// Wrong argument types are caller bugs, not failures: those stay plain TypeErrors.
#pragma once

#include <napi.h>

#include <string>

#include "native-error.h"

namespace berth {

// initialize(SystemError): remembers the class for this environment (worker threads each load
// the addon and call it once).
Napi::Value InitializeErrors(const Napi::CallbackInfo& info);

// Builds (does not throw) the error object.
Napi::Object MakeSystemError(Napi::Env env, int err, const std::string& syscall,
                             const std::string& path, const std::string& extra = "");
Napi::Object MakeSystemError(Napi::Env env, const NativeError& error);

// Throws it and returns undefined, for use as `return ThrowSystemError(...)`.
Napi::Value ThrowSystemError(Napi::Env env, int err, const std::string& syscall,
                             const std::string& path, const std::string& extra = "");
Napi::Value ThrowSystemError(Napi::Env env, const NativeError& error);
Napi::Value ThrowTypeError(Napi::Env env, const std::string& message);

}  // namespace berth
