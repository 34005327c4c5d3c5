#include "spawn-io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace berth {

void SetError(NativeError* e, int err, const char* syscall, const std::string& path) {
  e->err = err;
  e->syscall = syscall;
  e->path = path;
}

bool WriteAllFd(int fd, const std::string& data) {
  size_t at = 0;
  while (at < data.size()) {
    ssize_t w = write(fd, data.data() + at, data.size() - at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    at += static_cast<size_t>(w);
  }
  return true;
}

bool WriteKernelFile(const std::string& path, const std::string& content, NativeError* e) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    SetError(e, errno, "open", path);
    return false;
  }
  ssize_t w = write(fd, content.data(), content.size());
  int err = errno;
  close(fd);
  if (w != static_cast<ssize_t>(content.size())) {
    SetError(e, w < 0 ? err : EIO, "write", path);
    return false;
  }
  return true;
}

void CloseIf(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

void Reap(int pidfd) {
  siginfo_t info{};
  while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED) < 0 && errno == EINTR) {
  }
}

bool MakeStdio(const LaunchSpec& spec, int (&child_ends)[3], int (&parent_ends)[3], NativeError* error) {
  if (spec.tty) return true;
  for (int i = 0; i < 3; ++i) {
    if (spec.stdio[i].mode == StdioMode::kPipe) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) < 0) {
        SetError(error, errno, "pipe2", "stdio");
        return false;
      }
      // stdin: the child reads p[0]; stdout/stderr: the child writes p[1].
      child_ends[i] = i == 0 ? p[0] : p[1];
      parent_ends[i] = i == 0 ? p[1] : p[0];
    } else if (spec.stdio[i].mode == StdioMode::kInheritFd) {
      child_ends[i] = fcntl(spec.stdio[i].fd, F_DUPFD_CLOEXEC, 3);
      if (child_ends[i] < 0) {
        SetError(error, errno, "fcntl", "stdio");
        return false;
      }
    }
  }
  return true;
}

ssize_t ReceiveMessage(int sock, void* buf, size_t len, int (&fds)[2]) {
  iovec iov{buf, len};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (r <= 0) return r;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c != nullptr && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n && i < 2; ++i) memcpy(&fds[i], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    // More than we asked for cannot happen with our own children; close any surplus anyway.
    for (size_t i = 2; i < n; ++i) {
      int extra;
      memcpy(&extra, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      close(extra);
    }
  }
  return r;
}

void FillProcessSpec(const LaunchSpec& spec, ProcessSpec* out, std::vector<const char*>* candidates) {
  candidates->clear();
  for (const std::string& c : spec.exec_candidates) candidates->push_back(c.c_str());
  ProcessSpec& p = *out;
  p.tty = spec.tty;
  p.tty_rows = spec.tty_rows;
  p.tty_cols = spec.tty_cols;
  p.rlimits = spec.rlimits.data();
  p.rlimit_count = static_cast<uint32_t>(spec.rlimits.size());
  p.set_oom_score_adj = spec.set_oom_score_adj;
  p.oom_score_adj = spec.oom_score_adj;
  p.uid = spec.uid;
  p.gid = spec.gid;
  p.groups = spec.groups.data();
  p.group_count = static_cast<uint32_t>(spec.groups.size());
  p.keep_groups = spec.userns_fd >= 0 ? spec.userns_setgroups_denied : spec.unprivileged && spec.newgidmap.empty() && !spec.gid_map.empty();
  p.cap_bounding = spec.cap_bounding;
  p.cap_effective = spec.cap_effective;
  p.cap_permitted = spec.cap_permitted;
  p.cap_inheritable = spec.cap_inheritable;
  p.cap_ambient = spec.cap_ambient;
  p.die_with_parent = spec.die_with_parent;
  p.no_new_privs = spec.no_new_privs;
  p.cwd = spec.cwd.c_str();
  p.seccomp = spec.seccomp.empty() ? nullptr : spec.seccomp.data();
  p.seccomp_bytes = static_cast<uint32_t>(spec.seccomp.size());
  p.exec_fd = spec.exec_fd;
  p.exec_candidates = candidates->data();
  p.exec_candidate_count = static_cast<uint32_t>(candidates->size());
  p.argv0 = spec.argv.empty() ? "" : spec.argv[0].c_str();
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int WaitReadable(int fd, int64_t deadline_ns) {
  for (;;) {
    int64_t left_ns = deadline_ns - NowNs();
    if (left_ns <= 0) return 0;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>((left_ns + 999999) / 1000000));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (r > 0) return 1;
  }
}

}  // namespace berth
