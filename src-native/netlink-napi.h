// N-API glue for the network functions of netlink.h (the addon only; the helper does not
// need them). TypeScript declarations: lib/native.ts.
#pragma once

#include <napi.h>

namespace berth {

// Adds netEnsureBridge, netDeleteLink, netListLinks, netAttach and netFlushConntrack to `exports`.
void RegisterNetOps(Napi::Env env, Napi::Object exports);

}  // namespace berth
