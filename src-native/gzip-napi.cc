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

// Node's own OpenSSL (its symbols are the process's): the sha256 of what a stream inflates.
#include <openssl/evp.h>

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
// A step on the pool costs a hop there and back (a queue, a wake-up, a promise), so it does
// more per hop: 512 KiB, still a bound that no input can raise.
constexpr uint32_t kAsyncStepOut = 512 * 1024;

struct GzipStream {
  inflate_state state;
  // Between members (or before the first byte): where the input may legally end.
  bool memberDone = false;
  bool started = false;
  // Zero padding after a member: ignored to the end of the input.
  bool trailing = false;
  bool ended = false;
  // A gzipInflateAsync step owns the stream until it settles.
  bool busy = false;
  // Where every step inflates to, allocated once per stream. A fresh 128 KiB Buffer per step
  // was a zero-filled allocation each time, and most steps are short (an HTTP piece of
  // incompressible data inflates to less than 128 KiB), so the result was copied out of it
  // into a second, right-sized Buffer anyway.
  std::unique_ptr<uint8_t[]> scratch{new uint8_t[kStepOut]};
  // The same for steps on the pool, allocated at the first one. A fresh malloc'd buffer per
  // step, handed to JavaScript without a copy, was measured slower: 512 KiB is above glibc's
  // mmap threshold, and the worker thread's arena returned its pages each time, so every step
  // paid page faults (single100: +250 ms of system CPU per pull).
  std::unique_ptr<uint8_t[]> asyncScratch;
  // gzipCreate({ digest: true }): the sha256 of every byte of output, updated by the step that
  // produced it (on the pool for gzipInflateAsync), so that the JS thread hashes none of it.
  EVP_MD_CTX* digest = nullptr;
  ~GzipStream() {
    if (digest) EVP_MD_CTX_free(digest);
  }
};

void FreeGzip(Napi::Env, GzipStream* g) { delete g; }

GzipStream* GetGzip(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) return nullptr;
  auto* g = info[0].As<Napi::External<GzipStream>>().Data();
  return g && !g->ended ? g : nullptr;
}

// A decoder failure: EINVAL for input that is not valid gzip (a bad header, block, symbol,
// distance or checksum), EIO for input that stops inside a member. `syscall: 'gzip'`.
Napi::Object GzipErrorObject(Napi::Env env, int code) {
  const char* what = code == ISAL_INCORRECT_CHECKSUM ? "incorrect checksum (CRC-32 or length of a member)"
                     : code == ISAL_INVALID_WRAPPER  ? "invalid gzip header"
                     : code == ISAL_UNSUPPORTED_METHOD ? "unsupported compression method"
                                                        : "invalid deflate data";
  return MakeSystemError(env, EINVAL, "gzip", "", what);
}

Napi::Value GzipError(Napi::Env env, int code) {
  Napi::Error(env, GzipErrorObject(env, code)).ThrowAsJavaScriptException();
  return env.Undefined();
}

// gzipCreate(options?: { digest?: boolean }): GzipHandle | null — null when ISA-L is not
// available here.
Napi::Value GzipCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool digest = false;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    Napi::Value d = info[0].IsObject() ? info[0].As<Napi::Object>().Get("digest") : Napi::Value();
    if (!info[0].IsObject() || !(d.IsUndefined() || d.IsBoolean())) return ThrowTypeError(env, "gzipCreate(options?: { digest?: boolean })");
    digest = d.IsBoolean() && d.As<Napi::Boolean>().Value();
  }
  const Isal& isal = LoadIsal();
  if (!isal.inflate) return env.Null();
  auto* g = new GzipStream();
  if (digest) {
    g->digest = EVP_MD_CTX_new();
    if (!g->digest || EVP_DigestInit_ex(g->digest, EVP_sha256(), nullptr) != 1) {
      delete g;
      return ThrowSystemError(env, ENOMEM, "gzip", "", "cannot set up sha256");
    }
  }
  isal.init(&g->state);
  g->state.crc_flag = ISAL_GZIP;  // parse the header, verify CRC-32 and length at the end
  return Napi::External<GzipStream>::New(env, g, FreeGzip);
}

