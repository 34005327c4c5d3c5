// Freestanding (built into berth-exec): no libc, no allocation.
#include "exec-plan.h"

namespace berth {
namespace {

class Reader {
 public:
  Reader(const char* data, size_t size) : at_(data), start_(data), end_(data + size) {}

  bool ok() const { return ok_; }

  template <typename T>
  T Get() {
    T v{};
    if (!Need(sizeof(T))) return v;
    __builtin_memcpy(&v, at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  void Pad8() {
    size_t off = static_cast<size_t>(at_ - start_);
    Need((8 - off % 8) % 8);
    if (ok_) at_ += (8 - off % 8) % 8;
  }
  // n items of `size` bytes, in place (the writer aligned them).
  const void* Array(size_t n, size_t size) {
    if (size != 0 && n > static_cast<size_t>(end_ - at_) / size) {
      ok_ = false;
      return nullptr;
    }
    const void* p = at_;
    at_ += n * size;
    return p;
  }
  const char* Str() {
    const char* s = at_;
    while (at_ < end_ && *at_ != '\0') ++at_;
    if (at_ >= end_) {
      ok_ = false;
      return "";
    }
    ++at_;
    return s;
  }
  // n strings into pointers[*used..], NULL-terminated when `terminate`.
  char* const* Strs(const char** pointers, size_t cap, size_t* used, bool terminate, uint32_t* count) {
    uint32_t n = Get<uint32_t>();
    if (!ok_ || n > cap - *used - (terminate ? 1 : 0)) {
      ok_ = false;
      return nullptr;
    }
    const char** first = pointers + *used;
    for (uint32_t i = 0; i < n && ok_; ++i) first[i] = Str();
    *used += n;
    if (terminate) pointers[(*used)++] = nullptr;
    if (count != nullptr) *count = n;
    return const_cast<char* const*>(reinterpret_cast<char* const*>(const_cast<char**>(first)));
  }

 private:
  bool Need(size_t n) {
    if (static_cast<size_t>(end_ - at_) < n) ok_ = false;
    return ok_;
  }
  const char* at_;
  const char* start_;
  const char* end_;
  bool ok_ = true;
};

}  // namespace

bool ReadExecPlan(const char* plan, size_t size, ExecPlanView* out, const char** pointers, size_t pointer_cap) {
  Reader r(plan, size);
  if (r.Get<uint32_t>() != kExecPlanMagic) return false;
  ProcessSpec& p = out->process;
  out->join_namespaces = r.Get<int32_t>();
  p.tty = r.Get<uint8_t>() != 0;
  p.tty_rows = r.Get<uint16_t>();
  p.tty_cols = r.Get<uint16_t>();
  out->stdio_given = r.Get<uint8_t>();
  p.uid = r.Get<uint32_t>();
  p.gid = r.Get<uint32_t>();
  p.cap_bounding = r.Get<uint64_t>();
  p.cap_effective = r.Get<uint64_t>();
  p.cap_permitted = r.Get<uint64_t>();
  p.cap_inheritable = r.Get<uint64_t>();
  p.cap_ambient = r.Get<uint64_t>();
  p.no_new_privs = r.Get<uint8_t>() != 0;
  p.die_with_parent = r.Get<uint8_t>() != 0;
  p.set_oom_score_adj = r.Get<uint8_t>() != 0;
  p.oom_score_adj = r.Get<int32_t>();
  p.group_count = r.Get<uint32_t>();
  r.Pad8();
  p.groups = static_cast<const uint32_t*>(r.Array(p.group_count, sizeof(uint32_t)));
  p.rlimit_count = r.Get<uint32_t>();
  r.Pad8();
  p.rlimits = static_cast<const ProcessRlimit*>(r.Array(p.rlimit_count, sizeof(ProcessRlimit)));
  p.seccomp_bytes = r.Get<uint32_t>();
  r.Pad8();
  p.seccomp = p.seccomp_bytes == 0 ? nullptr : r.Array(p.seccomp_bytes, 1);
  p.cwd = r.Str();
  size_t used = 0;
  uint32_t argc = 0;
  out->argv = r.Strs(pointers, pointer_cap, &used, true, &argc);
  out->envp = r.Strs(pointers, pointer_cap, &used, true, nullptr);
  p.exec_candidates = r.Strs(pointers, pointer_cap, &used, false, &p.exec_candidate_count);
  p.argv0 = argc > 0 && out->argv != nullptr ? out->argv[0] : "";
  p.exec_fd = -1;
  return r.ok() && r.Get<uint32_t>() == kExecPlanMagic && r.ok();
}

}  // namespace berth
