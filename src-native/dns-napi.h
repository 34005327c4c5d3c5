// N-API glue for the DNS message code (dns-message.h), so its parser is unit-tested and fuzzed
// from TypeScript with the same bytes the resolver reads. Declared in lib/native.ts.
#pragma once

#include <napi.h>

namespace berth {

// Adds dnsParseQuery and dnsBuildAnswer to `exports`.
void RegisterDns(Napi::Env env, Napi::Object exports);

}  // namespace berth
