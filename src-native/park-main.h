// `berth-helper park`: PID 1 of a pooled sandbox (lib/pool/, lib/launch/parked.ts).
#pragma once

namespace berth {

// Runs forever as the sandbox's PID 1: reaps every zombie, ignores every signal it can, and
// starts the one workload Node sends over the control socket on `control_fd` (park-protocol.h)
// as its own child, already inside the sandbox's namespaces and cgroup. Exits once that
// workload exited (after reporting its status), or when Node closed its end of the socket.
[[noreturn]] void RunPark(int control_fd);

}  // namespace berth
