#include "process-setup.h"

#include <fcntl.h>
#include <linux/errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>

#include "raw-syscall.h"
#include "raw-text.h"

namespace berth {
namespace {

using raw::AppendUint;
using raw::Call;
using raw::Copy;

class Setup {
 public:
  explicit Setup(const ProcessContext* ctx) : ctx_(ctx), spec_(ctx->spec) {}

  [[noreturn]] void Run() {
    if (spec_->tty) {
      SetupTty();
    } else {
      SetupPlainStdio();
    }
    Mark(kTraceStdio);
    ApplyRlimits();
    if (spec_->set_oom_score_adj) WriteOomScoreAdj();
    DropCredentials();
    // Changing credentials cleared the parent-death signal; set it again.
    if (spec_->die_with_parent) Call(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    Mark(kTraceCreds);
    CloseInheritedFds();
    EnterWorkdir();
    Call(SYS_umask, 022);
    if (spec_->no_new_privs) Check(Call(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)", "");
    // Unblock signals only now: from here on default dispositions apply.
    uint64_t empty = 0;
    Call(SYS_rt_sigprocmask, SIG_SETMASK, &empty, nullptr, 8);
    // Seccomp last, so that the setup above is not subject to the container's profile.
    LoadSeccomp();
    Mark(kTraceSeccomp);
    Exec();
  }

 private:
  const ProcessContext* ctx_;
  const ProcessSpec* spec_;

  void Mark(TraceStage stage) {
    if (ctx_->trace_ns != nullptr) ctx_->trace_ns[stage] = RawNowNs() - ctx_->trace_start_ns;
  }

  [[noreturn]] void Fail(long neg_errno, const char* syscall, const char* path) {
    ReportAndExit(ctx_->sync_fd, ChildReportKind::kSetupError, neg_errno, syscall, path);
  }

  long Check(long ret, const char* syscall, const char* path) {
    if (ret < 0) Fail(ret, syscall, path);
    return ret;
  }

  // Puts fds onto 0, 1, 2. Sources are first moved above 2 so that a source that already sits
  // on 0..2 is not clobbered by an earlier dup3.
  void SetupStdio(const int (&sources)[3]) {
    int high[3];
    for (int i = 0; i < 3; ++i) {
      high[i] = static_cast<int>(Check(Call(SYS_fcntl, sources[i], F_DUPFD_CLOEXEC, 3), "fcntl", "stdio"));
    }
    for (int i = 0; i < 3; ++i) {
      Check(Call(SYS_dup3, high[i], i, 0), "dup3", "stdio");
      raw::Close(high[i]);
    }
  }

  // The tty master goes to the parent with a one-byte 'T' message.
  void SendTtyMaster(int fd) {
    char tag = 'T';
    Check(SendWithFds(ctx_->sync_fd, &tag, 1, &fd, 1), "sendmsg", "tty");
  }

  // A terminal from the container's own devpts instance: the master goes back to the parent
  // over the sync socket, the slave becomes the controlling terminal and stdio.
  void SetupTty() {
    long master = Check(Call(SYS_openat, AT_FDCWD, "/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), "open", "/dev/ptmx");
    int unlock = 0;
    Check(Call(SYS_ioctl, static_cast<int>(master), TIOCSPTLCK, &unlock), "ioctl(TIOCSPTLCK)", "/dev/ptmx");
    unsigned int n = 0;
    Check(Call(SYS_ioctl, static_cast<int>(master), TIOCGPTN, &n), "ioctl(TIOCGPTN)", "/dev/ptmx");
    char name[32];
    Copy(name, sizeof(name), "/dev/pts/");
    AppendUint(name + 9, n);
    long slave = Check(Call(SYS_openat, AT_FDCWD, name, O_RDWR | O_NOCTTY | O_CLOEXEC), "open", name);
    winsize ws{};
    ws.ws_row = spec_->tty_rows;
    ws.ws_col = spec_->tty_cols;
    Call(SYS_ioctl, static_cast<int>(slave), TIOCSWINSZ, &ws);
    Check(Call(SYS_setsid), "setsid", name);
    Check(Call(SYS_ioctl, static_cast<int>(slave), TIOCSCTTY, 0), "ioctl(TIOCSCTTY)", name);
    int fds[3] = {static_cast<int>(slave), static_cast<int>(slave), static_cast<int>(slave)};
    SetupStdio(fds);
    SendTtyMaster(static_cast<int>(master));
    raw::Close(static_cast<int>(master));
    raw::Close(static_cast<int>(slave));
  }

  void SetupPlainStdio() {
    int fds[3];
    long null_fd = -1;
    for (int i = 0; i < 3; ++i) {
      if (ctx_->stdio_fds[i] >= 0) {
        fds[i] = ctx_->stdio_fds[i];
      } else {
        if (null_fd < 0) {
          null_fd = Check(Call(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC), "open", "/dev/null");
        }
        fds[i] = static_cast<int>(null_fd);
      }
    }
    SetupStdio(fds);
    if (null_fd >= 0) raw::Close(static_cast<int>(null_fd));
    Call(SYS_setsid);
  }

  void ApplyRlimits() {
    for (uint32_t i = 0; i < spec_->rlimit_count; ++i) {
      const ProcessRlimit& r = spec_->rlimits[i];
      struct {
        uint64_t cur, max;
      } lim{r.soft, r.hard};
      Check(Call(SYS_prlimit64, 0, r.resource, &lim, nullptr), "prlimit64", "ulimits");
    }
  }

  void WriteOomScoreAdj() {
    long fd = Check(Call(SYS_openat, AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC), "open",
                    "/proc/self/oom_score_adj");
    char buf[16];
    int v = spec_->oom_score_adj;
    size_t n = 0;
    if (v < 0) buf[n++] = '-';
    n += AppendUint(buf + n, static_cast<unsigned>(v < 0 ? -v : v));
    raw::Write(static_cast<int>(fd), buf, n);
    raw::Close(static_cast<int>(fd));
  }

  void DropCredentials() {
    // The bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP, which we may be about to lose.
    for (int cap = 0; cap < 64; ++cap) {
      if (spec_->cap_bounding & (uint64_t{1} << cap)) continue;
      long r = Call(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
      if (r == -EINVAL) break;  // past the kernel's last capability
      Check(r, "prctl(PR_CAPBSET_DROP)", "capabilities");
    }
    if (!spec_->keep_groups || spec_->group_count > 0) Check(Call(SYS_setgroups, spec_->group_count, spec_->groups), "setgroups", "user");
    Check(Call(SYS_setresgid, spec_->gid, spec_->gid, spec_->gid), "setresgid", "user");
    // Keep the permitted set across the uid change; capset below sets the exact sets.
    Check(Call(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)", "user");
    Check(Call(SYS_setresuid, spec_->uid, spec_->uid, spec_->uid), "setresuid", "user");
    Check(Call(SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)", "user");
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2];
    for (int i = 0; i < 2; ++i) {
      data[i].effective = static_cast<uint32_t>(spec_->cap_effective >> (32 * i));
      data[i].permitted = static_cast<uint32_t>(spec_->cap_permitted >> (32 * i));
      data[i].inheritable = static_cast<uint32_t>(spec_->cap_inheritable >> (32 * i));
    }
    Check(Call(SYS_capset, &header, data), "capset", "capabilities");
    Check(Call(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl(PR_CAP_AMBIENT)", "capabilities");
    for (int cap = 0; cap < 64; ++cap) {
      if (!(spec_->cap_ambient & (uint64_t{1} << cap))) continue;
      Check(Call(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0), "prctl(PR_CAP_AMBIENT_RAISE)",
            "capabilities");
    }
  }

  // Closes every fd above 2 except the ones still needed until execve (which are CLOEXEC).
  // Done before chdir(workdir): a Node fd left open there is the CVE-2024-21626 escape.
  void CloseInheritedFds() {
    int keep[2] = {ctx_->sync_fd, spec_->exec_fd};
    if (keep[0] > keep[1]) {
      int t = keep[0];
      keep[0] = keep[1];
      keep[1] = t;
    }
    unsigned lo = 3;
    for (int k : keep) {
      if (k < static_cast<int>(lo)) continue;
      if (static_cast<unsigned>(k) > lo) Call(SYS_close_range, lo, static_cast<unsigned>(k) - 1, 0);
      lo = static_cast<unsigned>(k) + 1;
    }
    Call(SYS_close_range, lo, ~0U, 0);
  }

  void EnterWorkdir() {
    open_how how{};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_NO_MAGICLINKS;
    const char* cwd = spec_->cwd == nullptr || spec_->cwd[0] == '\0' ? "/" : spec_->cwd;
    long fd = Call(SYS_openat2, AT_FDCWD, cwd, &how, sizeof(how));
    if (fd < 0) Fail(fd, "chdir", cwd);
    Check(Call(SYS_fchdir, static_cast<int>(fd)), "chdir", cwd);
    raw::Close(static_cast<int>(fd));
  }

  void LoadSeccomp() {
    if (spec_->seccomp == nullptr || spec_->seccomp_bytes == 0) return;
    sock_fprog prog{};
    prog.len = static_cast<unsigned short>(spec_->seccomp_bytes / sizeof(sock_filter));
    prog.filter = static_cast<sock_filter*>(const_cast<void*>(spec_->seccomp));
    Check(Call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), "seccomp", "seccomp");
  }

  [[noreturn]] void Exec() {
    if (spec_->exec_fd >= 0) {
      long r = Call(SYS_execveat, spec_->exec_fd, "", ctx_->argv, ctx_->envp, AT_EMPTY_PATH);
      Fail(r, "execveat", "berth-init");
    }
    long first_other = 0;
    const char* other_path = "";
    bool denied = false;
    const char* denied_path = "";
    for (uint32_t i = 0; i < spec_->exec_candidate_count; ++i) {
      const char* candidate = spec_->exec_candidates[i];
      long r = Call(SYS_execve, candidate, ctx_->argv, ctx_->envp);
      if (r == -ENOENT || r == -ENOTDIR) continue;
      if (r == -EACCES) {
        if (!denied) denied_path = candidate;
        denied = true;
        continue;
      }
      if (first_other == 0) {
        first_other = r;
        other_path = candidate;
      }
    }
    if (denied) ReportAndExit(ctx_->sync_fd, ChildReportKind::kNotExecutable, -EACCES, "execve", denied_path);
    if (first_other != 0) ReportAndExit(ctx_->sync_fd, ChildReportKind::kNotExecutable, first_other, "execve", other_path);
    ReportAndExit(ctx_->sync_fd, ChildReportKind::kNotFound, -ENOENT, "execve", spec_->argv0 == nullptr ? "" : spec_->argv0);
  }
};

}  // namespace

void ReportAndExit(int sync_fd, ChildReportKind kind, long neg_errno, const char* syscall, const char* path) {
  ChildReport report;
  report.kind = kind;
  report.err = static_cast<int32_t>(neg_errno < 0 ? -neg_errno : neg_errno);
  Copy(report.syscall, sizeof(report.syscall), syscall);
  Copy(report.path, sizeof(report.path), path);
  raw::Write(sync_fd, &report, sizeof(report));
  raw::ExitGroup(kind == ChildReportKind::kNotFound ? 127 : 126);
}

long SendWithFds(int sock, const void* payload, size_t len, const int* fds, int count) {
  iovec iov{const_cast<void*>(payload), len};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (count > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(count * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(count * sizeof(int));
    __builtin_memcpy(CMSG_DATA(c), fds, count * sizeof(int));
  }
  return Call(SYS_sendmsg, sock, &msg, 0);
}

void ResetSignalDispositions() {
  struct {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } dfl{};
  dfl.handler = reinterpret_cast<void*>(SIG_DFL);
  for (int sig = 1; sig < 65; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) Call(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
}

int64_t RawNowNs() {
  timespec ts{};
  Call(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void FinishAndExec(const ProcessContext* ctx) {
  Setup setup(ctx);
  setup.Run();
}

}  // namespace berth
