// A streaming zstd decompressor (libzstd) for layers, since Node 20 has none. Glue only: the
// decoder is libzstd's; failures are SystemErrors like any other (napi-errors.h).
#include "zstd-napi.h"

#include <errno.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <vector>

#include "napi-errors.h"

namespace berth {
namespace {

struct ZstdStream {
  ZSTD_DStream* ds = nullptr;
  bool frameDone = false;  // true between frames: where the input may legally end
  bool ended = false;
  // One step's output. Its size is ZSTD_DStreamOutSize() (one block), never anything a frame
  // header claims: a few hundred KiB of hostile input decode to gigabytes (a decompression
  // bomb), so each call hands back at most this much and JavaScript loops, consuming as it goes.
  std::vector<char> scratch;
};

void FreeZstd(Napi::Env, ZstdStream* z) {
  if (z->ds) ZSTD_freeDStream(z->ds);
  delete z;
}

// A decoder failure is a SystemError like any other, with `syscall: 'zstd'`: ENOMEM when libzstd
// could not allocate, EINVAL for input that is not a valid frame (corrupt, a checksum mismatch,
// a window larger than we allow), EIO for input that stops inside a frame.
Napi::Value ZstdError(Napi::Env env, size_t code) {
  int err = ZSTD_getErrorCode(code) == ZSTD_error_memory_allocation ? ENOMEM : EINVAL;
  return ThrowSystemError(env, err, "zstd", "", ZSTD_getErrorName(code));
}

// zstdCreate(): ZstdHandle
Napi::Value ZstdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* z = new ZstdStream();
  z->ds = ZSTD_createDStream();
  if (!z->ds) {
    delete z;
    return ThrowSystemError(env, ENOMEM, "zstd", "", "ZSTD_createDStream");
  }
  // Bound the window a hostile frame may ask for (128 MiB, zstd's own default for --long).
  ZSTD_DCtx_setParameter(z->ds, ZSTD_d_windowLogMax, 27);
  z->scratch.resize(ZSTD_DStreamOutSize());
  return Napi::External<ZstdStream>::New(env, z, FreeZstd);
}

ZstdStream* GetZstd(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) return nullptr;
  auto* z = info[0].As<Napi::External<ZstdStream>>().Data();
  return z && z->ds && !z->ended ? z : nullptr;
}

// zstdDecompress(handle, input: Buffer, offset: number): { output, offset, more } — one
// bounded step: decodes from input[offset..] into at most one ZSTD_DStreamOutSize() buffer.
// `offset` is where the next step starts; `more` says the output buffer filled up, so the
// decoder may hold more output even when the input is consumed (call again).
Napi::Value ZstdDecompress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ZstdStream* z = GetZstd(info);
  if (!z || info.Length() < 3 || !info[1].IsBuffer() || !info[2].IsNumber()) {
    return ThrowTypeError(env, "zstdDecompress(handle: ZstdHandle, input: Buffer, offset: number)");
  }
  auto in = info[1].As<Napi::Buffer<char>>();
  double off = info[2].As<Napi::Number>().DoubleValue();
  if (!(off >= 0) || off > static_cast<double>(in.Length())) return ThrowTypeError(env, "zstdDecompress: offset out of range");
  ZSTD_inBuffer input{in.Data(), in.Length(), static_cast<size_t>(off)};
  ZSTD_outBuffer output{z->scratch.data(), z->scratch.size(), 0};
  size_t r = ZSTD_decompressStream(z->ds, &output, &input);
  if (ZSTD_isError(r)) return ZstdError(env, r);
  // 0 means a frame was completely decoded and flushed: a legal place for input to end.
  z->frameDone = r == 0;
  Napi::Object result = Napi::Object::New(env);
  result.Set("output", Napi::Buffer<char>::Copy(env, z->scratch.data(), output.pos));
  result.Set("offset", Napi::Number::New(env, static_cast<double>(input.pos)));
  result.Set("more", Napi::Boolean::New(env, output.pos == output.size));
  return result;
}

// zstdEnd(handle): void — throws when the input stopped in the middle of a frame.
Napi::Value ZstdEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ZstdStream* z = GetZstd(info);
  if (!z) return ThrowTypeError(env, "zstdEnd(handle: ZstdHandle)");
  z->ended = true;
  bool complete = z->frameDone;
  ZSTD_freeDStream(z->ds);
  z->ds = nullptr;
  if (!complete) return ThrowSystemError(env, EIO, "zstd", "", "input ends in the middle of a frame");
  return env.Undefined();
}

}  // namespace

void RegisterZstd(Napi::Env env, Napi::Object exports) {
  exports.Set("zstdCreate", Napi::Function::New(env, ZstdCreate, "zstdCreate"));
  exports.Set("zstdDecompress", Napi::Function::New(env, ZstdDecompress, "zstdDecompress"));
  exports.Set("zstdEnd", Napi::Function::New(env, ZstdEnd, "zstdEnd"));
}

}  // namespace berth
