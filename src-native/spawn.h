// Parent side of a launch: clone the child, put it in its cgroups, wait until it has exec'd.
#pragma once

#include <string>
#include <vector>

#include "container-setup.h"
#include "launch-spec.h"

namespace berth {

// A failure, as data: it becomes a BerthError in TypeScript.
struct NativeError {
  int err = 0;              // positive errno
  std::string syscall;
  std::string path;
  std::string message;      // optional extra words
  ChildReportKind kind = ChildReportKind::kSetupError;
  bool ok() const { return err == 0 && message.empty(); }
};

struct SpawnResult {
  int pid = -1;
  int pidfd = -1;
  int stdio[3] = {-1, -1, -1};  // parent ends of pipes (stdin writable, stdout/err readable)
  int tty_master = -1;
  // Set when the child reached execve but no candidate could run: the container process has
  // already exited (reaped here) and TypeScript reports Docker's 127/126.
  bool exec_failed = false;
  // With LaunchSpec::trace: ms since the start of Spawn() at each child stage, then clone
  // returning in the parent, cgroup join, and exec (EOF on the sync socket).
  std::vector<double> trace;
};

// Blocking: runs on a libuv worker thread, never on the JS thread.
SpawnResult Spawn(const LaunchSpec& spec, NativeError* error);

}  // namespace berth
