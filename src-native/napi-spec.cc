#include "napi-spec.h"

#include <string>

#include "napi-errors.h"

namespace berth {
namespace {

struct Reader {
  Napi::Env env;
  bool failed = false;

  void Fail(const std::string& field, const char* want) {
    if (failed) return;
    failed = true;
    ThrowTypeError(env, "launch spec: " + field + " must be " + want);
  }

  std::string Str(Napi::Object o, const char* key, const std::string& field) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return {};
    if (v.IsString()) return v.As<Napi::String>().Utf8Value();
    if (v.IsBuffer()) {
      auto b = v.As<Napi::Buffer<char>>();
      return std::string(b.Data(), b.Length());
    }
    Fail(field, "a string");
    return {};
  }

  double Num(Napi::Object o, const char* key, const std::string& field, double def = 0) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
    Fail(field, "a number");
    return def;
  }

  uint64_t U64(Napi::Object o, const char* key, const std::string& field) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return 0;
    if (v.IsBigInt()) {
      bool lossless;
      return v.As<Napi::BigInt>().Uint64Value(&lossless);
    }
    if (v.IsNumber()) {
      double d = v.As<Napi::Number>().DoubleValue();
      return d < 0 ? ~uint64_t{0} : static_cast<uint64_t>(d);
    }
    Fail(field, "a bigint or number");
    return 0;
  }

  bool Bool(Napi::Object o, const char* key, bool def = false) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    return v.ToBoolean().Value();
  }

  std::vector<std::string> Strings(Napi::Object o, const char* key, const std::string& field) {
    std::vector<std::string> out;
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return out;
    if (!v.IsArray()) {
      Fail(field, "an array of strings");
      return out;
    }
    auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      if (!e.IsString()) {
        Fail(field + "[" + std::to_string(i) + "]", "a string");
        return out;
      }
      std::string s = e.As<Napi::String>().Utf8Value();
      if (s.find('\0') != std::string::npos) {
        Fail(field + "[" + std::to_string(i) + "]", "free of NUL bytes");
        return out;
      }
      out.push_back(std::move(s));
    }
    return out;
  }
};

}  // namespace

