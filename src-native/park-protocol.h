// The control channel of a parked sandbox: a SOCK_SEQPACKET pair between Node (park-exec.cc)
// and the sandbox's PID 1, `berth-helper park` (park-main.cc). PID 1 gets its end as its stdin
// at launch and moves it to a close-on-exec descriptor: nothing in the sandbox's filesystem
// names it, and no process PID 1 starts inherits it.
//
//   Node -> PID 1  'R'  + descriptors: the exec plan (a memfd, exec-plan.h), then the stdio the
//                        plan marks as given, in order (stdin, stdout, stderr). One per sandbox.
//   PID 1 -> Node  'P' int32 pid + the process's status socket (as berth-exec sends it: its
//                        tty master, failure report and, at execve, EOF; launch-watch.h)
//                  a ChildReport (process-setup.h) when PID 1 could not start it (fork failed…)
//                  'X' int32 wait status, when that process exited; PID 1 exits right after,
//                        so the kernel kills whatever the workload left in the sandbox.
#pragma once

#include <cstdint>

namespace berth {

constexpr char kParkRequestTag = 'R';
constexpr char kParkStartedTag = 'P';
constexpr char kParkExitedTag = 'X';
// The plan and up to three stdio descriptors.
constexpr int kParkMaxRequestFds = 4;

struct ParkReply {
  char tag;
  int32_t value;  // 'P': the process's pid in the sandbox; 'X': its wait status
} __attribute__((packed));

}  // namespace berth
