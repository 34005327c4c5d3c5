// A detached overlay mount: the merged view of a stopped container's layers, upper and work
// dir, made with the new mount API and never attached anywhere. Nobody can see it (it is in
// no mount namespace's tree) and nothing is left behind: the kernel dissolves it when the last
// descriptor of it closes, also when this process dies.
#pragma once

#include <string>
#include <vector>

#include "fs-ops.h"

namespace berth::overlay {

struct DetachedOverlay {
  std::vector<std::string> lower_dirs;  // top first
  std::string upper_dir;
  std::string work_dir;
  bool readonly = false;
  // The container mounts its overlay with "userxattr" (a user namespace): whiteouts and opaque
  // markers are user.overlay.* there, and this mount must read them the same way.
  bool userxattr = false;
};

// Returns an O_RDONLY|O_DIRECTORY fd of the mount's root (the only reference to the mount),
// or -errno with *f set.
int MountDetachedOverlay(const DetachedOverlay& spec, fsops::Failure* f);

}  // namespace berth::overlay
