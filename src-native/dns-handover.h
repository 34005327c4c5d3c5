// The launching side of the embedded resolver (docs/design/networks.md § DNS): makes the
// member's UDP socket on 127.0.0.11:53 inside its network namespace and hands it, with a
// pidfd of its PID 1, to the network's `berth-helper dns` (dns-protocol.h). Plain C++: the
// addon (lifetime 'process') and the detached monitor both run it from Spawn().
#pragma once

#include <string>

#include "native-error.h"

namespace berth {

// `pid` is the not-yet-reaped child (its pid cannot have been recycled); `control` the
// resolver's abstract socket name; `message` the hand-over text.
bool DnsHandOver(int netns_fd, int pid, const std::string& control, const std::string& message, NativeError* error);

// Sends an `update` message (dns-protocol.h) to the resolver at `control`. 1: it serves the
// member and took the change; 0: it does not serve that member, or no resolver listens there;
// -1: a failure, in `error`. Bounded: 2 s per send and per answer.
int DnsUpdate(const std::string& control, const std::string& message, NativeError* error);

}  // namespace berth
