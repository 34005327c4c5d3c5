// A streaming gzip inflater for layers on ISA-L's igzip (libisal), loaded with dlopen so that
// the addon neither needs it nor links it: on the bench's 100 MiB layer it inflates with
// 72 ms of CPU where Node's zlib takes 172 ms (docs/design/images.md, "gzip"), CPU that a pull
// on a machine whose cores are all busy pays in wall time. Glue only: the
// decoder is ISA-L's; failures are SystemErrors like any other (napi-errors.h).
#include "gzip-napi.h"

#include <dlfcn.h>
#include <errno.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "napi-errors.h"

#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/igzip_lib.h>
#define BERTH_HAVE_ISAL 1
#endif

namespace berth {
namespace {

#ifdef BERTH_HAVE_ISAL

struct Isal {
  void (*init)(inflate_state*) = nullptr;
  void (*reset)(inflate_state*) = nullptr;
  int (*inflate)(inflate_state*) = nullptr;
};

// Looked up once per process; null members when the library is absent.
const Isal& LoadIsal() {
  static const Isal isal = [] {
    Isal l;
    void* h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h) return l;
    l.init = reinterpret_cast<void (*)(inflate_state*)>(dlsym(h, "isal_inflate_init"));
    l.reset = reinterpret_cast<void (*)(inflate_state*)>(dlsym(h, "isal_inflate_reset"));
    l.inflate = reinterpret_cast<int (*)(inflate_state*)>(dlsym(h, "isal_inflate"));
    if (!l.init || !l.reset || !l.inflate) l = Isal();
    return l;
  }();
  return isal;
}

// One step's output at most (as zstd's one block): a few KiB of hostile input can claim
// gigabytes, so each call hands back at most this much and JavaScript loops, consuming as it
// goes (the layer size limit stops a bomb).
constexpr uint32_t kStepOut = 128 * 1024;

struct GzipStream {
  inflate_state state;
  // Between members (or before the first byte): where the input may legally end.
  bool memberDone = false;
  bool started = false;
  // Zero padding after a member: ignored to the end of the input.
  bool trailing = false;
  bool ended = false;
  // Where every step inflates to, allocated once per stream. A fresh 128 KiB Buffer per step
  // was a zero-filled allocation each time, and most steps are short (an HTTP piece of
  // incompressible data inflates to less than 128 KiB), so the result was copied out of it
  // into a second, right-sized Buffer anyway.
  std::unique_ptr<uint8_t[]> scratch{new uint8_t[kStepOut]};
};

void FreeGzip(Napi::Env, GzipStream* g) { delete g; }

GzipStream* GetGzip(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) return nullptr;
  auto* g = info[0].As<Napi::External<GzipStream>>().Data();
  return g && !g->ended ? g : nullptr;
}

// A decoder failure: EINVAL for input that is not valid gzip (a bad header, block, symbol,
// distance or checksum), EIO for input that stops inside a member. `syscall: 'gzip'`.
Napi::Value GzipError(Napi::Env env, int code) {
  const char* what = code == ISAL_INCORRECT_CHECKSUM ? "incorrect checksum (CRC-32 or length of a member)"
                     : code == ISAL_INVALID_WRAPPER  ? "invalid gzip header"
                     : code == ISAL_UNSUPPORTED_METHOD ? "unsupported compression method"
                                                        : "invalid deflate data";
  return ThrowSystemError(env, EINVAL, "gzip", "", what);
}

// gzipCreate(): GzipHandle | null — null when ISA-L is not available here.
Napi::Value GzipCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Isal& isal = LoadIsal();
  if (!isal.inflate) return env.Null();
  auto* g = new GzipStream();
  isal.init(&g->state);
  g->state.crc_flag = ISAL_GZIP;  // parse the header, verify CRC-32 and length at the end
  return Napi::External<GzipStream>::New(env, g, FreeGzip);
}

// gzipInflate(handle, input: Buffer, offset: number): { output, offset, more } — one bounded
// step from input[offset..], as zstdDecompress.
Napi::Value GzipInflate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GzipStream* g = GetGzip(info);
  if (!g || info.Length() < 3 || !info[1].IsBuffer() || !info[2].IsNumber()) {
    return ThrowTypeError(env, "gzipInflate(handle: GzipHandle, input: Buffer, offset: number)");
  }
  const Isal& isal = LoadIsal();
  auto in = info[1].As<Napi::Buffer<uint8_t>>();
  double off = info[2].As<Napi::Number>().DoubleValue();
  if (!(off >= 0) || off > static_cast<double>(in.Length())) return ThrowTypeError(env, "gzipInflate: offset out of range");
  size_t pos = static_cast<size_t>(off);
  uint8_t* const out = g->scratch.get();
  uint32_t produced = 0;
  while (pos < in.Length() && produced < kStepOut && !g->trailing) {
    if (g->memberDone) {
      // After a member, a zero byte starts padding that is ignored; anything else must be
      // another member (concatenated gzip). Node's zlib draws the same line.
      if (in.Data()[pos] == 0x00) {
        g->trailing = true;
        break;
      }
      isal.reset(&g->state);
      g->state.crc_flag = ISAL_GZIP;
      g->memberDone = false;
    }
    g->started = true;
    const size_t chunk = std::min<size_t>(in.Length() - pos, 1u << 30);
    g->state.next_in = in.Data() + pos;
    g->state.avail_in = static_cast<uint32_t>(chunk);
    g->state.next_out = out + produced;
    g->state.avail_out = kStepOut - produced;
    int r = isal.inflate(&g->state);
    pos += chunk - g->state.avail_in;
    produced = kStepOut - g->state.avail_out;
    if (r != ISAL_DECOMP_OK) return GzipError(env, r);
    if (g->state.block_state == ISAL_BLOCK_FINISH) g->memberDone = true;
    else if (g->state.avail_in == 0 || g->state.avail_out == 0) break;
  }
  if (g->trailing) pos = in.Length();
  Napi::Object result = Napi::Object::New(env);
  // A fresh buffer per step (the consumer may keep it), of exactly what was produced.
  result.Set("output", Napi::Buffer<uint8_t>::Copy(env, out, produced));
  result.Set("offset", Napi::Number::New(env, static_cast<double>(pos)));
  result.Set("more", Napi::Boolean::New(env, produced == kStepOut));
  return result;
}

// gzipEnd(handle): void — throws when the input stopped in the middle of a member (or was empty).
Napi::Value GzipEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GzipStream* g = GetGzip(info);
  if (!g) return ThrowTypeError(env, "gzipEnd(handle: GzipHandle)");
  g->ended = true;
  if (!g->memberDone) return ThrowSystemError(env, EIO, "gzip", "", g->started ? "unexpected end of input in the middle of a gzip member" : "empty input, not gzip");
  return env.Undefined();
}

#else

Napi::Value GzipCreate(const Napi::CallbackInfo& info) { return info.Env().Null(); }
Napi::Value GzipInflate(const Napi::CallbackInfo& info) { return ThrowTypeError(info.Env(), "gzipInflate: built without ISA-L"); }
Napi::Value GzipEnd(const Napi::CallbackInfo& info) { return ThrowTypeError(info.Env(), "gzipEnd: built without ISA-L"); }

#endif

}  // namespace

void RegisterGzip(Napi::Env env, Napi::Object exports) {
  exports.Set("gzipCreate", Napi::Function::New(env, GzipCreate, "gzipCreate"));
  exports.Set("gzipInflate", Napi::Function::New(env, GzipInflate, "gzipInflate"));
  exports.Set("gzipEnd", Napi::Function::New(env, GzipEnd, "gzipEnd"));
}

}  // namespace berth
