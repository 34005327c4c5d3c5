// berth-helper port-forward: published ports of a rootless container on a user network
// (docs/design/networks.md, "Published ports"). The container's address exists only inside
// the process's rootless network namespace (rootless-net.h), which pasta cannot be told about
// after it started, so a forwarder bridges the two: its listening sockets are made in the
// host's namespace, before it joins the rootless one, and every accepted connection (every
// UDP client) gets a socket made afterwards, inside, to the container's address.
#pragma once

namespace berth {

// berth-helper port-forward PARENT_PID TARGET_IP SPEC...
//   (fd 3: the held user namespace, fd 4: the rootless network namespace)
//   SPEC is tcp|udp:HOST_IP:HOST_PORT:CONTAINER_PORT (HOST_PORT 0: the kernel picks).
//   Binds every host socket first (in the namespaces it was started in), then setns()es into
//   fd 3 and fd 4, ties itself to PARENT_PID (parent-death signal, re-checked parent) and
//   writes "ready PORT..." (the bound host ports, in SPEC order), or, when a socket cannot be
//   bound, "err ERRNO SYSCALL WHAT MESSAGE" and exits 125. Then forwards until end of file on
//   stdin, SIGTERM or the parent's death; its sockets close with it.
int RunPortForward(int argc, char** argv);

}  // namespace berth
