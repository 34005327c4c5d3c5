#include "dns-napi.h"

#include <string>
#include <vector>

#include "dns-handover.h"
#include "dns-message.h"
#include "napi-errors.h"

namespace berth {
namespace {

// dnsParseQuery(bytes: Uint8Array): { result, id, flags, name, qtype, qclass }
Napi::Value ParseQueryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "dnsParseQuery(bytes: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto bytes = info[0].As<Napi::Uint8Array>();
  DnsQuery q;
  DnsParse r = ParseQuery(bytes.Data(), bytes.ByteLength(), &q);
  Napi::Object out = Napi::Object::New(env);
  out.Set("result", Napi::Number::New(env, static_cast<int>(r)));
  out.Set("id", Napi::Number::New(env, q.id));
  out.Set("flags", Napi::Number::New(env, q.flags));
  out.Set("name", Napi::String::New(env, q.name));
  out.Set("qtype", Napi::Number::New(env, q.qtype));
  out.Set("qclass", Napi::Number::New(env, q.qclass));
  return out;
}

// dnsBuildAnswer(query, rcode, addresses: number[], ptr: string): Buffer (at most 512 bytes)
Napi::Value BuildAnswerJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsObject() || !info[1].IsNumber() || !info[2].IsArray() || !info[3].IsString()) {
    Napi::TypeError::New(env, "dnsBuildAnswer(query, rcode, addresses, ptr)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto o = info[0].As<Napi::Object>();
  DnsQuery q;
  q.id = static_cast<uint16_t>(o.Get("id").ToNumber().Uint32Value());
  q.flags = static_cast<uint16_t>(o.Get("flags").ToNumber().Uint32Value());
  q.name = o.Get("name").ToString().Utf8Value();
  q.qtype = static_cast<uint16_t>(o.Get("qtype").ToNumber().Uint32Value());
  q.qclass = static_cast<uint16_t>(o.Get("qclass").ToNumber().Uint32Value());
  std::vector<uint32_t> addresses;
  auto a = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) addresses.push_back(a.Get(i).ToNumber().Uint32Value());
  uint8_t out[kDnsUdpLimit];
  size_t len = BuildAnswer(q, static_cast<uint8_t>(info[1].As<Napi::Number>().Uint32Value()), addresses,
                           info[3].As<Napi::String>().Utf8Value(), out, sizeof(out));
  return Napi::Buffer<uint8_t>::Copy(env, out, len);
}

// On a libuv thread: the resolver answers at once, but a wedged one must not hold Node's loop.
class UpdateWorker : public Napi::AsyncWorker {
 public:
  UpdateWorker(Napi::Env env, std::string control, std::string message)
      : Napi::AsyncWorker(env, "berth:dns-update"), control_(std::move(control)), message_(std::move(message)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { result_ = DnsUpdate(control_, message_, &failure_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_ < 0) return deferred_.Reject(MakeSystemError(env, failure_));
    deferred_.Resolve(Napi::Boolean::New(env, result_ == 1));
  }

 private:
  std::string control_, message_;
  int result_ = -1;
  NativeError failure_;
  Napi::Promise::Deferred deferred_;
};

// dnsUpdate({ control, message }): Promise<boolean>
Napi::Value UpdateJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  constexpr const char* kUsage = "dnsUpdate(request: { control: string, message: string })";
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowTypeError(env, kUsage);
  auto o = info[0].As<Napi::Object>();
  Napi::Value control = o.Get("control"), message = o.Get("message");
  if (!control.IsString() || !message.IsString()) return ThrowTypeError(env, kUsage);
  auto* worker = new UpdateWorker(env, control.As<Napi::String>().Utf8Value(), message.As<Napi::String>().Utf8Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterDns(Napi::Env env, Napi::Object exports) {
  exports.Set("dnsParseQuery", Napi::Function::New(env, ParseQueryJs, "dnsParseQuery"));
  exports.Set("dnsBuildAnswer", Napi::Function::New(env, BuildAnswerJs, "dnsBuildAnswer"));
  exports.Set("dnsUpdate", Napi::Function::New(env, UpdateJs, "dnsUpdate"));
}

}  // namespace berth
