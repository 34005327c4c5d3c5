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
#include "spawn-io.h"

namespace berth {

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
  auto finish = [&](bool ok) {
    for (int i = 0; i < 3; ++i) {
      CloseIf(child_stdio[i]);
      if (!ok) CloseIf(parent_stdio[i]);
    }
    CloseIf(plan);
    return ok;
  };
  if (spec.tty) {
    SetError(error, EINVAL, "spawn", "park");
    error->message = "a pooled sandbox's workload has no terminal";
    return false;
  }
  if (!MakeStdio(spec, child_stdio, parent_stdio, error)) return finish(false);
  // A memfd rather than the datagram itself: a plan (seccomp program, environment) can exceed
  // what one datagram may carry, and PID 1 maps it as berth-exec does.
  plan = memfd_create("berth-park-plan", MFD_CLOEXEC);
  if (plan < 0 || !WriteAllFd(plan, WriteExecPlan(spec))) {
    SetError(error, errno, "memfd_create", "exec plan");
    return finish(false);
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
    // EPIPE/ECONNRESET: PID 1 is gone (killed, or the sandbox was destroyed).
    SetError(error, errno == EPIPE || errno == ECONNRESET ? ECHILD : errno, "sendmsg", "parked init");
    if (errno == EPIPE || errno == ECONNRESET) error->message = "the sandbox's PID 1 is gone";
    return finish(false);
  }
  return finish(true);
}

ParkEvent ReadParkEvent(int control) {
  ParkEvent out;
  ChildReport report{};
  ssize_t r;
  do {
    r = recv(control, &report, sizeof(report), MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EAGAIN) return out;
  if (r == static_cast<ssize_t>(sizeof(ChildReport))) {
    out.kind = ParkEvent::kFailed;
    out.report = report;
    out.report.syscall[sizeof(out.report.syscall) - 1] = '\0';
    out.report.path[sizeof(out.report.path) - 1] = '\0';
    return out;
  }
  out.kind = ParkEvent::kGone;
  out.err = r < 0 ? errno : 0;
  return out;
}

}  // namespace berth
