#include "netlink-napi.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "napi-errors.h"
#include "netlink.h"

namespace berth {
namespace {

// Runs `work` on a libuv worker thread: netlink calls wait for the kernel's rtnl lock, which a
// namespace being torn down elsewhere can hold for milliseconds.
class NetWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<bool(NativeError*)>;
  using Done = std::function<Napi::Value(Napi::Env)>;

  NetWorker(Napi::Env env, Work work, Done done)
      : Napi::AsyncWorker(env, "berth:net"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), done_(std::move(done)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { work_(&error_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!error_.ok()) {
      deferred_.Reject(MakeSystemError(env, error_));
      return;
    }
    deferred_.Resolve(done_ ? done_(env) : env.Undefined());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  NativeError error_;
};

std::string StringField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

std::vector<std::string> StringsField(const Napi::Object& o, const char* key) {
  std::vector<std::string> out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return out;
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value s = a.Get(i);
    if (s.IsString()) out.push_back(s.As<Napi::String>().Utf8Value());
  }
  return out;
}

uint32_t U32Field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : 0;
}

NetInterface InterfaceFrom(const Napi::Object& o) {
  NetInterface nic;
  nic.host_ifname = StringField(o, "hostIfname");
  nic.bridge = StringField(o, "bridge");
  nic.ifname = StringField(o, "ifname");
  nic.addresses = StringsField(o, "addresses");
  nic.gateway = StringField(o, "gateway");
  nic.mtu = U32Field(o, "mtu");
  nic.mac = StringField(o, "mac");
  nic.alias = StringField(o, "alias");
  Napi::Value hairpin = o.Get("hairpin");
  nic.hairpin = !hairpin.IsBoolean() || hairpin.As<Napi::Boolean>().Value();
  return nic;
}

// netEnsureBridge({ name, addresses, mtu?, mac?, alias? }) -> Promise<void>
Napi::Value NetEnsureBridge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowTypeError(env, "netEnsureBridge({ name, addresses, mtu?, mac?, alias? })");
  auto o = info[0].As<Napi::Object>();
  BridgeSpec spec;
  spec.name = StringField(o, "name");
  spec.addresses = StringsField(o, "addresses");
  spec.mtu = U32Field(o, "mtu");
  spec.alias = StringField(o, "alias");
  spec.mac = StringField(o, "mac");
  if (spec.name.empty() || spec.name.size() >= 16) return ThrowTypeError(env, "netEnsureBridge: name must have 1 to 15 characters");
  auto* w = new NetWorker(env, [spec](NativeError* e) { return EnsureBridge(spec, e); }, nullptr);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// netDeleteLink(name) -> Promise<boolean>: false when no such link existed.
Napi::Value NetDeleteLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowTypeError(env, "netDeleteLink(name: string)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  auto existed = std::make_shared<bool>(false);
  auto* w = new NetWorker(
      env, [name, existed](NativeError* e) { return DeleteLink(name, existed.get(), e); },
      [existed](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, *existed); });
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// netListLinks() -> Promise<Array<{ index, name, kind, alias, master, mtu, up }>>
Napi::Value NetListLinks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto links = std::make_shared<std::vector<LinkInfo>>();
  auto* w = new NetWorker(
      env, [links](NativeError* e) { return ListLinks(links.get(), e); },
      [links](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, links->size());
        for (uint32_t i = 0; i < links->size(); ++i) {
          const LinkInfo& l = (*links)[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("index", l.index);
          o.Set("name", l.name);
          o.Set("kind", l.kind);
          o.Set("alias", l.alias);
          o.Set("master", l.master);
          o.Set("mtu", l.mtu);
          o.Set("up", l.up);
          out.Set(i, o);
        }
        return out;
      });
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// netAttach({ pid, pidfd, interfaces }) -> Promise<void>: adds interfaces to a running
// container (network.connect). The namespace is opened through /proc/<pid> and then the
// pidfd is checked to still name a live process, so a recycled pid cannot redirect it.
Napi::Value NetAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowTypeError(env, "netAttach({ pid, pidfd, interfaces })");
  auto o = info[0].As<Napi::Object>();
  Napi::Value pidv = o.Get("pid");
  Napi::Value pidfdv = o.Get("pidfd");
  Napi::Value list = o.Get("interfaces");
  if (!pidv.IsNumber() || !pidfdv.IsNumber() || !list.IsArray()) return ThrowTypeError(env, "netAttach({ pid, pidfd, interfaces })");
  int pid = pidv.As<Napi::Number>().Int32Value();
  int pidfd = pidfdv.As<Napi::Number>().Int32Value();
  std::vector<NetInterface> interfaces;
  auto a = list.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (a.Get(i).IsObject()) interfaces.push_back(InterfaceFrom(a.Get(i).As<Napi::Object>()));
  }
  auto* w = new NetWorker(
      env,
      [pid, pidfd, interfaces](NativeError* e) {
        const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
        int netns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (netns < 0) {
          e->err = errno;
          e->syscall = "open";
          e->path = path;
          return false;
        }
        if (syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) < 0) {
          e->err = errno;
          e->syscall = "pidfd_send_signal";
          e->path = std::to_string(pid);
          e->message = "the container exited";
          close(netns);
          return false;
        }
        bool ok = ConfigureInterfaces(netns, interfaces, e);
        close(netns);
        return ok;
      },
      nullptr);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// netFlushConntrack({ protocol: 'tcp' | 'udp', port }) -> Promise<number>: entries deleted.
Napi::Value NetFlushConntrack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return ThrowTypeError(env, "netFlushConntrack({ protocol, port })");
  auto o = info[0].As<Napi::Object>();
  std::string proto = StringField(o, "protocol");
  uint32_t port = U32Field(o, "port");
  if ((proto != "tcp" && proto != "udp") || port == 0 || port > 65535) return ThrowTypeError(env, "netFlushConntrack: protocol must be tcp or udp, port 1..65535");
  uint8_t num = proto == "tcp" ? IPPROTO_TCP : IPPROTO_UDP;
  auto deleted = std::make_shared<int>(0);
  auto* w = new NetWorker(
      env, [num, port, deleted](NativeError* e) { return FlushConntrack(num, static_cast<uint16_t>(port), deleted.get(), e); },
      [deleted](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *deleted); });
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void RegisterNetOps(Napi::Env env, Napi::Object exports) {
  exports.Set("netEnsureBridge", Napi::Function::New(env, NetEnsureBridge, "netEnsureBridge"));
  exports.Set("netDeleteLink", Napi::Function::New(env, NetDeleteLink, "netDeleteLink"));
  exports.Set("netListLinks", Napi::Function::New(env, NetListLinks, "netListLinks"));
  exports.Set("netAttach", Napi::Function::New(env, NetAttach, "netAttach"));
  exports.Set("netFlushConntrack", Napi::Function::New(env, NetFlushConntrack, "netFlushConntrack"));
}

}  // namespace berth
