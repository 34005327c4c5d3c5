// N-API glue for a parked sandbox's control socket (park-exec.h). TypeScript declarations:
// lib/native.ts.
#pragma once

#include <napi.h>

namespace berth {

// Adds parkControl, parkExecEncoded and parkWatch to `exports`.
void RegisterPark(Napi::Env env, Napi::Object exports);

}  // namespace berth
