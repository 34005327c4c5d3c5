// berth-helper rootless-net: the network namespace a rootless runtime's user networks live in
// (docs/design/networks.md § Rootless, "Shared networks"). Node cannot do this work itself: a
// multi-threaded process may not setns() into a user namespace, and only a process inside the
// held user namespace (lib/rootless/held-userns.ts) has CAP_NET_ADMIN over the containers'
// network namespaces, which that user namespace owns.
#pragma once

namespace berth {

// berth-helper rootless-net PARENT_PID   (the held user namespace's descriptor on fd 3)
//   setns()es into the user namespace on fd 3, unshares a network namespace (loopback up,
//   ip_forward 1), ties itself to PARENT_PID (parent-death signal, then re-checks the parent),
//   writes "ready\n" and serves one command per stdin line, one answer line each on stdout:
//     bridge NAME ADDRESS MTU MAC ALIAS                      EnsureBridge (netlink.cc)
//     attach PID HOSTIF BRIDGE IFNAME ADDRESS GATEWAY|- MTU MAC ALIAS
//                                                            a veth from BRIDGE into PID's netns
//     dns PID CONTROL HEXMESSAGE                             DnsHandOver (dns-handover.cc)
//     resolver STATE_DIR NETWORK_ID CONTROL                  starts `berth-helper dns` here
//                                                            unless one listens on CONTROL
//     delete IFNAME                                          DeleteLink
//     nft PATH HEXRULESET                                    runs `PATH -f -` here
//   answers: "ok [WORDS]" or "err ERRNO SYSCALL PATH MESSAGE". Exits at EOF on stdin; its
//   network namespace goes with it once no container and no stack holds it.
int RunRootlessNet(int argc, char** argv);

}  // namespace berth
