// The code that runs in the cloned child, between clone() and execve().
#pragma once

#include <cstdint>

#include "launch-spec.h"
#include "process-setup.h"

namespace berth {

// Everything the child needs, prepared by the parent before clone() so the child never
// allocates.
struct ChildContext {
  const LaunchSpec* spec;
  // The process part of `spec` as plain pointers (FillProcessSpec), read from stdio to execve.
  const ProcessSpec* process_spec;
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


// Entry point passed to clone(). Never returns on success (execve); on failure reports to
// the parent and exits.
int ChildMain(void* context);

}  // namespace berth
