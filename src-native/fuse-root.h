// berth-helper fuse-root: a rootless container's root served by fuse-overlayfs
// (docs/design/rootless.md, "fuse-overlayfs without root"). Without root, a FUSE mount is only
// possible in a mount namespace owned by a user namespace we own, and the container's mount
// namespace must receive it: the helper mounts in a private mount namespace of the held user
// namespace and hands the mount over detached (open_tree OPEN_TREE_CLONE), so no mount of it
// is left anywhere but in the container that moves it in (move_mount, MountOpKind kMoveTree).
#pragma once

namespace berth {

// berth-helper fuse-root FUSE_OVERLAYFS MOUNTPOINT OPTIONS   (held user namespace on fd 3)
//   setns()es into the user namespace on fd 3, unshares a private mount namespace, starts
//   FUSE_OVERLAYFS -f -o OPTIONS MOUNTPOINT as its child (parent-death signal: the daemon never
//   outlives this process), waits for the mount, clones it detached and unmounts it, writes
//   "ready FD DAEMON_PID\n" (FD: the detached mount, for the owner to take with
//   pidfd_getfd) or "err ERRNO SYSCALL MESSAGE\n", then holds FD until a line "taken" or
//   EOF on stdin. Then it only waits for the daemon, which exits by itself when the last mount
//   of its filesystem is gone (the kernel aborts the FUSE connection), and exits with its
//   status.
int RunFuseRoot(int argc, char** argv);

}  // namespace berth
