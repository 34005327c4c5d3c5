#!/bin/sh
# Entry point of a container that runs berth (docs/deploy-kubernetes.md). Container engines
# mount the cgroup filesystem and /proc/sys read-only; berth needs to create cgroups for its
# sandboxes' limits and to set network sysctls in their network namespaces. With CAP_SYS_ADMIN
# the container may make its own views writable: only the mount flags of this container's
# mounts change, and /proc/sys/net is per network namespace, so kernel.* sysctls stay
# read-only. Then it runs the command given ("$@").
set -eu

writable() { # $1: a mount point; remount,bind changes this mount's flags, never the filesystem's
  mount -o remount,bind,rw "$1"
}

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  # cgroup v2 (a private cgroup namespace, the engines' default): the container's cgroup is the
  # namespace root. v2 enables controllers for children only in a cgroup without processes, so
  # this container's processes move to a leaf, init/, and berth nests berth/ beside it.
  writable /sys/fs/cgroup
  mkdir -p /sys/fs/cgroup/init
  for pid in $(cat /sys/fs/cgroup/cgroup.procs); do
    echo "$pid" > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || : # a process that just exited
  done
  for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control
  done
else
  # cgroup v1: one mount per hierarchy, each showing this container's own cgroup.
  for h in /sys/fs/cgroup/*; do
    if grep -q " $h [^ ]* [^-]*- cgroup " /proc/self/mountinfo; then writable "$h"; fi
  done
fi

# A bind of /proc/sys/net onto itself gets flags of its own, so only it becomes writable.
mount --bind /proc/sys/net /proc/sys/net
writable /proc/sys/net

exec "$@"
