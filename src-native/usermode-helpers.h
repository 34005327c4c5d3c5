// Helper subcommands for rootless (user-mode) networking: processes berth starts for a
// container's network and must end with its owner, whatever way the owner goes.
#pragma once

namespace berth {

// berth-helper tie PARENT_PID -- PROG [ARGS...]
//   Sets the parent-death signal to SIGKILL, checks that its parent is still PARENT_PID (the
//   owner may have died between fork and prctl, which would leave PROG untied), then execs
//   PROG. PROG is a user-mode network stack (pasta -f, slirp4netns) that has no parent-death
//   option of its own: it dies with the process that started it, even on SIGKILL.
int RunTie(int argc, char** argv);

// berth-helper netns-hold PARENT_PID
//   Becomes the holder of a fresh user namespace (container root = the caller, a single-id map)
//   and network namespace owned by it, with loopback up; writes "ready\n" on stdout once both
//   exist, then waits until stdin reaches EOF (its owner closed it or died) and exits. Tied to
//   PARENT_PID like `tie`. The holder is what user-mode stacks and rootless bridges attach to.
int RunNetnsHold(int argc, char** argv);

}  // namespace berth