// The step itself, plain C++ so that it runs on the JS thread (gzipInflate) or on a libuv
// worker (gzipInflateAsync): inflates in[*pos..] into out[0..cap) until the output is full,
// the input is consumed or padding starts. Returns ISAL_DECOMP_OK or ISA-L's failure code.
int InflateStep(const Isal& isal, GzipStream* g, const uint8_t* in, size_t len, size_t* pos, uint8_t* out, uint32_t cap, uint32_t* produced) {
  *produced = 0;
  while (*pos < len && *produced < cap && !g->trailing) {
    if (g->memberDone) {
      // After a member, a zero byte starts padding that is ignored; anything else must be
      // another member (concatenated gzip). Node's zlib draws the same line.
      if (in[*pos] == 0x00) {
        g->trailing = true;
        break;
      }
      isal.reset(&g->state);
      g->state.crc_flag = ISAL_GZIP;
      g->memberDone = false;
    }
    g->started = true;
    const size_t chunk = std::min<size_t>(len - *pos, 1u << 30);
    g->state.next_in = const_cast<uint8_t*>(in) + *pos;
    g->state.avail_in = static_cast<uint32_t>(chunk);
    g->state.next_out = out + *produced;
    g->state.avail_out = cap - *produced;
    int r = isal.inflate(&g->state);
    *pos += chunk - g->state.avail_in;
    *produced = cap - g->state.avail_out;
    if (r != ISAL_DECOMP_OK) return r;
    if (g->state.block_state == ISAL_BLOCK_FINISH) g->memberDone = true;
    else if (g->state.avail_in == 0 || g->state.avail_out == 0) break;
  }
  if (g->trailing) *pos = len;
  if (g->digest && *produced > 0) EVP_DigestUpdate(g->digest, out, *produced);
  return ISAL_DECOMP_OK;
}

// Checks (handle, input, offset); returns the stream or null after throwing a TypeError.
GzipStream* StepArgs(const Napi::CallbackInfo& info, const char* usage, size_t* pos) {
  Napi::Env env = info.Env();
  GzipStream* g = GetGzip(info);
  if (!g || g->busy || info.Length() < 3 || !info[1].IsBuffer() || !info[2].IsNumber()) {
    ThrowTypeError(env, g && g->busy ? std::string(usage) + ": a step of this stream is still running" : usage);
    return nullptr;
  }
  auto in = info[1].As<Napi::Buffer<uint8_t>>();
  double off = info[2].As<Napi::Number>().DoubleValue();
  if (!(off >= 0) || off > static_cast<double>(in.Length())) {
    ThrowTypeError(env, std::string(usage) + ": offset out of range");
    return nullptr;
  }
  *pos = static_cast<size_t>(off);
  return g;
}

Napi::Object StepResult(Napi::Env env, Napi::Buffer<uint8_t> output, size_t pos, bool more) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("output", output);
  result.Set("offset", Napi::Number::New(env, static_cast<double>(pos)));
  result.Set("more", Napi::Boolean::New(env, more));
  return result;
}

// gzipInflate(handle, input: Buffer, offset: number): { output, offset, more } — one bounded
// step from input[offset..], as zstdDecompress.
Napi::Value GzipInflate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t pos = 0;
  GzipStream* g = StepArgs(info, "gzipInflate(handle: GzipHandle, input: Buffer, offset: number)", &pos);
  if (!g) return env.Undefined();
  auto in = info[1].As<Napi::Buffer<uint8_t>>();
  uint32_t produced = 0;
  int r = InflateStep(LoadIsal(), g, in.Data(), in.Length(), &pos, g->scratch.get(), kStepOut, &produced);
  if (r != ISAL_DECOMP_OK) return GzipError(env, r);
  // A fresh buffer per step (the consumer may keep it), of exactly what was produced.
  return StepResult(env, Napi::Buffer<uint8_t>::Copy(env, g->scratch.get(), produced), pos, produced == kStepOut);
}

