// PID 1 of a pooled sandbox. Everything of a start but the workload happened before a caller
// asked (namespaces, rootfs, cgroup, network); the workload arrives as an exec plan on the
// control socket (park-protocol.h), and this process forks it. The child inherits the
// sandbox's namespaces and cgroup by birth: no setns, and no cgroup.procs write (on cgroup v1
// that write waits for an RCU grace period when no migration happened recently).
//
// The child then runs exactly the setup an exec into a container runs (FinishAndExec of
// process-setup.h, from the plan berth-exec would get): rlimits, user and groups, capabilities
// (bounding, effective, permitted, ambient), parent-death signal, every other descriptor
// closed, workdir, no_new_privs, signal mask, execve. The seccomp filter is this process's
// own (loaded at launch from the same options), inherited across fork and execve.
//
// What this process holds that the workload must not reach: the control socket (whoever
// writes to it starts processes with this process's credentials). It is close-on-exec, closed
// in the child before its workdir is entered (close_range in FinishAndExec), named by nothing
// in the sandbox's filesystem (a socketpair), and this process is not dumpable, so the
// workload can neither take it through /proc/1/fd or pidfd_getfd nor ptrace this process
// without CAP_SYS_PTRACE. Signals from inside the sandbox do not reach a pid namespace's init.
#include "park-main.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "exec-plan.h"
#include "park-protocol.h"
#include "process-setup.h"

namespace berth {
namespace {

// argv, envp and the exec candidates of the plan point into this: static, for a plan may hold
// thousands of strings and the child uses them after fork.
const char* g_pointers[64 * 1024];

void Reply(int control, char tag, int32_t value) {
  ParkReply reply{tag, value};
  send(control, &reply, sizeof(reply), MSG_NOSIGNAL);
}

void ReplyError(int control, int err, const char* syscall) {
  ChildReport report{};
  report.kind = ChildReportKind::kSetupError;
  report.err = err;
  strncpy(report.syscall, syscall, sizeof(report.syscall) - 1);
  strncpy(report.path, "parked init", sizeof(report.path) - 1);
  send(control, &report, sizeof(report), MSG_NOSIGNAL);
}

struct Workload {
  pid_t pid = -1;
  int status_fd = -1;  // the child's report socket; -1 once it reached EOF or was forwarded
  bool wants_execd = false;
};

// One request with the plan and the given stdio. Returns the started workload (pid -1 when
// it could not be started; the reason was sent).
Workload StartWorkload(int control, char tag, const int* fds, int nfds) {
  Workload w;
  int plan_fd = fds[0];
  struct stat st {};
  if (fstat(plan_fd, &st) < 0 || st.st_size <= 0) {
    ReplyError(control, errno != 0 ? errno : EINVAL, "fstat");
    return w;
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* plan = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, plan_fd, 0);
  if (plan == MAP_FAILED) {
    ReplyError(control, errno, "mmap");
    return w;
  }
  ExecPlanView view{};
  if (!ReadExecPlan(static_cast<const char*>(plan), size, &view, g_pointers, sizeof(g_pointers) / sizeof(g_pointers[0]))) {
    munmap(plan, size);
    ReplyError(control, EINVAL, "decode");
    return w;
  }
  int stdio[3] = {-1, -1, -1};
  int next = 1;
  for (int i = 0; i < 3; ++i) {
    if ((view.stdio_given & (1 << i)) == 0) continue;
    if (next >= nfds) {
      munmap(plan, size);
      ReplyError(control, EBADF, "recvmsg");
      return w;
    }
    stdio[i] = fds[next++];
  }
  int status[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status) < 0) {
    munmap(plan, size);
    ReplyError(control, errno, "socketpair");
    return w;
  }
  pid_t pid = fork();
  if (pid == 0) {
    ProcessContext ctx{};
    ctx.spec = &view.process;
    ctx.sync_fd = status[1];
    for (int i = 0; i < 3; ++i) ctx.stdio_fds[i] = stdio[i];
    ctx.argv = view.argv;
    ctx.envp = view.envp;
    // The control socket, the signalfd and status[0] are close-on-exec, and FinishAndExec closes
    // every descriptor but the sync socket before it enters the workdir: nothing of this
    // process's reaches the workload.
    FinishAndExec(&ctx);
  }
  int fork_errno = errno;
  close(status[1]);
  munmap(plan, size);
  if (pid < 0) {
    close(status[0]);
    ReplyError(control, fork_errno, "fork");
    return w;
  }
  w.pid = pid;
  w.status_fd = status[0];
  w.wants_execd = tag == kParkMainTag;
  return w;
}

// Reads the child's report socket without blocking: a failure report is forwarded to Node; EOF
// (it exec'd, or died) ends the watch. Returns false while the child is still in its setup.
bool DrainStatus(int control, Workload* w) {
  for (;;) {
    ChildReport report{};
    ssize_t r = recv(w->status_fd, &report, sizeof(report), MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return false;
    if (r == static_cast<ssize_t>(sizeof(report))) {
      send(control, &report, sizeof(report), MSG_NOSIGNAL);
      continue;
    }
    if (r == 0 && w->wants_execd) Reply(control, kParkExecdTag, w->pid);
    close(w->status_fd);
    w->status_fd = -1;
    return true;
  }
}

}  // namespace

void RunPark(int control_fd) {
  // Before anything else: a dumpable PID 1 would let the workload open /proc/1/fd, take the
  // control socket with pidfd_getfd or ptrace this process (same uid, same capabilities).
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // The control socket came as stdin; keep it close-on-exec above the stdio numbers, and put
  // /dev/null (stdout, from the launch) back on 0.
  int control = fcntl(control_fd, F_DUPFD_CLOEXEC, 3);
  if (control < 0) _exit(125);
  dup2(STDOUT_FILENO, control_fd);

  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) _exit(125);

