#include "spec-codec.h"

#include <sched.h>

#include <cstdint>
#include <cstring>

namespace berth {
namespace {

constexpr char kMagic[4] = {'B', 'L', 'S', '1'};
constexpr char kEnd[4] = {'E', 'N', 'D', '!'};
// Bounds that no valid spec comes near; they keep a corrupt length from allocating gigabytes.
constexpr uint32_t kMaxString = 64u << 20;
constexpr uint32_t kMaxCount = 1u << 20;

struct Reader {
  const char* p;
  const char* end;
  std::string* error;
  const char* field = "";

  bool Fail(const char* what) {
    if (error->empty()) *error = std::string("launch spec: ") + what + " at " + field;
    p = end;
    return false;
  }
  bool Take(void* out, size_t n) {
    if (static_cast<size_t>(end - p) < n) return Fail("truncated");
    memcpy(out, p, n);
    p += n;
    return true;
  }
  template <typename T>
  T Int(const char* name) {
    field = name;
    T v{};
    Take(&v, sizeof(v));
    return v;
  }
  bool Bool(const char* name) { return Int<uint8_t>(name) != 0; }
  std::string Str(const char* name) {
    uint32_t n = Int<uint32_t>(name);
    if (n > kMaxString || static_cast<size_t>(end - p) < n) {
      Fail("bad string length");
      return {};
    }
    std::string s(p, n);
    p += n;
    return s;
  }
  uint32_t Count(const char* name) {
    uint32_t n = Int<uint32_t>(name);
    if (n > kMaxCount) {
      Fail("bad count");
      return 0;
    }
    return n;
  }
  std::vector<std::string> Strs(const char* name) {
    std::vector<std::string> out;
    uint32_t n = Count(name);
    for (uint32_t i = 0; i < n && p < end; ++i) out.push_back(Str(name));
    return out;
  }
  bool Magic(const char (&m)[4], const char* name) {
    field = name;
    char got[4];
    if (!Take(got, 4)) return false;
    return memcmp(got, m, 4) == 0 || Fail("bad magic");
  }
};

}  // namespace

bool DecodeLaunchSpec(const char* data, size_t size, LaunchSpec* spec, std::string* error) {
  error->clear();
  Reader r{data, data + size, error};
  if (!r.Magic(kMagic, "header")) return false;
  spec->clone_flags = r.Int<int32_t>("cloneFlags");
  spec->new_cgroup_ns = r.Bool("newCgroupNs");
  spec->uid_map = r.Str("uidMap");
  spec->gid_map = r.Str("gidMap");
  spec->cgroup_procs = r.Strs("cgroupProcs");
  spec->join_pidfd = r.Int<int32_t>("join.pidfd");
  spec->join_namespaces = r.Int<int32_t>("join.namespaces");
  spec->join_helper_fd = r.Int<int32_t>("join.helperFd");

  uint32_t nmounts = r.Count("mounts");
  for (uint32_t i = 0; i < nmounts && error->empty(); ++i) {
    MountOp op;
    op.kind = static_cast<MountOpKind>(r.Int<int32_t>("mounts.kind"));
    op.source = r.Str("mounts.source");
    op.target = r.Str("mounts.target");
    op.fstype = r.Str("mounts.fstype");
    op.data = r.Str("mounts.data");
    op.content = r.Str("mounts.content");
    op.lower_dirs = r.Strs("mounts.lowerDirs");
    op.flags = static_cast<unsigned long>(r.Int<uint64_t>("mounts.flags"));
    op.mode = r.Int<uint32_t>("mounts.mode");
    op.readonly = r.Bool("mounts.readonly");
    op.recursive = r.Bool("mounts.recursive");
    op.optional = r.Bool("mounts.optional");
    op.create = static_cast<CreateKind>(r.Int<int32_t>("mounts.create"));
    if (static_cast<int>(op.kind) < 0 || static_cast<int>(op.kind) > static_cast<int>(MountOpKind::kMoveTree) ||
        static_cast<int>(op.kind) == 7) {
      r.Fail("unknown mount op");
    }
    spec->mounts.push_back(std::move(op));
  }
  spec->hostname = r.Str("hostname");
  spec->loopback_up = r.Bool("loopbackUp");
  uint32_t nlimits = r.Count("rlimits");
  for (uint32_t i = 0; i < nlimits && error->empty(); ++i) {
    Rlimit lim;
    lim.resource = r.Int<int32_t>("rlimits.resource");
    lim.soft = r.Int<uint64_t>("rlimits.soft");
    lim.hard = r.Int<uint64_t>("rlimits.hard");
    spec->rlimits.push_back(lim);
  }
  spec->uid = r.Int<uint32_t>("uid");
  spec->gid = r.Int<uint32_t>("gid");
  uint32_t ngroups = r.Count("groups");
  for (uint32_t i = 0; i < ngroups && error->empty(); ++i) spec->groups.push_back(r.Int<uint32_t>("groups"));
  spec->cap_bounding = r.Int<uint64_t>("capabilities.bounding");
  spec->cap_effective = r.Int<uint64_t>("capabilities.effective");
  spec->cap_permitted = r.Int<uint64_t>("capabilities.permitted");
  spec->cap_inheritable = r.Int<uint64_t>("capabilities.inheritable");
  spec->cap_ambient = r.Int<uint64_t>("capabilities.ambient");
  spec->no_new_privs = r.Bool("noNewPrivileges");
  spec->seccomp = r.Str("seccomp");
  if (spec->seccomp.size() % 8 != 0) r.Fail("seccomp is not whole sock_filter entries");
  spec->die_with_parent = r.Bool("dieWithParent");
  spec->set_oom_score_adj = r.Bool("oomScoreAdj.set");
  spec->oom_score_adj = r.Int<int32_t>("oomScoreAdj");
  spec->cwd = r.Str("cwd");
  spec->argv = r.Strs("argv");
  spec->env = r.Strs("env");
  spec->exec_candidates = r.Strs("execCandidates");
  spec->exec_fd = r.Int<int32_t>("execFd");
  for (int i = 0; i < 3; ++i) {
    spec->stdio[i].mode = static_cast<StdioMode>(r.Int<int32_t>("stdio.mode"));
    spec->stdio[i].fd = r.Int<int32_t>("stdio.fd");
  }
  spec->trace = r.Bool("trace");
  spec->tty = r.Bool("tty");
  spec->tty_rows = static_cast<uint16_t>(r.Int<uint32_t>("ttyRows"));
  spec->tty_cols = static_cast<uint16_t>(r.Int<uint32_t>("ttyCols"));
  uint32_t ninterfaces = r.Count("interfaces");
  for (uint32_t i = 0; i < ninterfaces && error->empty(); ++i) {
    NetInterface nic;
    nic.host_ifname = r.Str("interfaces.hostIfname");
    nic.bridge = r.Str("interfaces.bridge");
    nic.ifname = r.Str("interfaces.ifname");
    nic.addresses = r.Strs("interfaces.addresses");
    nic.gateway = r.Str("interfaces.gateway");
    nic.mtu = r.Int<uint32_t>("interfaces.mtu");
    nic.mac = r.Str("interfaces.mac");
    nic.alias = r.Str("interfaces.alias");
    nic.hairpin = r.Bool("interfaces.hairpin");
    // Interface names are at most IFNAMSIZ - 1 bytes; the kernel would refuse them later with
    // a less telling error.
    if (nic.host_ifname.empty() || nic.host_ifname.size() > 15 || nic.ifname.empty() || nic.ifname.size() > 15) {
      r.Fail("bad interface name");
    }
    spec->interfaces.push_back(std::move(nic));
  }
  spec->netns_fd = r.Int<int32_t>("netnsFd");
  spec->cgroup_dir = r.Str("cgroupDir");
  spec->newuidmap = r.Str("newuidmap");
  spec->newgidmap = r.Str("newgidmap");
  spec->unprivileged = r.Bool("unprivileged");
  spec->dns_control = r.Str("dnsControl");
  spec->dns_message = r.Str("dnsMessage");
  if (!spec->dns_control.empty() && spec->interfaces.empty()) r.Fail("dnsControl without interfaces");
  spec->userns_fd = r.Int<int32_t>("usernsFd");
  spec->userns_setgroups_denied = r.Bool("usernsSetgroupsDenied");
  if (spec->userns_fd >= 0 && (!(spec->clone_flags & CLONE_NEWUSER) || !spec->newuidmap.empty())) r.Fail("usernsFd needs CLONE_NEWUSER and no id-map helpers");
  if (spec->newuidmap.empty() != spec->newgidmap.empty()) r.Fail("newuidmap and newgidmap come together");
  if (!r.Magic(kEnd, "trailer")) return false;
  if (r.p != r.end) return r.Fail("trailing bytes");
  if (spec->argv.empty()) return r.Fail("empty argv");
  for (const auto& a : spec->argv) {
    if (a.find('\0') != std::string::npos) return r.Fail("NUL in argv");
  }
  return error->empty();
}

}  // namespace berth
