// See fuse-root.h.
#include "fuse-root.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/mount.h>

namespace berth {
namespace {

constexpr int kUsernsFd = 3;
// The daemon mounts within milliseconds; a loaded 2-CPU VM gets generous slack, still bounded.
constexpr int kMountWaitMs = 30000;
constexpr int kPollMs = 5;

void Say(const char* line) {
  size_t left = strlen(line);
  while (left > 0) {
    ssize_t n = write(STDOUT_FILENO, line, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the owner is gone: EOF on stdin follows
    line += n;
    left -= static_cast<size_t>(n);
  }
}

int Fail(int err, const char* syscall, const char* message) {
  char line[512];
  snprintf(line, sizeof(line), "err %d %s %s\n", err, syscall, message);
  Say(line);
  return 125;
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 125;
}

}  // namespace

int RunFuseRoot(int argc, char** argv) {
  if (argc != 3) {
    fputs("usage: berth-helper fuse-root FUSE_OVERLAYFS MOUNTPOINT OPTIONS   (held user namespace on fd 3)\n", stderr);
    return 125;
  }
  const char* program = argv[0];
  const char* mountpoint = argv[1];
  const char* options = argv[2];
  // Single-threaded, and a user namespace of our own user: setns gives every capability in it,
  // which mounting FUSE in a mount namespace it owns takes.
  if (setns(kUsernsFd, CLONE_NEWUSER) != 0) return Fail(errno, "setns", "held user namespace");
  close(kUsernsFd);
  if (unshare(CLONE_NEWNS) != 0) return Fail(errno, "unshare", "CLONE_NEWNS");
  // Nothing mounted here may propagate back into the host's namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return Fail(errno, "mount", "/ (make private)");
  // The credential change of setns cleared it; the owner takes FD with pidfd_getfd.
  prctl(PR_SET_DUMPABLE, 1);

  struct stat before;
  if (stat(mountpoint, &before) != 0) return Fail(errno, "stat", mountpoint);
  sigset_t all, original;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &original);
  pid_t self = getpid();
  pid_t daemon = fork();
  if (daemon < 0) return Fail(errno, "fork", "fuse-overlayfs");
  if (daemon == 0) {
    sigprocmask(SIG_SETMASK, &original, nullptr);
    // Until the mount is handed over this process is all that can undo it: the daemon dies with it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != self) _exit(125);
    // Our stdin and stdout are the owner's protocol; the daemon gets neither.
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(STDERR_FILENO, STDOUT_FILENO);
    }
    char* args[] = {const_cast<char*>("fuse-overlayfs"), const_cast<char*>("-f"), const_cast<char*>("-o"),
                    const_cast<char*>(options), const_cast<char*>(mountpoint), nullptr};
    execv(program, args);
    fprintf(stderr, "berth-helper: exec %s: %s\n", program, strerror(errno));
    _exit(127);
  }
  sigprocmask(SIG_SETMASK, &original, nullptr);

  bool mounted = false;
  for (int waited = 0; waited < kMountWaitMs; waited += kPollMs) {
    int status = 0;
    if (waitpid(daemon, &status, WNOHANG) == daemon) {
      char message[128];
      snprintf(message, sizeof(message), "fuse-overlayfs exited with status %d before mounting (its stderr says why)", ExitCodeOf(status));
      return Fail(EIO, "fuse-overlayfs", message);
    }
    struct stat now;
    if (stat(mountpoint, &now) == 0 && now.st_dev != before.st_dev) {
      mounted = true;
      break;
    }
    struct timespec ts{0, kPollMs * 1000000L};
    nanosleep(&ts, nullptr);
  }
  if (!mounted) {
    kill(daemon, SIGKILL);
    waitpid(daemon, nullptr, 0);
    return Fail(ETIMEDOUT, "fuse-overlayfs", "the mount did not appear within 30 s");
  }
  int tree = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, mountpoint, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (tree < 0) {
    int err = errno;
    kill(daemon, SIGKILL);
    waitpid(daemon, nullptr, 0);
    return Fail(err, "open_tree", mountpoint);
  }
  // The clone is now the filesystem's only mount: once the container that moves it in is gone
  // (or nobody takes it), the kernel aborts the connection and the daemon exits.
  if (umount2(mountpoint, MNT_DETACH) != 0) {
    int err = errno;
    close(tree);
    kill(daemon, SIGKILL);
    waitpid(daemon, nullptr, 0);
    return Fail(err, "umount2", mountpoint);
  }
  char line[64];
  snprintf(line, sizeof(line), "ready %d %d\n", tree, static_cast<int>(daemon));
  Say(line);
  // Hold the mount until the owner has its own descriptor ("taken") or is gone (EOF).
  char buf[64];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || memchr(buf, '\n', static_cast<size_t>(n)) != nullptr) break;
  }
  close(tree);
  close(STDIN_FILENO);
  close(STDOUT_FILENO);
  for (;;) {
    int status = 0;
    pid_t r = waitpid(daemon, &status, 0);
    if (r < 0 && errno == EINTR) continue;
    return r == daemon ? ExitCodeOf(status) : 125;
  }
}

}  // namespace berth
