// MS_* flags of a mount op as mount_setattr(2) attributes: the parent sets them on the trees it
// opens for a user-namespaced child (spawn.cc), the child on the trees it opens itself.
#pragma once

#include <linux/mount.h>

#include <cstdint>

namespace berth {

inline uint64_t MountAttrFromFlags(unsigned long flags, bool readonly) {
  uint64_t a = 0;
  if (readonly || (flags & MS_RDONLY)) a |= MOUNT_ATTR_RDONLY;
  if (flags & MS_NOSUID) a |= MOUNT_ATTR_NOSUID;
  if (flags & MS_NODEV) a |= MOUNT_ATTR_NODEV;
  if (flags & MS_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
  return a;
}

}  // namespace berth
