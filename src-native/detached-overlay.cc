// See detached-overlay.h.
#include "detached-overlay.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace berth::overlay {
namespace {

int Config(int fs, unsigned cmd, const char* key, const char* value) {
  return syscall(SYS_fsconfig, fs, cmd, key, value, 0) == 0 ? 0 : -errno;
}

}  // namespace

int MountDetachedOverlay(const DetachedOverlay& spec, fsops::Failure* f) {
  if (spec.lower_dirs.empty()) return *f = {EINVAL, "fsconfig", "(no lower dirs)"}, -EINVAL;
  long fs = syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fs < 0) return *f = {errno, "fsopen", "overlay"}, -f->err;
  fsops::Fd fs_fd(static_cast<int>(fs));
  // One "lowerdir+" per layer (Linux 6.8): each value is limited to 256 bytes by fsconfig, but
  // there is no limit on how many, unlike the one-page option string of mount(2).
  for (const auto& lower : spec.lower_dirs) {
    if (int r = Config(fs_fd.get(), FSCONFIG_SET_STRING, "lowerdir+", lower.c_str()); r < 0) {
      return *f = {-r, "fsconfig(lowerdir+)", lower}, r;
    }
  }
  if (int r = Config(fs_fd.get(), FSCONFIG_SET_STRING, "upperdir", spec.upper_dir.c_str()); r < 0) {
    return *f = {-r, "fsconfig(upperdir)", spec.upper_dir}, r;
  }
  if (int r = Config(fs_fd.get(), FSCONFIG_SET_STRING, "workdir", spec.work_dir.c_str()); r < 0) {
    return *f = {-r, "fsconfig(workdir)", spec.work_dir}, r;
  }
  if (spec.userxattr) {
    if (int r = Config(fs_fd.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr); r < 0) {
      return *f = {-r, "fsconfig(userxattr)", spec.upper_dir}, r;
    }
  }
  if (int r = Config(fs_fd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr); r < 0) {
    return *f = {-r, "fsconfig(create)", spec.upper_dir}, r;
  }
  // nodev and nosuid as the container's own root has them: berth only reads and writes
  // through this mount, and never opens a device or runs anything from it.
  unsigned attrs = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | (spec.readonly ? MOUNT_ATTR_RDONLY : 0);
  long mnt = syscall(SYS_fsmount, fs_fd.get(), FSMOUNT_CLOEXEC, attrs);
  if (mnt < 0) return *f = {errno, "fsmount", spec.upper_dir}, -f->err;
  fsops::Fd mnt_fd(static_cast<int>(mnt));
  // fsmount's fd is an O_PATH one: getdents needs a real open of the same root.
  int dir = openat(mnt_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return *f = {errno, "openat", spec.upper_dir}, -f->err;
  return dir;
}

}  // namespace berth::overlay
