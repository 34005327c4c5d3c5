#include "park-exec.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "exec-plan.h"
#include "park-protocol.h"
#include "process-setup.h"
#include "spawn-io.h"

namespace berth {
namespace {

bool WriteAll(int fd, const std::string& data) {
  size_t at = 0;
  while (at < data.size()) {
    ssize_t w = write(fd, data.data() + at, data.size() - at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    at += static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

bool MakeParkControl(int (&pair)[2], NativeError* error) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
    SetError(error, errno, "socketpair", "park control");
    return false;
  }
  return true;
}

bool SendParkRequest(int control, const LaunchSpec& spec, int (&parent_stdio)[3], NativeError* error) {
  int child_stdio[3] = {-1, -1, -1};
  int plan = -1;
  auto cleanup = [&](bool failed) {
    for (int i = 0; i < 3; ++i) {
      CloseIf(child_stdio[i]);
      if (failed) CloseIf(parent_stdio[i]);
    }
    CloseIf(plan);
    return !failed;
  };
  if (spec.tty) {
    SetError(error, EINVAL, "spawn", "park");
    error->message = "a pooled sandbox's workload has no terminal";
    return false;
  }
  if (!MakeStdio(spec, child_stdio, parent_stdio, error)) return cleanup(true);
  // A memfd rather than the datagram itself: a plan (seccomp program, environment) can exceed
  // what one datagram may carry, and PID 1 maps it as berth-exec does.
  plan = memfd_create("berth-park-plan", MFD_CLOEXEC);
  if (plan < 0 || !WriteAll(plan, WriteExecPlan(spec))) {
    SetError(error, errno, "memfd_create", "exec plan");
    return cleanup(true);
  }
  int fds[kParkMaxRequestFds];
  int n = 0;
  fds[n++] = plan;
  for (int i = 0; i < 3; ++i) {
    if (child_stdio[i] >= 0) fds[n++] = child_stdio[i];
  }
  char tag = kParkRequestTag;
  iovec iov{&tag, 1};
  alignas(cmsghdr) char control_buf[CMSG_SPACE(kParkMaxRequestFds * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control_buf;
  msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(n * sizeof(int));
  memcpy(CMSG_DATA(c), fds, n * sizeof(int));
  ssize_t sent;
  do {
    sent = sendmsg(control, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    // EPIPE/ECONNRESET: PID 1 is gone (killed, or its owner's sandbox was destroyed).
    SetError(error, errno == EPIPE || errno == ECONNRESET ? ECHILD : errno, "sendmsg", "parked init");
    return cleanup(true);
  }
  return cleanup(false);
}

ParkStarted ReadParkReply(int control) {
  ParkStarted out;
  union {
    ChildReport report;
    ParkReply reply;
  } msg{};
  int fds[2] = {-1, -1};
  ssize_t r;
  do {
    r = ReceiveMessage(control, &msg, sizeof(msg), fds);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EAGAIN) return out;
  if (r == static_cast<ssize_t>(sizeof(ParkReply)) && msg.reply.tag == kParkStartedTag && fds[0] >= 0) {
    out.kind = ParkStarted::kStarted;
    out.pid = msg.reply.value;
    out.status_fd = fds[0];
    CloseIf(fds[1]);
    return out;
  }
  CloseIf(fds[0]);
  CloseIf(fds[1]);
  if (r == static_cast<ssize_t>(sizeof(ChildReport))) {
    out.kind = ParkStarted::kFailed;
    SetError(&out.error, msg.report.err, msg.report.syscall, msg.report.path);
    return out;
  }
  out.kind = ParkStarted::kGone;
  SetError(&out.error, r < 0 ? errno : ECHILD, "recvmsg", "parked init");
  out.error.message = "the sandbox's PID 1 ended before it started the command";
  return out;
}

bool ReadParkExit(int control, int* wait_status) {
  for (;;) {
    ParkReply reply{};
    int fds[2] = {-1, -1};
    ssize_t r = ReceiveMessage(control, &reply, sizeof(reply), fds);
    if (r < 0 && errno == EINTR) continue;
    CloseIf(fds[0]);
    CloseIf(fds[1]);
    if (r <= 0) return false;
    if (r == static_cast<ssize_t>(sizeof(reply)) && reply.tag == kParkExitedTag) {
      *wait_status = reply.value;
      return true;
    }
  }
}

}  // namespace berth
