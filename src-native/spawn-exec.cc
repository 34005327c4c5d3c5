// Exec into a running container without ever letting the container see a process that
// shares Node's memory or holds Node's descriptors.
//
// A process that joins a container's pid namespace is visible to the container: it can read
// the process's /proc files, open its memory, and stop it with a signal. So the process that
// enters must not be a CLONE_VM child of Node (that would be Node's own address space), and
// nothing Node's worker threads wait for may be something the container can stop.
//
//   1. This worker thread clones a trampoline (CLONE_VM | CLONE_VFORK) that, outside every
//      container namespace, moves a few descriptors to fixed numbers and execs berth-exec
//      (exec-main.cc) from its sealed memfd. From then on it is a separate program with its own
//      small address space (the helper, H). CLONE_VFORK holds this thread until that execve.
//   2. Node writes H into the container's cgroups and says "go". H is non-dumpable; it joins
//      the container's namespaces and clones the process (P) into the container's pid
//      namespace with CLONE_PARENT, so that Node reaps it. P shares H's memory (never Node's)
//      and its non-dumpability until its own execve: the container can neither ptrace it nor
//      open its /proc/<pid>/{mem,environ,fd}.
//   3. H sends P's pidfd and a status socket back and exits. This thread returns then: H is
//      invisible to the container, so the wait is bounded by berth's own work (with a
//      deadline all the same). P's tty master, failure report and execve (EOF) arrive on the
//      status socket, which the event loop watches (launch-watch.h): a container that stops P
//      delays only that exec, never a libuv worker thread.
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "container-setup.h"
#include "exec-plan.h"
#include "raw-syscall.h"
#include "spawn-io.h"
#include "spawn.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace berth {
namespace {

constexpr size_t kTrampolineStackSize = 64 * 1024;
// H only decodes the spec, joins namespaces and forks: seconds would already be pathological.
constexpr int64_t kHelperDeadlineNs = 10LL * 1000 * 1000 * 1000;

struct Trampoline {
  int helper_fd;
  int sources[kExecFdCount];  // moved to kExecPlanFd + i; -1: leave that number closed
  char* const* argv;
  char* const* envp;
};

// Runs on Node's memory (CLONE_VM) until execveat: raw syscalls only (raw-syscall.h).
int TrampolineMain(void* arg) {
  auto* t = static_cast<Trampoline*>(arg);
  int high[kExecFdCount];
  // Every source first moves above the target range, so that no dup3 clobbers a source that
  // already sits on a target number.
  for (int i = 0; i < kExecFdCount; ++i) {
    high[i] = t->sources[i] < 0 ? -1 : static_cast<int>(raw::Call(SYS_fcntl, t->sources[i], F_DUPFD_CLOEXEC, 64));
    if (t->sources[i] >= 0 && high[i] < 0) raw::ExitGroup(125);
  }
  long helper = raw::Call(SYS_fcntl, t->helper_fd, F_DUPFD_CLOEXEC, 64);
  if (helper < 0) raw::ExitGroup(125);
  for (int i = 0; i < kExecFdCount; ++i) {
    if (high[i] >= 0 && raw::Call(SYS_dup3, high[i], kExecPlanFd + i, 0) < 0) raw::ExitGroup(125);
  }
  // Nothing else of Node's survives the execve: only 0..2 (replaced by the helper at once)
  // and the numbered descriptors above.
  raw::Call(SYS_close_range, kExecPlanFd + kExecFdCount, ~0U, CLOSE_RANGE_CLOEXEC);
  long r = raw::Call(SYS_execveat, static_cast<int>(helper), "", t->argv, t->envp, AT_EMPTY_PATH);
  ChildReport report{};
  report.kind = ChildReportKind::kSetupError;
  report.err = static_cast<int32_t>(-r);
  const char what[] = "execveat";
  for (size_t i = 0; i < sizeof(what); ++i) report.syscall[i] = what[i];
  const char path[] = "berth-exec";
  for (size_t i = 0; i < sizeof(path); ++i) report.path[i] = path[i];
  raw::Write(kExecSyncFd, &report, sizeof(report));
  raw::ExitGroup(125);
}

}  // namespace