bool ParseLaunchSpec(Napi::Env env, Napi::Object js, LaunchSpec* spec) {
  Reader r{env};
  spec->clone_flags = static_cast<int>(r.Num(js, "cloneFlags", "cloneFlags"));
  spec->new_cgroup_ns = r.Bool(js, "newCgroupNs");
  spec->uid_map = r.Str(js, "uidMap", "uidMap");
  spec->gid_map = r.Str(js, "gidMap", "gidMap");
  spec->cgroup_procs = r.Strings(js, "cgroupProcs", "cgroupProcs");
  Napi::Value join = js.Get("join");
  if (join.IsObject()) {
    Napi::Object j = join.As<Napi::Object>();
    spec->join_pidfd = static_cast<int>(r.Num(j, "pidfd", "join.pidfd", -1));
    spec->join_namespaces = static_cast<int>(r.Num(j, "namespaces", "join.namespaces"));
    if (spec->join_pidfd < 0) r.Fail("join.pidfd", "a pidfd");
  }

  Napi::Value mounts = js.Get("mounts");
  if (mounts.IsArray()) {
    auto a = mounts.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length() && !r.failed; ++i) {
      std::string f = "mounts[" + std::to_string(i) + "]";
      Napi::Value ev = a.Get(i);
      if (!ev.IsObject()) {
        r.Fail(f, "an object");
        break;
      }
      Napi::Object o = ev.As<Napi::Object>();
      MountOp op;
      op.kind = static_cast<MountOpKind>(static_cast<int>(r.Num(o, "kind", f + ".kind")));
      op.source = r.Str(o, "source", f + ".source");
      op.target = r.Str(o, "target", f + ".target");
      op.fstype = r.Str(o, "fstype", f + ".fstype");
      op.data = r.Str(o, "data", f + ".data");
      op.content = r.Str(o, "content", f + ".content");
      op.lower_dirs = r.Strings(o, "lowerDirs", f + ".lowerDirs");
      op.flags = static_cast<unsigned long>(r.Num(o, "flags", f + ".flags"));
      op.mode = static_cast<uint32_t>(r.Num(o, "mode", f + ".mode"));
      op.dev = r.U64(o, "dev", f + ".dev");
      op.readonly = r.Bool(o, "readonly");
      op.recursive = r.Bool(o, "recursive");
      op.optional = r.Bool(o, "optional");
      op.create = static_cast<CreateKind>(static_cast<int>(r.Num(o, "create", f + ".create")));
      spec->mounts.push_back(std::move(op));
    }
  } else if (!mounts.IsUndefined()) {
    r.Fail("mounts", "an array");
  }

  spec->hostname = r.Str(js, "hostname", "hostname");
  spec->loopback_up = r.Bool(js, "loopbackUp");

  Napi::Value rl = js.Get("rlimits");
  if (rl.IsArray()) {
    auto a = rl.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length() && !r.failed; ++i) {
      Napi::Object o = a.Get(i).As<Napi::Object>();
      std::string f = "rlimits[" + std::to_string(i) + "]";
      Rlimit lim;
      lim.resource = static_cast<int>(r.Num(o, "resource", f + ".resource"));
      lim.soft = r.U64(o, "soft", f + ".soft");
      lim.hard = r.U64(o, "hard", f + ".hard");
      spec->rlimits.push_back(lim);
    }
  }

  spec->uid = static_cast<uint32_t>(r.Num(js, "uid", "uid"));
  spec->gid = static_cast<uint32_t>(r.Num(js, "gid", "gid"));
  Napi::Value groups = js.Get("groups");
  if (groups.IsArray()) {
    auto a = groups.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      spec->groups.push_back(a.Get(i).As<Napi::Number>().Uint32Value());
    }
  }
  Napi::Value caps = js.Get("capabilities");
  if (caps.IsObject()) {
    Napi::Object c = caps.As<Napi::Object>();
    spec->cap_bounding = r.U64(c, "bounding", "capabilities.bounding");
    spec->cap_effective = r.U64(c, "effective", "capabilities.effective");
    spec->cap_permitted = r.U64(c, "permitted", "capabilities.permitted");
    spec->cap_inheritable = r.U64(c, "inheritable", "capabilities.inheritable");
    spec->cap_ambient = r.U64(c, "ambient", "capabilities.ambient");
  } else {
    r.Fail("capabilities", "an object");
  }
  spec->no_new_privs = r.Bool(js, "noNewPrivileges", true);
  spec->seccomp = r.Str(js, "seccomp", "seccomp");
  if (spec->seccomp.size() % 8 != 0) r.Fail("seccomp", "a whole number of sock_filter entries");
  spec->die_with_parent = r.Bool(js, "dieWithParent", true);
  Napi::Value oom = js.Get("oomScoreAdj");
  if (oom.IsNumber()) {
    spec->set_oom_score_adj = true;
    spec->oom_score_adj = oom.As<Napi::Number>().Int32Value();
  }

  spec->cwd = r.Str(js, "cwd", "cwd");
  spec->argv = r.Strings(js, "argv", "argv");
  spec->env = r.Strings(js, "env", "env");
  spec->exec_candidates = r.Strings(js, "execCandidates", "execCandidates");
  spec->exec_fd = static_cast<int>(r.Num(js, "execFd", "execFd", -1));
  if (spec->argv.empty()) r.Fail("argv", "a non-empty array");

  Napi::Value stdio = js.Get("stdio");
  if (stdio.IsArray()) {
    auto a = stdio.As<Napi::Array>();
    for (uint32_t i = 0; i < 3 && i < a.Length(); ++i) {
      Napi::Object o = a.Get(i).As<Napi::Object>();
      spec->stdio[i].mode = static_cast<StdioMode>(static_cast<int>(r.Num(o, "mode", "stdio.mode")));
      spec->stdio[i].fd = static_cast<int>(r.Num(o, "fd", "stdio.fd", -1));
    }
  }
  spec->tty = r.Bool(js, "tty");
  spec->trace = r.Bool(js, "trace");
  spec->tty_rows = static_cast<uint16_t>(r.Num(js, "ttyRows", "ttyRows", 24));
  spec->tty_cols = static_cast<uint16_t>(r.Num(js, "ttyCols", "ttyCols", 80));
  return !r.failed;
}

}  // namespace berth
