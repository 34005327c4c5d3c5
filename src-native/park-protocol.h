// The control channel of a parked sandbox: a SOCK_SEQPACKET pair between Node (park-exec.cc,
// park-napi.cc) and the sandbox's PID 1, `berth-helper park` (park-main.cc). PID 1 gets its end
// as its stdin at launch and moves it to a close-on-exec descriptor: nothing in the sandbox's
// filesystem names it, and no process PID 1 starts inherits it.
//
//   Node -> PID 1  'R' or 'M' + descriptors: the exec plan (a memfd, exec-plan.h), then the
//                  stdio the plan marks as given, in order (stdin, stdout, stderr). One per
//                  sandbox. 'M' (a prewarmed main) also wants to hear when it has exec'd; 'R'
//                  (a command run to completion) only how it ended, so that nobody wakes up
//                  in between: on a busy host every wake-up is a trip through the run queue.
//   PID 1 -> Node  'E' int32 pid       ('M' only) the process has exec'd
//                  a ChildReport       (process-setup.h) it could not exec, or PID 1 could not
//                                      start it (fork failed…); 'X' follows when it existed
//                  'X' int32 status    its wait status; PID 1 exits right after, so the kernel
//                                      kills whatever the workload left in the sandbox
#pragma once

#include <cstdint>

namespace berth {

constexpr char kParkRunTag = 'R';
constexpr char kParkMainTag = 'M';
constexpr char kParkExecdTag = 'E';
constexpr char kParkExitedTag = 'X';
// The plan and up to three stdio descriptors.
constexpr int kParkMaxRequestFds = 4;

struct ParkReply {
  char tag;
  int32_t value;
} __attribute__((packed));

}  // namespace berth
