// Parent side of a launch: clone the child, put it in its cgroups, wait until it has exec'd.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "container-setup.h"
#include "launch-spec.h"
#include "native-error.h"

namespace berth {

struct SpawnResult {
  int pid = -1;
  int pidfd = -1;
  int stdio[3] = {-1, -1, -1};  // parent ends of pipes (stdin writable, stdout/err readable)
  int tty_master = -1;
  // Set when the child reached execve but no candidate could run: the container process has
  // already exited (reaped here) and TypeScript reports Docker's 127/126.
  bool exec_failed = false;
  // SpawnExec only. The exec'd process's status socket: its tty master ('T'), a failure report
  // and, at execve, EOF arrive here, read on the event loop (launch-watch.h), never on a
  // worker thread. And a pidfd of the exec helper, which exits on its own: reaped there too.
  int status_fd = -1;
  int helper_pidfd = -1;
  // With LaunchSpec::trace: ms since the start of Spawn() at each child stage, then clone
  // returning in the parent, cgroup join, and exec (EOF on the sync socket).
  std::vector<double> trace;
};

// Called with the child's pid once its id maps, cgroups and interfaces are in place and it
// waits for "go": the caller's own setup of the child's namespaces (a rootless container's
// user-mode network stack, which needs the pid and must be up before the first instruction).
// Returns false (with `error` set) to abandon the launch; the child is then killed.
using BeforeGo = std::function<bool(int pid, NativeError* error)>;

// Blocking: runs on a libuv worker thread, never on the JS thread. Every wait in it has a
// deadline (`before_go` must bound its own). Creates a container (its PID 1);
// `spec.join_pidfd` must be -1.
SpawnResult Spawn(const LaunchSpec& spec, NativeError* error, const BeforeGo& before_go = nullptr);

// Blocking, bounded: starts a process inside the running container of `spec.join_pidfd`
// through berth-exec (see spawn-exec.cc). Returns once the process exists; its exec is
// reported through `status_fd`.
SpawnResult SpawnExec(const LaunchSpec& spec, NativeError* error);

}  // namespace berth
