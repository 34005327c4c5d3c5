// The code that runs in the cloned child, between clone() and execve().
#pragma once

#include <cstdint>

#include "launch-spec.h"

namespace berth {

// What the child reports to the parent over the sync socket when it cannot exec.
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

// Everything the child needs, prepared by the parent before clone() so the child never
// allocates.
struct ChildContext {
  const LaunchSpec* spec;
  int sync_fd;            // the child's end of a SOCK_SEQPACKET pair
  int stdio_fds[3];       // child ends of pipes, or -1 for /dev/null (kInheritFd: that fd)
  char* const* argv;      // NULL-terminated, pointing into spec->argv
  char* const* envp;      // NULL-terminated, pointing into spec->env
  // A network namespace from the pool (netns-pool.h) to join instead of CLONE_NEWNET; its
  // loopback is already up. -1 when not pooled.
  int pooled_netns_fd;
  // Setup timing, written by the child into this shared memory (CLONE_VM) when tracing is on:
  // nanoseconds since clone at each stage, read by the parent after exec.
  bool trace;
  int64_t trace_start_ns;
  int64_t trace_ns[8];
};

// Stages recorded in ChildContext::trace_ns.
enum TraceStage { kTraceGo = 0, kTraceMounts, kTracePivot, kTraceStdio, kTraceCreds, kTraceSeccomp, kTraceExec, kTraceCount };

// Entry point passed to clone(). Never returns on success (execve); on failure reports to
// the parent and exits.
int ChildMain(void* context);

// Exec into a running container, run by berth-helper (exec-helper.cc), never on Node's
// memory: waits for "go", joins the namespaces of `spec->join_pidfd`, forks the process into
// them and sends Node its pid, pidfd and status socket ('P'). Never returns.
[[noreturn]] void RunExecJoin(ChildContext* ctx);

}  // namespace berth
