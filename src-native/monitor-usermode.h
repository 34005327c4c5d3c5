// A detached rootless container's user-mode network stack (pasta or slirp4netns), started by
// its monitor at each run while PID 1 waits for "go", and stopped when the run ends: the stack
// lives as long as the container, not as long as the Node process that created it.
#pragma once

#include <string>
#include <vector>

#include "native-error.h"

namespace berth {

// What lib/launch/detached.ts planned (the command lines come from lib/network/usermode-args.ts).
struct UserModeStackPlan {
  std::string kind;     // "pasta" or "slirp4netns"; empty: no stack
  std::string scratch;  // a private dir for pasta's pid file or slirp4netns's API socket
  std::vector<std::string> argv;     // argv[0] is the executable; "{pid}" becomes PID 1's pid
  std::vector<std::string> hostfwd;  // slirp4netns: one API request line per published port
};

class UserModeStack {
 public:
  // Starts the stack for the namespaces of `pid` and returns once the interface is configured
  // and every port is published (bounded: 20 s). On failure nothing is left running.
  bool Start(const UserModeStackPlan& plan, int pid, NativeError* error);
  // Ends the stack (SIGTERM, SIGKILL after 2 s), reaps it, removes the scratch dir. Idempotent.
  void Stop();

 private:
  bool WaitReady(const UserModeStackPlan& plan, int ready_fd, NativeError* error);
  bool Publish(const UserModeStackPlan& plan, NativeError* error);
  void Fail(const UserModeStackPlan& plan, const std::string& what, NativeError* error);

  int pid_ = -1;
  int pidfd_ = -1;
  int exit_fd_ = -1;  // slirp4netns --exit-fd: it exits at end of file
  int err_fd_ = -1;   // the stack's stderr, for the failure message
  std::string scratch_;
};

}  // namespace berth
