// PID 1 of a pooled sandbox. Everything of a start but the workload happened before a caller
// asked (namespaces, rootfs, cgroup, network); the workload arrives as an exec plan on the
// control socket (park-protocol.h), and this process becomes it: it runs exactly the setup an
// exec into a container runs (FinishAndExec of process-setup.h, from the plan berth-exec would
// get: stdio, rlimits, user and groups, capabilities, parent-death signal, every other
// descriptor closed, workdir, no_new_privs, signal mask) and execs the command. The command is
// then the sandbox's PID 1, as `run()`'s command is a container's: it is in the sandbox's
// namespaces and cgroup by birth, with no setns and no cgroup.procs write (on cgroup v1 that
// write waits for an RCU grace period when no migration happened recently), no fork, and
// Node's pidfd of this process reports its exit. The seccomp filter is this process's own
// (loaded at launch from the same options), kept across execve.
//
// What this process holds while it waits, that nothing in the sandbox may reach: the control
// socket (whoever writes to it chooses the credentials the command gets, within this process's
// own). It is a socketpair (no path names it), close-on-exec (the command's execve closes it:
// a report of a failed setup is the last thing sent on it), and this process is not dumpable,
// so /proc/1/fd, pidfd_getfd and ptrace are refused to anyone without CAP_SYS_PTRACE; before
// the request nothing else runs in the sandbox anyway (a request is refused once one came).
#include "park-main.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "exec-plan.h"
#include "park-protocol.h"
#include "process-setup.h"

namespace berth {
namespace {

// argv, envp and the exec candidates of the plan point into this: static, for a plan may hold
// thousands of strings and they must hold until the execve.
const char* g_pointers[64 * 1024];

void ReplyError(int control, int err, const char* syscall) {
  ChildReport report{};
  report.kind = ChildReportKind::kSetupError;
  report.err = err;
  strncpy(report.syscall, syscall, sizeof(report.syscall) - 1);
  strncpy(report.path, "parked init", sizeof(report.path) - 1);
  send(control, &report, sizeof(report), MSG_NOSIGNAL);
}

// Becomes the workload described by the request's plan (fds[0]) with its given stdio (the
// next descriptors). Returns only when the request is unusable (the reason was sent).
void ExecWorkload(int control, const int* fds, int nfds) {
  struct stat st {};
  if (fstat(fds[0], &st) < 0 || st.st_size <= 0) {
    ReplyError(control, errno != 0 ? errno : EINVAL, "fstat");
    return;
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* plan = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fds[0], 0);
  if (plan == MAP_FAILED) {
    ReplyError(control, errno, "mmap");
    return;
  }
  ExecPlanView view{};
  if (!ReadExecPlan(static_cast<const char*>(plan), size, &view, g_pointers, sizeof(g_pointers) / sizeof(g_pointers[0]))) {
    munmap(plan, size);
    ReplyError(control, EINVAL, "decode");
    return;
  }
  ProcessContext ctx{};
  ctx.spec = &view.process;
  // Reports of a failed setup go to Node on the control socket; at execve it closes (EOF).
  ctx.sync_fd = control;
  int next = 1;
  for (int i = 0; i < 3; ++i) {
    ctx.stdio_fds[i] = -1;
    if ((view.stdio_given & (1 << i)) == 0) continue;
    if (next >= nfds) {
      munmap(plan, size);
      ReplyError(control, EBADF, "recvmsg");
      return;
    }
    ctx.stdio_fds[i] = fds[next++];
  }
  ctx.argv = view.argv;
  ctx.envp = view.envp;
  // FinishAndExec closes every descriptor but the control socket (close-on-exec) before it
  // enters the workdir: the request's descriptors do not reach the command.
  FinishAndExec(&ctx);
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
  for (;;) {
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
    // Blocking: every signal is blocked, and nothing but this request can come.
    ssize_t r = recvmsg(control, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    // Node closed its end (the sandbox is being destroyed, or its owner died): no workload
    // can come any more.
    if (r <= 0) _exit(0);
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
    if ((msg.msg_flags & MSG_CTRUNC) != 0 || tag != kParkRequestTag || nfds == 0) {
      ReplyError(control, EINVAL, "park request");
    } else {
      ExecWorkload(control, fds, nfds);
    }
    for (int i = 0; i < nfds; ++i) close(fds[i]);
  }
}

}  // namespace berth
