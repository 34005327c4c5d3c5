// Node's side of a parked sandbox's control socket (park-protocol.h): the request that starts
// the workload inside the sandbox, and PID 1's messages about it. Plain C++; the N-API glue is
// park-napi.cc.
#pragma once

#include <cstdint>

#include "launch-spec.h"
#include "native-error.h"
#include "process-setup.h"

namespace berth {

// A control socket pair: [0] stays in Node, [1] becomes the parked PID 1's stdin. Both
// close-on-exec. Returns false with `error` set.
bool MakeParkControl(int (&pair)[2], NativeError* error);

// Sends the exec plan of `spec` and the stdio the spec asks for (pipes are made here; Node's
// ends land in `parent_stdio`). Non-blocking: one datagram on an idle socket.
bool SendParkRequest(int control, const LaunchSpec& spec, int (&parent_stdio)[3], NativeError* error);

// One message from PID 1, read without blocking.
struct ParkEvent {
  enum Kind { kNone, kFailed, kGone } kind = kNone;  // kNone: nothing yet (EAGAIN)
  ChildReport report;  // kFailed
  int err = 0;         // kGone: why the socket ended (0: EOF: the command exec'd, or PID 1 died)
};
ParkEvent ReadParkEvent(int control);

}  // namespace berth
