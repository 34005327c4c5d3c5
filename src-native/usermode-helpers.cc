// See usermode-helpers.h.
#include "usermode-helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace berth {
namespace {

bool ParsePid(const char* text, pid_t* out) {
  char* end = nullptr;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v <= 1) return false;
  *out = static_cast<pid_t>(v);
  return true;
}

// The parent-death signal fires when the thread that forked us exits; if the owner is already
// gone, getppid() no longer names it and nothing would ever end us.
bool TieToParent(pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    perror("berth-helper: prctl(PR_SET_PDEATHSIG)");
    return false;
  }
  if (getppid() != parent) {
    fprintf(stderr, "berth-helper: the owner (pid %d) is gone\n", static_cast<int>(parent));
    return false;
  }
  return true;
}

bool WriteFile(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "berth-helper: open %s: %s\n", path, strerror(errno));
    return false;
  }
  size_t len = strlen(text);
  bool ok = write(fd, text, len) == static_cast<ssize_t>(len);
  if (!ok) fprintf(stderr, "berth-helper: write %s: %s\n", path, strerror(errno));
  close(fd);
  return ok;
}

bool LoopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags |= IFF_UP;
    ok = ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  }
  if (!ok) fprintf(stderr, "berth-helper: bring lo up: %s\n", strerror(errno));
  close(s);
  return ok;
}

// Blocks until stdin reaches EOF or fails: the owner closed it, or died.
int WaitForEof() {
  char buf[64];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n == 0) return 0;
    if (n < 0 && errno != EINTR) return 0;
  }
}

}  // namespace

int RunTie(int argc, char** argv) {
  pid_t parent = 0;
  if (argc < 3 || !ParsePid(argv[0], &parent) || strcmp(argv[1], "--") != 0) {
    fputs("usage: berth-helper tie PARENT_PID -- PROG [ARGS...]\n", stderr);
    return 125;
  }
  if (!TieToParent(parent)) return 125;
  execv(argv[2], argv + 2);
  fprintf(stderr, "berth-helper: exec %s: %s\n", argv[2], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}

int RunNetnsHold(int argc, char** argv) {
  pid_t parent = 0;
  if (argc != 1 || !ParsePid(argv[0], &parent)) {
    fputs("usage: berth-helper netns-hold PARENT_PID\n", stderr);
    return 125;
  }
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
    fprintf(stderr, "berth-helper: unshare(CLONE_NEWUSER|CLONE_NEWNET): %s\n", strerror(errno));
    return 125;
  }
  // An unprivileged writer may map only its own ids, and only after giving up setgroups.
  char map[64];
  snprintf(map, sizeof(map), "0 %u 1\n", static_cast<unsigned>(uid));
  if (!WriteFile("/proc/self/uid_map", map) || !WriteFile("/proc/self/setgroups", "deny")) return 125;
  snprintf(map, sizeof(map), "0 %u 1\n", static_cast<unsigned>(gid));
  if (!WriteFile("/proc/self/gid_map", map) || !LoopbackUp()) return 125;
  // Set after the id change: commit_creds() clears the parent-death signal when ids change.
  if (!TieToParent(parent)) return 125;
  if (write(STDOUT_FILENO, "ready\n", 6) != 6) return 125;
  return WaitForEof();
}

int RunUsernsHold(int argc, char** argv) {
  pid_t parent = 0;
  bool single = argc == 2 && strcmp(argv[1], "single") == 0;
  if (argc != 2 || !ParsePid(argv[0], &parent) || (!single && strcmp(argv[1], "subordinate") != 0)) {
    fputs("usage: berth-helper userns-hold PARENT_PID single|subordinate\n", stderr);
    return 125;
  }
  // The owner's working directory would stay pinned (and its mount busy) for our lifetime.
  if (chdir("/") != 0) return 125;
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER) != 0) {
    fprintf(stderr, "berth-helper: unshare(CLONE_NEWUSER): %s\n", strerror(errno));
    return 125;
  }
  if (single) {
    // An unprivileged writer may map only its own ids, and only after giving up setgroups.
    char map[64];
    snprintf(map, sizeof(map), "0 %u 1\n", static_cast<unsigned>(uid));
    if (!WriteFile("/proc/self/uid_map", map) || !WriteFile("/proc/self/setgroups", "deny")) return 125;
    snprintf(map, sizeof(map), "0 %u 1\n", static_cast<unsigned>(gid));
    if (!WriteFile("/proc/self/gid_map", map)) return 125;
  } else {
    // newuidmap/newgidmap (setuid) write the maps from outside; the owner runs them, then
    // writes one byte. EOF first: the owner gave up (or died).
    if (write(STDOUT_FILENO, "unshared\n", 9) != 9) return 125;
    char go = 0;
    ssize_t n;
    while ((n = read(STDIN_FILENO, &go, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) return 0;
  }
  // Set after the id change: commit_creds() clears the parent-death signal when ids change.
  if (!TieToParent(parent)) return 125;
  if (write(STDOUT_FILENO, "ready\n", 6) != 6) return 125;
  return WaitForEof();
}

}  // namespace berth
