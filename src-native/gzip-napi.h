// gzipCreate, gzipInflate and gzipEnd: bounded streaming gzip decompression of layers with
// ISA-L's inflater, declared in lib/native.ts. Optional at run time: gzipCreate returns null
// when libisal is not installed (or was not there at build time), and layers go through
// Node's zlib as before.
#pragma once

#include <napi.h>

namespace berth {

void RegisterGzip(Napi::Env env, Napi::Object exports);

}  // namespace berth
