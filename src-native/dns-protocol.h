// The hand-over between the process that starts a container on a user network and that
// network's resolver (`berth-helper dns`): one SOCK_SEQPACKET message on the resolver's
// abstract unix socket, carrying three descriptors with SCM_RIGHTS (the member's UDP socket
// bound to 127.0.0.11:53 inside its network namespace, a pidfd of its PID 1, and a TCP socket
// listening on 127.0.0.11:53 there; a launcher of an older berth sends the first two) and
// these text lines:
//
//   member <container id>
//   net <network id> <network name>      one per user network of the member, the resolver's first
//   forward 0|1                          0: every network of the member is internal (REFUSED)
//   upstream <ipv4>                      the container's `dns` servers; none: the host's resolv.conf
//
// The resolver answers one byte, 'k', once the member is served.
//
// A member's networks change while it runs (`network.connect()` / `disconnect()`): the same
// socket takes a message with no descriptors,
//
//   update <container id>
//   net <network id> <network name>      the member's user networks now (any number, even none)
//   forward 0|1
//
// answered 'k' when this resolver serves that member (its tables are replaced), 'n' when not.
#pragma once

#include <cstddef>

namespace berth {

constexpr size_t kDnsHandOverMax = 4096;
constexpr int kDnsHandOverFds = 3;
// Where the resolver listens inside each member's network namespace (Docker's address).
constexpr const char* kDnsListenAddress = "127.0.0.11";
constexpr unsigned short kDnsListenPort = 53;

}  // namespace berth
