// N-API glue of btrfs-subvolume.h: checks the request object, runs the ioctl on a libuv
// thread-pool thread (a snapshot or a destroy commits a btrfs transaction, which can wait on
// the disk for long), settles the promise with the one SystemError on failure.
#include "btrfs-napi.h"

#include <string>

#include "btrfs-subvolume.h"
#include "napi-errors.h"

namespace berth {
namespace {

constexpr const char* kUsage =
    "btrfsSubvolume(request: { op: 'create', path: string } | { op: 'snapshot', source: string, path: string, readonly?: boolean } | { op: 'destroy', path: string } | { op: 'set-readonly', path: string, readonly: boolean })";

class SubvolumeWorker : public Napi::AsyncWorker {
 public:
  SubvolumeWorker(Napi::Env env, btrfs::SubvolumeRequest request)
      : Napi::AsyncWorker(env, "berth:btrfs"), request_(std::move(request)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { btrfs::RunSubvolumeOp(request_, &failure_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.err == 0) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    deferred_.Reject(MakeSystemError(env, failure_.err, failure_.syscall, failure_.path));
  }

 private:
  btrfs::SubvolumeRequest request_;
  fsops::Failure failure_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value BtrfsSubvolume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowTypeError(env, kUsage);
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value op = o.Get("op"), path = o.Get("path"), source = o.Get("source"), readonly = o.Get("readonly");
  if (!op.IsString() || !path.IsString()) return ThrowTypeError(env, kUsage);
  btrfs::SubvolumeRequest request;
  std::string name = op.As<Napi::String>().Utf8Value();
  request.path = path.As<Napi::String>().Utf8Value();
  if (name == "create") {
    request.op = btrfs::SubvolumeOp::kCreate;
  } else if (name == "destroy") {
    request.op = btrfs::SubvolumeOp::kDestroy;
  } else if (name == "set-readonly") {
    if (!readonly.IsBoolean()) return ThrowTypeError(env, kUsage);
    request.op = btrfs::SubvolumeOp::kSetReadonly;
    request.readonly = readonly.As<Napi::Boolean>().Value();
  } else if (name == "snapshot") {
    if (!source.IsString()) return ThrowTypeError(env, kUsage);
    request.op = btrfs::SubvolumeOp::kSnapshot;
    request.source = source.As<Napi::String>().Utf8Value();
    if (!readonly.IsUndefined() && !readonly.IsBoolean()) return ThrowTypeError(env, kUsage);
    request.readonly = readonly.IsBoolean() && readonly.As<Napi::Boolean>().Value();
  } else {
    return ThrowTypeError(env, kUsage);
  }
  if (request.path.empty() || request.path.find('\0') != std::string::npos || request.source.find('\0') != std::string::npos) {
    return ThrowTypeError(env, kUsage);
  }
  auto* worker = new SubvolumeWorker(env, std::move(request));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterBtrfs(Napi::Env env, Napi::Object exports) {
  exports.Set("btrfsSubvolume", Napi::Function::New(env, BtrfsSubvolume, "btrfsSubvolume"));
}

}  // namespace berth
