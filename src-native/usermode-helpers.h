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

// berth-helper userns-hold PARENT_PID single|subordinate
//   Becomes the holder of a fresh user namespace that a runtime's rootless containers are then
//   created in (lib/rootless/held-userns.ts), as Podman's pause process is: the id maps are
//   written once, not per container. `single`: writes the single-id map itself (root = the
//   caller, setgroups denied). `subordinate`: writes "unshared\n" on stdout and waits for one
//   byte on stdin, sent once the owner ran newuidmap/newgidmap on it. Then "ready\n", and
//   waits until stdin reaches EOF. Tied to PARENT_PID like `tie`. The namespace lives on after
//   the holder while a container (or a descriptor) is in it; the holder is only for new joins.
int RunUsernsHold(int argc, char** argv);

}  // namespace berth
