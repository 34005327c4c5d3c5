#include "device-filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace berth {
namespace {

long Bpf(int cmd, bpf_attr* attr) { return syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

}  // namespace

int LoadDeviceFilter(const void* insns, size_t bytes, std::string* log) {
  static const char kLicense[] = "Apache-2.0";
  bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insn_cnt = static_cast<uint32_t>(bytes / sizeof(bpf_insn));
  attr.insns = reinterpret_cast<uint64_t>(insns);
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  long fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return static_cast<int>(fd);
  int err = errno;
  if (err == EACCES || err == EINVAL) {
    // Load again with the verifier's log, only to explain the refusal.
    static char buf[16384];
    attr.log_level = 1;
    attr.log_buf = reinterpret_cast<uint64_t>(buf);
    attr.log_size = sizeof(buf);
    buf[0] = '\0';
    long again = Bpf(BPF_PROG_LOAD, &attr);
    if (again >= 0) close(static_cast<int>(again));
    *log = buf;
  }
  return -err;
}

int AttachDeviceFilter(const std::string& dir, int prog_fd) {
  int cg = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) return -errno;
  bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.target_fd = static_cast<uint32_t>(cg);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  long r = Bpf(BPF_PROG_ATTACH, &attr);
  int err = errno;
  close(cg);
  return r < 0 ? -err : 0;
}

}  // namespace berth
