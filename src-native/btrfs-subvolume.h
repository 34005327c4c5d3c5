// btrfs subvolumes for the btrfs storage driver (lib/storage/btrfs-driver.ts): create one,
// snapshot one, destroy one, each a single ioctl on the parent directory of the new or doomed
// subvolume. Plain kernel code (no N-API): the glue is in btrfs-napi.cc.
//
// The paths are berth's own (its state directory), never a container's: a container's files
// are only ever the *contents* of a subvolume. The last component must be a plain name (the
// ioctls take a name relative to the parent fd).
#pragma once

#include <string>

#include "fs-ops.h"

namespace berth::btrfs {

enum class SubvolumeOp { kCreate, kSnapshot, kDestroy, kSetReadonly };

struct SubvolumeRequest {
  SubvolumeOp op = SubvolumeOp::kCreate;
  std::string path;    // the new subvolume (create, snapshot) or the doomed one (destroy)
  std::string source;  // snapshot: the subvolume whose tree is snapshotted
  bool readonly = false;  // snapshot: a read-only one (BTRFS_SUBVOL_RDONLY); set-readonly: the flag
};

// 0, or -errno with *f set (syscall names the ioctl, path the subvolume).
int RunSubvolumeOp(const SubvolumeRequest& request, fsops::Failure* f);

}  // namespace berth::btrfs
