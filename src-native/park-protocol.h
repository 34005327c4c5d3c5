// The control channel of a parked sandbox: a SOCK_SEQPACKET pair between Node (park-exec.cc,
// park-napi.cc) and the sandbox's PID 1, `berth-exec park` (park-main.cc). PID 1 gets its end
// as its stdin at launch and moves it to a close-on-exec descriptor: nothing in the sandbox's
// filesystem names it, and no process PID 1 starts inherits it.
//
//   Node -> PID 1  'R' + descriptors: the exec plan (a memfd, exec-plan.h), then the stdio the
//                  plan marks as given, in order (stdin, stdout, stderr). One per sandbox: PID 1
//                  becomes the command.
//   PID 1 -> Node  a ChildReport (process-setup.h) when the command's setup failed or no exec
//                  candidate could run (PID 1 then exits 125/126/127), or when the request was
//                  unusable; then EOF. EOF alone: the command exec'd (close-on-exec), or PID 1
//                  died. Its exit is the pidfd's Node holds of PID 1 since the launch.
#pragma once

namespace berth {

constexpr char kParkRequestTag = 'R';
// The plan and up to three stdio descriptors.
constexpr int kParkMaxRequestFds = 4;

}  // namespace berth
