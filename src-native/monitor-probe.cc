#include "monitor-probe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec-plan.h"
#include "spawn-io.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace berth {
namespace {

constexpr size_t kMaxOutput = 4096;
// berth-exec only reads its plan, joins and clones: seconds would already be pathological.
constexpr int64_t kHelperDeadlineNs = 10LL * 1000 * 1000 * 1000;

[[noreturn]] void ExecHelper(const ProbeSetup& setup, const int (&sources)[kExecFdCount]) {
  int high[kExecFdCount];
  // Every source moves above the target range first, so that no dup3 clobbers another source.
  for (int i = 0; i < kExecFdCount; ++i) {
    high[i] = sources[i] < 0 ? -1 : fcntl(sources[i], F_DUPFD_CLOEXEC, 64);
    if (sources[i] >= 0 && high[i] < 0) _exit(125);
  }
  int helper = fcntl(setup.exec_helper_fd, F_DUPFD_CLOEXEC, 64);
  if (helper < 0) _exit(125);
  for (int i = 0; i < kExecFdCount; ++i) {
    if (high[i] >= 0 && dup3(high[i], kExecPlanFd + i, 0) < 0) _exit(125);
  }
  syscall(SYS_close_range, kExecPlanFd + kExecFdCount, ~0U, CLOSE_RANGE_CLOEXEC);
  char arg0[] = "berth-exec";
  char* argv[] = {arg0, nullptr};
  char* envp[] = {nullptr};
  syscall(SYS_execveat, helper, "", argv, envp, AT_EMPTY_PATH);
  _exit(125);
}

}  // namespace

bool ProbeRun::Start(const ProbeSetup& setup, int pid1_pidfd, std::string* why) {
  int sync[2] = {-1, -1};
  int out[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0 || pipe2(out, O_CLOEXEC) < 0) {
    *why = "socketpair/pipe: " + std::string(strerror(errno));
    CloseIf(sync[0]);
    CloseIf(sync[1]);
    return false;
  }
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_t helper = fork();
  if (helper == 0) {
    // stdout and stderr share one pipe: a probe's output is one text (Docker's Output).
    int sources[kExecFdCount] = {setup.plan_fd, sync[1], pid1_pidfd, devnull, out[1], out[1]};
    ExecHelper(setup, sources);
  }
  int fork_errno = errno;
  CloseIf(sync[1]);
  CloseIf(out[1]);
  CloseIf(devnull);
  auto fail = [&](const std::string& message) {
    if (helper > 0) {
      kill(helper, SIGKILL);
      while (waitpid(helper, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    CloseIf(sync[0]);
    CloseIf(out[0]);
    *why = message;
    return false;
  };
  if (helper < 0) return fail("fork: " + std::string(strerror(fork_errno)));
  std::string pid_text = std::to_string(helper);
  for (const std::string& procs : setup.cgroup_procs) {
    NativeError error;
    if (!WriteKernelFile(procs, pid_text, &error)) return fail("joining the container's cgroup " + procs + ": " + strerror(error.err));
  }
  char go = 'G';
  if (write(sync[0], &go, 1) != 1) return fail("berth-exec did not start");
  const int64_t deadline = NowNs() + kHelperDeadlineNs;
  for (;;) {
    int ready = WaitReadable(sync[0], deadline);
    if (ready <= 0) return fail(ready == 0 ? "berth-exec did not start the probe within 10 s" : "poll: " + std::string(strerror(-ready)));
    union {
      ChildReport report;
      struct {
        char tag;
        int pid;
      } __attribute__((packed)) started;
    } msg{};
    int fds[2] = {-1, -1};
    ssize_t r = ReceiveMessage(sync[0], &msg, sizeof(msg), fds);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r == static_cast<ssize_t>(sizeof(msg.started)) && msg.started.tag == 'P' && fds[0] >= 0 && fds[1] >= 0) {
      pidfd_ = fds[0];
      status_fd_ = fds[1];
      break;
    }
    CloseIf(fds[0]);
    CloseIf(fds[1]);
    if (r == static_cast<ssize_t>(sizeof(ChildReport))) {
      return fail(std::string("berth-exec: ") + msg.report.syscall + " " + msg.report.path + ": " + strerror(msg.report.err));
    }
    return fail("berth-exec exited before starting the probe");
  }
  CloseIf(sync[0]);
  // berth-exec exits right after its message.
  while (waitpid(helper, nullptr, 0) < 0 && errno == EINTR) {
  }
  out_fd_ = out[0];
  fcntl(out_fd_, F_SETFL, O_NONBLOCK);
  output_.clear();
  return true;
}

void ProbeRun::ReadOutput() {
  if (out_fd_ < 0) return;
  char buf[4096];
  for (;;) {
    ssize_t n = read(out_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;  // EAGAIN: more later
    if (n == 0) {
      CloseIf(out_fd_);
      return;
    }
    size_t keep = output_.size() < kMaxOutput ? kMaxOutput - output_.size() : 0;
    output_.append(buf, static_cast<size_t>(n) < keep ? static_cast<size_t>(n) : keep);
  }
}

int ProbeRun::Finish() {
  ReadOutput();
  siginfo_t info{};
  while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_, &info, WEXITED) < 0 && errno == EINTR) {
  }
  Close();
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

void ProbeRun::Kill() {
  if (pidfd_ < 0) return;
  syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
  Reap(pidfd_);
  Close();
}

void ProbeRun::Close() {
  CloseIf(pidfd_);
  CloseIf(out_fd_);
  CloseIf(status_fd_);
}

}  // namespace berth