SpawnResult SpawnExec(const LaunchSpec& spec, NativeError* error) {
  SpawnResult result;
  int child_stdio[3] = {-1, -1, -1};
  int sync[2] = {-1, -1};
  int spec_fd = -1;
  auto cleanup = [&]() {
    for (int i = 0; i < 3; ++i) {
      CloseIf(child_stdio[i]);
      CloseIf(result.stdio[i]);
    }
    CloseIf(sync[0]);
    CloseIf(sync[1]);
    CloseIf(spec_fd);
  };
  if (spec.join_pidfd < 0 || spec.join_helper_fd < 0) {
    SetError(error, EINVAL, "spawn", "join");
    error->message = "an exec needs the container's pidfd and the helper's descriptor";
    return result;
  }
  if (!MakeStdio(spec, child_stdio, result.stdio, error)) {
    cleanup();
    return result;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
    SetError(error, errno, "socketpair", "exec");
    cleanup();
    return result;
  }
  if (spec.exec_fd >= 0) {
    SetError(error, EINVAL, "spawn", "exec");
    error->message = "an exec cannot use the init helper";
    cleanup();
    return result;
  }
  spec_fd = memfd_create("berth-exec-plan", MFD_CLOEXEC);
  if (spec_fd < 0 || !WriteAllFd(spec_fd, WriteExecPlan(spec))) {
    SetError(error, errno, "memfd_create", "exec plan");
    cleanup();
    return result;
  }

  char arg0[] = "berth-exec";
  char* argv[] = {arg0, nullptr};
  char* envp[] = {nullptr};
  Trampoline t{spec.join_helper_fd, {spec_fd, sync[1], spec.join_pidfd, child_stdio[0], child_stdio[1], child_stdio[2]}, argv, envp};
  void* stack = mmap(nullptr, kTrampolineStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    SetError(error, errno, "mmap", "exec trampoline stack");
    cleanup();
    return result;
  }
  // Signals stay blocked across clone: the trampoline runs on Node's memory with Node's
  // handlers installed until its execveat resets them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int helper_pidfd = -1;
  int helper_pid = clone(TrampolineMain, static_cast<char*>(stack) + kTrampolineStackSize,
                         CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &t, &helper_pidfd);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  // CLONE_VFORK: the trampoline has exec'd (or exited); its stack is ours again.
  munmap(stack, kTrampolineStackSize);
  for (int i = 0; i < 3; ++i) CloseIf(child_stdio[i]);
  CloseIf(sync[1]);
  CloseIf(spec_fd);
  if (helper_pid < 0) {
    SetError(error, clone_errno, "clone", "exec helper");
    cleanup();
    return result;
  }
  auto fail = [&]() {
    syscall(SYS_pidfd_send_signal, helper_pidfd, SIGKILL, nullptr, 0);
    Reap(helper_pidfd);
    close(helper_pidfd);
    cleanup();
  };

  // The process inherits the helper's cgroups: join them before "go", as the helper's pid.
  std::string pid_text = std::to_string(helper_pid);
  for (const std::string& procs : spec.cgroup_procs) {
    if (!WriteKernelFile(procs, pid_text, error)) {
      fail();
      return result;
    }
  }
  char go = 'G';
  if (write(sync[0], &go, 1) != 1) {
    SetError(error, errno, "write", "exec sync socket");
    fail();
    return result;
  }

  const int64_t deadline = NowNs() + kHelperDeadlineNs;
  for (;;) {
    int ready = WaitReadable(sync[0], deadline);
    if (ready <= 0) {
      SetError(error, ready == 0 ? ETIMEDOUT : -ready, "poll", "exec helper");
      if (ready == 0) error->message = "berth-exec did not start the process within 10 s; it was killed";
      fail();
      return result;
    }
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
      result.pid = msg.started.pid;
      result.pidfd = fds[0];
      result.status_fd = fds[1];
      break;
    }
    CloseIf(fds[0]);
    CloseIf(fds[1]);
    if (r == static_cast<ssize_t>(sizeof(ChildReport))) {
      SetError(error, msg.report.err, msg.report.syscall, msg.report.path);
    } else {
      SetError(error, ECHILD, "clone", "exec");
      error->message = "the exec helper exited before starting the process";
    }
    fail();
    return result;
  }
  CloseIf(sync[0]);
  // The helper exits right after its message; the event loop reaps it (launch-watch.h).
  result.helper_pidfd = helper_pidfd;
  return result;
}

}  // namespace berth
