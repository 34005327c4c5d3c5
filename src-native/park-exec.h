// Node's side of a parked sandbox's control socket (park-protocol.h): the request that starts
// the workload inside the sandbox, and the replies of its PID 1. Plain C++; the N-API glue is
// park-napi.cc.
#pragma once

#include <cstdint>

#include "launch-spec.h"
#include "native-error.h"

namespace berth {

// A control socket pair: [0] stays in Node, [1] becomes the parked PID 1's stdin. Both
// close-on-exec. Returns false with `error` set.
bool MakeParkControl(int (&pair)[2], NativeError* error);

// Sends the exec plan of `spec` and the stdio the spec asks for (pipes are made here; Node's
// ends land in `parent_stdio`). Non-blocking: one datagram on an idle socket.
bool SendParkRequest(int control, const LaunchSpec& spec, int (&parent_stdio)[3], NativeError* error);

// One reply to a request, read without blocking.
struct ParkStarted {
  enum Kind { kNone, kStarted, kFailed, kGone } kind = kNone;  // kNone: nothing yet (EAGAIN)
  int pid = -1;
  int status_fd = -1;  // kStarted: the workload's status socket (launch-watch.h)
  NativeError error;   // kFailed / kGone
};
ParkStarted ReadParkReply(int control);

// The workload's wait status that PID 1 sent before it exited; false when there is none (PID 1
// was killed first). Non-blocking.
bool ReadParkExit(int control, int* wait_status);

}  // namespace berth