// One gzipInflateAsync step on libuv's pool. The stream is the worker's alone while it runs
// (`busy` refuses a second step or gzipEnd from JavaScript), the handle and the input buffer
// are held by references so that neither is collected under it. The output is copied out of
// the stream's scratch buffer on the JS thread, exactly as the synchronous step does.
class InflateWorker : public Napi::AsyncWorker {
 public:
  InflateWorker(Napi::Env env, GzipStream* g, Napi::Value handle, Napi::Buffer<uint8_t> input, size_t pos)
      : Napi::AsyncWorker(env, "berth:gzip"),
        g_(g),
        handle_(Napi::Persistent(handle.As<Napi::External<GzipStream>>())),
        input_(Napi::Persistent(input)),
        data_(input.Data()),
        len_(input.Length()),
        pos_(pos),
        deferred_(Napi::Promise::Deferred::New(env)) {
    g_->busy = true;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    result_ = InflateStep(LoadIsal(), g_, data_, len_, &pos_, g_->asyncScratch.get(), kAsyncStepOut, &produced_);
  }

  void OnOK() override {
    Napi::Env env = Env();
    g_->busy = false;
    if (result_ != ISAL_DECOMP_OK) {
      deferred_.Reject(GzipErrorObject(env, result_));
      return;
    }
    deferred_.Resolve(StepResult(env, Napi::Buffer<uint8_t>::Copy(env, g_->asyncScratch.get(), produced_), pos_, produced_ == kAsyncStepOut));
  }

  void OnError(const Napi::Error& e) override {
    g_->busy = false;
    deferred_.Reject(e.Value());
  }

 private:
  GzipStream* g_;
  Napi::Reference<Napi::External<GzipStream>> handle_;
  Napi::Reference<Napi::Buffer<uint8_t>> input_;
  const uint8_t* data_;
  size_t len_;
  size_t pos_;
  uint32_t produced_ = 0;
  int result_ = ISAL_DECOMP_OK;
  Napi::Promise::Deferred deferred_;
};

// gzipInflateAsync(handle, input: Buffer, offset: number): Promise<{ output, offset, more }> —
// gzipInflate's step (with up to kAsyncStepOut of output) on a libuv worker.
Napi::Value GzipInflateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t pos = 0;
  GzipStream* g = StepArgs(info, "gzipInflateAsync(handle: GzipHandle, input: Buffer, offset: number)", &pos);
  if (!g) return env.Undefined();
  if (!g->asyncScratch) g->asyncScratch.reset(new uint8_t[kAsyncStepOut]);
  auto* w = new InflateWorker(env, g, info[0], info[1].As<Napi::Buffer<uint8_t>>(), pos);
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

// gzipEnd(handle): string | undefined — the sha256 (hex) of all output with { digest: true }.
// Throws when the input stopped in the middle of a member (or was empty).
Napi::Value GzipEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GzipStream* g = GetGzip(info);
  if (!g || g->busy) return ThrowTypeError(env, g ? "gzipEnd: a gzipInflateAsync step of this stream is still running" : "gzipEnd(handle: GzipHandle)");
  g->ended = true;
  if (!g->memberDone) return ThrowSystemError(env, EIO, "gzip", "", g->started ? "unexpected end of input in the middle of a gzip member" : "empty input, not gzip");
  if (!g->digest) return env.Undefined();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(g->digest, md, &n) != 1) return ThrowSystemError(env, EIO, "gzip", "", "sha256 failed");
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < n; i++) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return Napi::String::New(env, hex);
}

#else

Napi::Value GzipCreate(const Napi::CallbackInfo& info) { return info.Env().Null(); }
Napi::Value GzipInflate(const Napi::CallbackInfo& info) { return ThrowTypeError(info.Env(), "gzipInflate: built without ISA-L"); }
Napi::Value GzipInflateAsync(const Napi::CallbackInfo& info) { return ThrowTypeError(info.Env(), "gzipInflateAsync: built without ISA-L"); }
Napi::Value GzipEnd(const Napi::CallbackInfo& info) { return ThrowTypeError(info.Env(), "gzipEnd: built without ISA-L"); }

#endif

}  // namespace

void RegisterGzip(Napi::Env env, Napi::Object exports) {
  exports.Set("gzipCreate", Napi::Function::New(env, GzipCreate, "gzipCreate"));
  exports.Set("gzipInflate", Napi::Function::New(env, GzipInflate, "gzipInflate"));
  exports.Set("gzipInflateAsync", Napi::Function::New(env, GzipInflateAsync, "gzipInflateAsync"));
  exports.Set("gzipEnd", Napi::Function::New(env, GzipEnd, "gzipEnd"));
}

}  // namespace berth
