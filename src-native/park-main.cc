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
// It is `berth-exec park` (exec-main.cc), freestanding (no libc, raw system calls only), not a
// mode of the glibc-linked berth-helper: the command's execve tears down this process's
// address space, and on this paravirtualised VM every page-table entry it clears is a trap to
// the hypervisor. berth-helper parked with 197 resident pages (its memfd text faulted in
// around every touched page, glibc's start-up, the heap) and 9 page-table pages; this program
// has four, so its execve has little to tear down (≈ 0.2 ms less per request here;
// docs/design/pools.md, docs/benchmarks.md "Warm pool").
//
// What this process holds while it waits, that nothing in the sandbox may reach: the control
// socket (whoever writes to it chooses the credentials the command gets, within this process's
// own). It is a socketpair (no path names it), close-on-exec (the command's execve closes it:
// a report of a failed setup is the last thing sent on it), and this process is not dumpable,
// so /proc/1/fd, pidfd_getfd and ptrace are refused to anyone without CAP_SYS_PTRACE; before
// the request nothing else runs in the sandbox anyway (a request is refused once one came).
#include "park-main.h"

#include <fcntl.h>
#include <linux/errno.h>
#include <linux/prctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "exec-plan.h"
#include "park-protocol.h"
#include "process-setup.h"
#include "raw-syscall.h"
#include "raw-text.h"

namespace berth {
namespace {

using raw::Call;

// argv, envp and the exec candidates of the plan point into this: static, for a plan may hold
// thousands of strings and they must hold until the execve. Untouched pages of it cost nothing.
const char* g_park_pointers[64 * 1024];

void ReplyError(int control, long neg_errno, const char* syscall) {
  ChildReport report{};
  report.kind = ChildReportKind::kSetupError;
  report.err = static_cast<int32_t>(neg_errno < 0 ? -neg_errno : neg_errno);
  raw::Copy(report.syscall, sizeof(report.syscall), syscall);
  raw::Copy(report.path, sizeof(report.path), "parked init");
  Call(SYS_sendto, control, &report, sizeof(report), MSG_NOSIGNAL, nullptr, 0);
}

bool Failed(long r) { return r < 0 && r > -4096; }

// Becomes the workload described by the request's plan (fds[0]) with its given stdio (the
// next descriptors). Returns only when the request is unusable (the reason was sent).
void ExecWorkload(int control, const int* fds, int nfds) {
  struct stat st {};
  long r = Call(SYS_fstat, fds[0], &st);
  if (r < 0 || st.st_size <= 0) {
    ReplyError(control, r < 0 ? r : -EINVAL, "fstat");
    return;
  }
  size_t size = static_cast<size_t>(st.st_size);
  long mapped = Call(SYS_mmap, nullptr, size, PROT_READ, MAP_PRIVATE, fds[0], 0);
  if (Failed(mapped)) {
    ReplyError(control, mapped, "mmap");
    return;
  }
  const char* plan = reinterpret_cast<const char*>(mapped);
  ExecPlanView view{};
  if (!ReadExecPlan(plan, size, &view, g_park_pointers, sizeof(g_park_pointers) / sizeof(g_park_pointers[0]))) {
    Call(SYS_munmap, plan, size);
    ReplyError(control, -EINVAL, "decode");
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
      Call(SYS_munmap, plan, size);
      ReplyError(control, -EBADF, "recvmsg");
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
  Call(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
  // The control socket came as stdin; keep it close-on-exec above the stdio numbers, and put
  // /dev/null (stdout, from the launch) back on 0.
  long moved = Call(SYS_fcntl, control_fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0) raw::ExitGroup(125);
  int control = static_cast<int>(moved);
  Call(SYS_dup2, 1, control_fd);

  // Every signal blocked (the kernel's sigset: 64 bits). PID 1 ignores what it does not
  // handle anyway; this keeps a signal from interrupting the wait with EINTR for nothing.
  uint64_t all = ~uint64_t{0};
  Call(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, sizeof(all));
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
    long r = Call(SYS_recvmsg, control, &msg, MSG_CMSG_CLOEXEC);
    if (r == -EINTR) continue;
    // Node closed its end (the sandbox is being destroyed, or its owner died): no workload
    // can come any more.
    if (r <= 0) raw::ExitGroup(0);
    // Node sends one SCM_RIGHTS message; the socket is Node's and PID 1's alone.
    cmsghdr* c = msg.msg_controllen >= sizeof(cmsghdr) ? CMSG_FIRSTHDR(&msg) : nullptr;
    if (c != nullptr && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(0)) {
      int count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      const unsigned char* data = CMSG_DATA(c);
      for (int i = 0; i < count; ++i) {
        int fd;
        __builtin_memcpy(&fd, data + i * sizeof(int), sizeof(int));
        if (nfds < kParkMaxRequestFds) fds[nfds++] = fd;
        else raw::Close(fd);
      }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0 || tag != kParkRequestTag || nfds == 0) {
      ReplyError(control, -EINVAL, "park request");
    } else {
      ExecWorkload(control, fds, nfds);
    }
    for (int i = 0; i < nfds; ++i) raw::Close(fds[i]);
  }
}

}  // namespace berth
