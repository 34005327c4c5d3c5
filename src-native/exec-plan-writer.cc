#include "exec-plan.h"

#include <cstring>

namespace berth {
namespace {

class Writer {
 public:
  template <typename T>
  void Put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(v));
  }
  void Pad8() { out_.append((8 - out_.size() % 8) % 8, '\0'); }
  void Bytes(const void* data, size_t n) { out_.append(static_cast<const char*>(data), n); }
  void Str(const std::string& s) {
    out_.append(s.data(), strnlen(s.data(), s.size()));
    out_.push_back('\0');
  }
  void Strs(const std::vector<std::string>& v) {
    Put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) Str(s);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string WriteExecPlan(const LaunchSpec& spec) {
  Writer w;
  w.Put<uint32_t>(kExecPlanMagic);
  w.Put<int32_t>(spec.join_namespaces);
  w.Put<uint8_t>(spec.tty ? 1 : 0);
  w.Put<uint16_t>(spec.tty_rows);
  w.Put<uint16_t>(spec.tty_cols);
  uint8_t given = 0;
  for (int i = 0; i < 3; ++i) {
    if (!spec.tty && spec.stdio[i].mode != StdioMode::kNull) given |= static_cast<uint8_t>(1 << i);
  }
  w.Put<uint8_t>(given);
  w.Put<uint32_t>(spec.uid);
  w.Put<uint32_t>(spec.gid);
  for (uint64_t cap : {spec.cap_bounding, spec.cap_effective, spec.cap_permitted, spec.cap_inheritable, spec.cap_ambient}) {
    w.Put<uint64_t>(cap);
  }
  w.Put<uint8_t>(spec.no_new_privs ? 1 : 0);
  w.Put<uint8_t>(spec.die_with_parent ? 1 : 0);
  w.Put<uint8_t>(spec.set_oom_score_adj ? 1 : 0);
  w.Put<int32_t>(spec.oom_score_adj);
  w.Put<uint32_t>(static_cast<uint32_t>(spec.groups.size()));
  w.Pad8();
  w.Bytes(spec.groups.data(), spec.groups.size() * sizeof(uint32_t));
  w.Put<uint32_t>(static_cast<uint32_t>(spec.rlimits.size()));
  w.Pad8();
  w.Bytes(spec.rlimits.data(), spec.rlimits.size() * sizeof(ProcessRlimit));
  w.Put<uint32_t>(static_cast<uint32_t>(spec.seccomp.size()));
  w.Pad8();
  w.Bytes(spec.seccomp.data(), spec.seccomp.size());
  w.Str(spec.cwd);
  w.Strs(spec.argv);
  w.Strs(spec.env);
  w.Strs(spec.exec_candidates);
  w.Put<uint32_t>(kExecPlanMagic);
  return w.Take();
}

}  // namespace berth
