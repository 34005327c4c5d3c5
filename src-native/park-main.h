// `berth-exec park`: PID 1 of a pooled sandbox (lib/pool/, lib/launch/parked.ts). Freestanding,
// built into berth-exec (exec-main.cc) so that the command's execve has little to tear down.
#pragma once

namespace berth {

// Waits as the sandbox's PID 1, every signal blocked, for the one workload Node sends over the
// control socket on `control_fd` (park-protocol.h), and becomes it (execve): the command is
// the sandbox's PID 1, inside its namespaces and cgroup from birth. Exits when Node closed
// its end of the socket first.
[[noreturn]] void RunPark(int control_fd);

}  // namespace berth