  Workload workload;
  bool control_open = true;
  for (;;) {
    pollfd p[3] = {{sigfd, POLLIN, 0}, {control_open ? control : -1, POLLIN, 0}, {-1, POLLIN, 0}};
    // A run only needs the report when the child is gone (read below); a main's start is awaited.
    if (workload.wants_execd && workload.status_fd >= 0) p[2].fd = workload.status_fd;
    int n = poll(p, 3, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      _exit(125);
    }
    if (p[2].revents != 0) DrainStatus(control, &workload);
    if (p[0].revents != 0) {
      signalfd_siginfo info;
      while (read(sigfd, &info, sizeof(info)) > 0) {
      }
      // Orphans the workload left behind are reparented here: reap them all.
      for (;;) {
        int wstatus = 0;
        pid_t done = waitpid(-1, &wstatus, WNOHANG);
        if (done <= 0) break;
        if (done != workload.pid) continue;
        // Its report, if it wrote one, is complete: it wrote it before exiting.
        if (workload.status_fd >= 0) DrainStatus(control, &workload);
        Reply(control, kParkExitedTag, wstatus);
        // The workload is the sandbox's main process: the sandbox ends with it.
        _exit(0);
      }
    }
    if (p[1].revents == 0) continue;
    char tag = 0;
    int fds[kParkMaxRequestFds];
    int nfds = 0;
    iovec iov{&tag, 1};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(kParkMaxRequestFds * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    ssize_t r = recvmsg(control, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) {
      // Node closed its end (the sandbox is being destroyed, or its owner died): no workload
      // can come any more. A running one keeps the sandbox until it exits or is killed.
      control_open = false;
      if (workload.pid < 0) _exit(0);
      continue;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (nfds < kParkMaxRequestFds) fds[nfds++] = fd;
        else close(fd);
      }
    }
    bool request = tag == kParkRunTag || tag == kParkMainTag;
    if ((msg.msg_flags & MSG_CTRUNC) != 0 || !request || nfds == 0 || workload.pid >= 0) {
      // One workload per sandbox: a second request is refused, never run beside the first.
      ReplyError(control, workload.pid >= 0 ? EBUSY : EINVAL, "park request");
    } else {
      workload = StartWorkload(control, tag, fds, nfds);
    }
    for (int i = 0; i < nfds; ++i) close(fds[i]);
  }
}

}  // namespace berth
