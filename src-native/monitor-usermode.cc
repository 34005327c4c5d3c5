#include "monitor-usermode.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "monitor-io.h"
#include "spawn-io.h"

namespace berth {
namespace {

constexpr int64_t kReadyTimeoutMs = 20000;
constexpr int kStopGraceMs = 2000;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int PollMs(pollfd* fds, nfds_t n, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - NowMs();
    if (left <= 0) return 0;
    int r = poll(fds, n, static_cast<int>(left));
    if (r >= 0 || errno != EINTR) return r;
  }
}

std::string ReadSome(int fd) {
  std::string out;
  char buf[1024];
  while (out.size() < 4096) {
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

void UserModeStack::Fail(const UserModeStackPlan& plan, const std::string& what, NativeError* error) {
  std::string detail = err_fd_ >= 0 ? ReadSome(err_fd_) : "";
  SetError(error, ECANCELED, "usermode-network", plan.kind);
  error->message = plan.kind + " " + what + (detail.empty() ? "" : ": " + detail);
  Stop();
}

bool UserModeStack::Start(const UserModeStackPlan& plan, int pid, NativeError* error) {
  Stop();
  scratch_ = plan.scratch;
  if (mkdir(scratch_.c_str(), 0700) != 0 && errno != EEXIST) {
    SetError(error, errno, "mkdir", scratch_);
    return false;
  }
  bool slirp = plan.kind == "slirp4netns";
  int err_pipe[2] = {-1, -1}, ready_pipe[2] = {-1, -1}, exit_pipe[2] = {-1, -1};
  if (pipe2(err_pipe, O_CLOEXEC) != 0 || (slirp && (pipe2(ready_pipe, O_CLOEXEC) != 0 || pipe2(exit_pipe, O_CLOEXEC) != 0))) {
    SetError(error, errno, "pipe2", "usermode network");
    for (int fd : {err_pipe[0], err_pipe[1], ready_pipe[0], ready_pipe[1], exit_pipe[0], exit_pipe[1]}) CloseIf(fd);
    return false;
  }
  std::vector<std::string> args = plan.argv;
  for (auto& a : args) if (a == "{pid}") a = std::to_string(pid);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t monitor = getpid();
  pid_t child = fork();
  if (child == 0) {
    // Dies with the monitor even on SIGKILL; the monitor may have died before prctl.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != monitor) _exit(125);
    // The monitor ignores SIGPIPE and SIGHUP and blocks SIGUSR1; an exec keeps both. The stack
    // starts as any program does (pasta 2023 even refuses to run with SIGPIPE ignored).
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = open("/dev/null", O_RDWR);
    int err = fcntl(err_pipe[1], F_DUPFD, 10);
    int ready = slirp ? fcntl(ready_pipe[1], F_DUPFD, 10) : -1;
    int ex = slirp ? fcntl(exit_pipe[0], F_DUPFD, 10) : -1;
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(err, 2);
    if (slirp) {
      dup2(ready, 3);
      dup2(ex, 4);
    }
    // Nothing of the monitor (its status pipe to Node above all) may stay open in the stack.
    syscall(SYS_close_range, slirp ? 5U : 3U, ~0U, 0U);
    execv(argv[0], argv.data());
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  CloseIf(err_pipe[1]);
  CloseIf(ready_pipe[1]);
  CloseIf(exit_pipe[0]);
  err_fd_ = err_pipe[0];
  exit_fd_ = exit_pipe[1];
  if (child < 0) {
    SetError(error, errno, "fork", plan.kind);
    CloseIf(ready_pipe[0]);
    Stop();
    return false;
  }
  pid_ = child;
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  if (pidfd_ < 0) {
    SetError(error, errno, "pidfd_open", plan.kind);
    CloseIf(ready_pipe[0]);
    Stop();
    return false;
  }
  fcntl(err_fd_, F_SETFL, O_NONBLOCK);
  bool ok = WaitReady(plan, ready_pipe[0], error);
  CloseIf(ready_pipe[0]);
  return ok && Publish(plan, error);
}

bool UserModeStack::WaitReady(const UserModeStackPlan& plan, int ready_fd, NativeError* error) {
  const int64_t deadline = NowMs() + kReadyTimeoutMs;
  std::string pid_file = scratch_ + "/pid";
  for (;;) {
    if (ready_fd < 0) {
      // pasta writes its pid file only once the interface is configured and every port bound.
      int fd = open(pid_file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        std::string text = ReadSome(fd);
        char last = 0;
        if (lseek(fd, -1, SEEK_END) >= 0 && read(fd, &last, 1) == 1 && last == '\n' && !text.empty()) {
          close(fd);
          return true;
        }
        close(fd);
      }
    }
    pollfd fds[2] = {{pidfd_, POLLIN, 0}, {ready_fd, POLLIN, 0}};
    int64_t step = ready_fd < 0 ? std::min<int64_t>(deadline, NowMs() + 10) : deadline;
    int r = PollMs(fds, ready_fd < 0 ? 1 : 2, step);
    if (r < 0) {
      SetError(error, errno, "poll", plan.kind);
      Stop();
      return false;
    }
    if (fds[0].revents & POLLIN) {
      Fail(plan, "exited before the network was up", error);
      return false;
    }
    if (ready_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
      char c = 0;
      if (read(ready_fd, &c, 1) == 1 && c == '1') return true;
      Fail(plan, "closed its ready descriptor before the network was up", error);
      return false;
    }
    if (NowMs() >= deadline) {
      Fail(plan, "did not configure the network within 20 s", error);
      return false;
    }
  }
}

bool UserModeStack::Publish(const UserModeStackPlan& plan, NativeError* error) {
  std::string socket_path = scratch_ + "/api.sock";
  for (const auto& request : plan.hostfwd) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (s < 0 || socket_path.size() >= sizeof(addr.sun_path)) {
      CloseIf(s);
      SetError(error, s < 0 ? errno : ENAMETOOLONG, "socket", socket_path);
      Stop();
      return false;
    }
    memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    std::string answer;
    bool sent = connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && WriteAll(s, request.data(), request.size()) && shutdown(s, SHUT_WR) == 0;
    const int64_t deadline = NowMs() + kReadyTimeoutMs;
    while (sent) {
      pollfd p{s, POLLIN, 0};
      if (PollMs(&p, 1, deadline) <= 0) break;
      char buf[512];
      ssize_t r = read(s, buf, sizeof(buf));
      if (r <= 0) break;
      answer.append(buf, static_cast<size_t>(r));
    }
    close(s);
    if (!sent || answer.find("\"return\"") == std::string::npos) {
      Fail(plan, "could not publish a port (" + request.substr(0, request.size() - 1) + "): " + (sent ? answer : std::string(strerror(errno))), error);
      return false;
    }
  }
  return true;
}

void UserModeStack::Stop() {
  if (pidfd_ >= 0) {
    syscall(SYS_pidfd_send_signal, pidfd_, SIGTERM, nullptr, 0);
    pollfd p{pidfd_, POLLIN, 0};
    if (PollMs(&p, 1, NowMs() + kStopGraceMs) <= 0) syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    siginfo_t info{};
    while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_, &info, WEXITED) < 0 && errno == EINTR) {
    }
    close(pidfd_);
  } else if (pid_ > 0) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pidfd_ = -1;
  pid_ = -1;
  CloseIf(exit_fd_);
  CloseIf(err_fd_);
  if (!scratch_.empty()) {
    unlink((scratch_ + "/pid").c_str());
    unlink((scratch_ + "/api.sock").c_str());
    rmdir(scratch_.c_str());
    scratch_.clear();
  }
}

}  // namespace berth
