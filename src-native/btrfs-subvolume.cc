// See btrfs-subvolume.h.
#include "btrfs-subvolume.h"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth::btrfs {
namespace {

// Splits `path` into its parent directory and last component; false when the last component is
// not a plain name the ioctls can take.
bool Split(const std::string& path, std::string* parent, std::string* name) {
  size_t end = path.find_last_not_of('/');
  if (end == std::string::npos) return false;
  size_t slash = path.rfind('/', end);
  *name = path.substr(slash == std::string::npos ? 0 : slash + 1, end - (slash == std::string::npos ? 0 : slash + 1) + 1);
  *parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  return !name->empty() && *name != "." && *name != ".." && name->size() <= BTRFS_SUBVOL_NAME_MAX;
}

int Fail(fsops::Failure* f, int err, const char* syscall, const std::string& path) {
  *f = {err, syscall, path};
  return -err;
}

}  // namespace

int RunSubvolumeOp(const SubvolumeRequest& r, fsops::Failure* f) {
  std::string parent, name;
  if (!Split(r.path, &parent, &name)) return Fail(f, EINVAL, "btrfs subvolume (not a plain last component)", r.path);
  fsops::Fd dir(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return Fail(f, errno, "open", parent);
  switch (r.op) {
    case SubvolumeOp::kCreate: {
      btrfs_ioctl_vol_args_v2 args;
      std::memset(&args, 0, sizeof args);
      std::memcpy(args.name, name.data(), name.size());
      if (ioctl(dir.get(), BTRFS_IOC_SUBVOL_CREATE_V2, &args) < 0) return Fail(f, errno, "ioctl(BTRFS_IOC_SUBVOL_CREATE_V2)", r.path);
      return 0;
    }
    case SubvolumeOp::kSnapshot: {
      // O_NOFOLLOW: the source is a subvolume root berth made, never a link to one.
      fsops::Fd source(open(r.source.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (source.get() < 0) return Fail(f, errno, "open", r.source);
      btrfs_ioctl_vol_args_v2 args;
      std::memset(&args, 0, sizeof args);
      args.fd = source.get();
      args.flags = r.readonly ? BTRFS_SUBVOL_RDONLY : 0;
      std::memcpy(args.name, name.data(), name.size());
      if (ioctl(dir.get(), BTRFS_IOC_SNAP_CREATE_V2, &args) < 0) return Fail(f, errno, "ioctl(BTRFS_IOC_SNAP_CREATE_V2)", r.path);
      return 0;
    }
    case SubvolumeOp::kSetReadonly: {
      // A read-only subvolume refuses the removal of a subvolume inside it (EROFS): removal
      // clears the flag of one a container set it on, then destroys what it holds.
      fsops::Fd sub(openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.get() < 0) return Fail(f, errno, "open", r.path);
      __u64 flags = 0;
      if (ioctl(sub.get(), BTRFS_IOC_SUBVOL_GETFLAGS, &flags) < 0) return Fail(f, errno, "ioctl(BTRFS_IOC_SUBVOL_GETFLAGS)", r.path);
      flags = r.readonly ? (flags | BTRFS_SUBVOL_RDONLY) : (flags & ~static_cast<__u64>(BTRFS_SUBVOL_RDONLY));
      if (ioctl(sub.get(), BTRFS_IOC_SUBVOL_SETFLAGS, &flags) < 0) return Fail(f, errno, "ioctl(BTRFS_IOC_SUBVOL_SETFLAGS)", r.path);
      return 0;
    }
    case SubvolumeOp::kDestroy: {
      // As root (CAP_SYS_ADMIN) this needs no user_subvol_rm_allowed and takes read-only
      // subvolumes too; the tree's extents are freed later by the cleaner thread. A subvolume
      // that holds other subvolumes is refused (ENOTEMPTY): the caller destroys those first.
      btrfs_ioctl_vol_args_v2 args;
      std::memset(&args, 0, sizeof args);
      std::memcpy(args.name, name.data(), name.size());
      if (ioctl(dir.get(), BTRFS_IOC_SNAP_DESTROY_V2, &args) == 0) return 0;
      if (errno != ENOTTY && errno != EOPNOTSUPP) return Fail(f, errno, "ioctl(BTRFS_IOC_SNAP_DESTROY_V2)", r.path);
      // Before Linux 5.7: the first version, by name too.
      btrfs_ioctl_vol_args v1;
      std::memset(&v1, 0, sizeof v1);
      if (name.size() > BTRFS_PATH_NAME_MAX) return Fail(f, ENAMETOOLONG, "ioctl(BTRFS_IOC_SNAP_DESTROY)", r.path);
      std::memcpy(v1.name, name.data(), name.size());
      if (ioctl(dir.get(), BTRFS_IOC_SNAP_DESTROY, &v1) < 0) return Fail(f, errno, "ioctl(BTRFS_IOC_SNAP_DESTROY)", r.path);
      return 0;
    }
  }
  return Fail(f, EINVAL, "btrfs subvolume (unknown op)", r.path);
}

}  // namespace berth::btrfs
