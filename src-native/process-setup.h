// The last stretch of every container process, from stdio to execve: a container's PID 1
// (after its mounts, container-setup.cc) and a process exec'd into a running container (in
// berth-exec, exec-main.cc). Freestanding on purpose: no libc, no allocation, no C++ library,
// only raw system calls (raw-syscall.h). It runs in a CLONE_VM child of Node, whose libc state
// it must not touch, and in berth-exec, which has no libc at all.
#pragma once

#include <cstddef>
#include <cstdint>

namespace berth {

// What a child reports to the parent over its sync socket when it cannot exec.
enum class ChildReportKind : int32_t {
  kSetupError = 1,     // a syscall failed; err/syscall/path say which
  kNotFound = 2,       // no exec candidate exists (Docker: exit 127)
  kNotExecutable = 3,  // a candidate exists but cannot be executed (Docker: exit 126)
};

struct ChildReport {
  ChildReportKind kind;
  int32_t err;  // positive errno
  char syscall[32];
  char path[1024];
};

// Stages recorded in a trace (LaunchSpec::trace).
enum TraceStage { kTraceGo = 0, kTraceMounts, kTracePivot, kTraceStdio, kTraceCreds, kTraceSeccomp, kTraceExec, kTraceCount };

struct ProcessRlimit {
  int resource = 0;
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// The process's identity, limits and program, as plain pointers into memory that outlives the
// setup (the parent's LaunchSpec, or berth-exec's mapped exec plan).
struct ProcessSpec {
  bool tty;
  uint16_t tty_rows;
  uint16_t tty_cols;
  const ProcessRlimit* rlimits;
  uint32_t rlimit_count;
  bool set_oom_score_adj;
  int oom_score_adj;
  uint32_t uid;
  uint32_t gid;
  const uint32_t* groups;
  uint32_t group_count;
  // The user namespace denies setgroups (an unprivileged single-id map): the supplementary
  // groups cannot be changed, so none may be asked for and setgroups is not called.
  bool keep_groups = false;
  uint64_t cap_bounding;
  uint64_t cap_effective;
  uint64_t cap_permitted;
  uint64_t cap_inheritable;
  uint64_t cap_ambient;
  bool die_with_parent;
  bool no_new_privs;
  const char* cwd;  // "" or nullptr: "/"
  const void* seccomp;  // struct sock_filter[]; nullptr: unconfined
  uint32_t seccomp_bytes;
  int exec_fd;  // >= 0: execveat(exec_fd) (the sealed init helper) instead of the candidates
  const char* const* exec_candidates;  // absolute paths to try in order ($PATH applied)
  uint32_t exec_candidate_count;
  const char* argv0;  // named in the "not found" report
};

struct ProcessContext {
  const ProcessSpec* spec;
  int sync_fd;           // reports and the tty master go here; CLOEXEC, so execve closes it
  int stdio_fds[3];      // -1: /dev/null
  char* const* argv;
  char* const* envp;
  int64_t* trace_ns;     // kTraceCount stamps, or nullptr
  int64_t trace_start_ns;
};

// stdio (or a terminal from /dev/ptmx), rlimits, oom_score_adj, credentials and capabilities,
// the parent-death signal, closing every other descriptor, the workdir, no_new_privs, the
// signal mask, seccomp (last), execve. Never returns: on failure it reports and exits.
[[noreturn]] void FinishAndExec(const ProcessContext* ctx);

// Writes a ChildReport to `sync_fd` and exits (127 for kNotFound, 126 otherwise).
[[noreturn]] void ReportAndExit(int sync_fd, ChildReportKind kind, long neg_errno, const char* syscall,
                                const char* path);

// One message on a unix socket: `payload` with up to two descriptors (SCM_RIGHTS). Returns
// sendmsg's result or -errno.
long SendWithFds(int sock, const void* payload, size_t len, const int* fds, int count);

// Every signal back to its default disposition: Node's handlers must not run in a child that
// shares its memory, and signals Node ignores (SIGPIPE) would stay ignored across execve.
void ResetSignalDispositions();

// Monotonic nanoseconds through the raw syscall (no vDSO: there may be no libc to find it).
int64_t RawNowNs();

}  // namespace berth
