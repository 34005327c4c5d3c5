// zstdCreate, zstdDecompress and zstdEnd: bounded streaming decompression of zstd layers,
// declared in lib/native.ts.
#pragma once

#include <napi.h>

namespace berth {

void RegisterZstd(Napi::Env env, Napi::Object exports);

}  // namespace berth
