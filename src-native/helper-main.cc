// berth-helper: the small static executable for work that must not happen inside the
// multi-threaded Node process. It is exec'd from a sealed memfd (see SealExecutable).
//
//   berth-helper monitor --state-dir DIR ...   (see monitor.h)
//     The parent of a detached container's PID 1: logs, restart policy, healthcheck, run
//     record and events, cgroup cleanup, autoRemove.
//
//   berth-helper init -- CMD [ARGS...]
//     PID 1 of a container started with `init: true`: runs CMD as its child, reaps every
//     zombie reparented to it, forwards signals to CMD, and exits with CMD's status (128+n if
//     CMD died of signal n, as Docker's --init does).
//
//   berth-helper tie PARENT_PID -- PROG [ARGS...]
//   berth-helper netns-hold PARENT_PID
//   berth-helper userns-hold PARENT_PID single|subordinate
//     Rootless networking: see usermode-helpers.h.
//
//   berth-helper fuse-root FUSE_OVERLAYFS MOUNTPOINT OPTIONS
//     A rootless container's fuse-overlayfs root, handed over detached: see fuse-root.h.
//
//   berth-helper rootless-net PARENT_PID
//     The network namespace of a rootless runtime's user networks: see rootless-net.h.
//
//   berth-helper port-forward PARENT_PID TARGET_IP SPEC...
//     Published ports of a rootless container on a user network: see port-forward.h.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dns-responder.h"
#include "fuse-root.h"
#include "monitor.h"
#include "port-forward.h"
#include "rootless-net.h"
#include "usermode-helpers.h"

namespace {

int Usage() {
  fputs("usage: berth-helper init -- CMD [ARGS...]\n"
        "       berth-helper tie PARENT_PID -- PROG [ARGS...]\n"
        "       berth-helper netns-hold PARENT_PID\n"
        "       berth-helper dns STATE_DIR NETWORK_ID CONTROL_NAME\n"
        "       berth-helper userns-hold PARENT_PID single|subordinate\n"
        "       berth-helper rootless-net PARENT_PID   (held user namespace on fd 3)\n"
        "       berth-helper port-forward PARENT_PID TARGET_IP tcp|udp:HOST_IP:HOST_PORT:PORT...\n"
        "                            (user namespace on fd 3, network namespace on fd 4)\n"
        "       berth-helper fuse-root FUSE_OVERLAYFS MOUNTPOINT OPTIONS   (held user namespace on fd 3)\n"
        "       berth-helper monitor --state-dir DIR [--log-max-size N] [--log-max-files N]\n"
        "                            [--cgroup DIR]... [--oom-file FILE] [--restart POLICY]\n"
        "                            [--max-retries N] [--retries N] [--health-interval MS ...]\n"
        "                            [--auto-remove] [--journal FILE --id ID --name NAME]\n"
        "                            (spec on fd 3, status on fd 4; see monitor.h)\n",
        stderr);
  return 125;
}

[[noreturn]] void ExecChild(char** argv, const sigset_t& original_mask) {
  sigprocmask(SIG_SETMASK, &original_mask, nullptr);
  execvp(argv[0], argv);
  int err = errno;
  if (err == ENOENT) {
    fprintf(stderr, "berth: exec \"%s\": executable file not found in $PATH\n", argv[0]);
    _exit(127);
  }
  fprintf(stderr, "berth: exec \"%s\": %s\n", argv[0], strerror(err));
  _exit(126);
}

int StatusToExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 125;
}

int RunInit(char** argv) {
  sigset_t all, original;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &original);

  pid_t child = fork();
  if (child < 0) {
    perror("berth: fork");
    return 125;
  }
  if (child == 0) ExecChild(argv, original);

  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) {
      if (errno == EINTR) continue;
      perror("berth: sigwaitinfo");
      return 125;
    }
    if (sig != SIGCHLD) {
      // Forward everything else: as PID 1 we would otherwise ignore signals without handlers.
      kill(child, sig);
      continue;
    }
    // Reap every child that has exited: orphans reparented to us included.
    for (;;) {
      int status = 0;
      pid_t done = waitpid(-1, &status, WNOHANG);
      if (done <= 0) break;
      if (done == child) return StatusToExitCode(status);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && strcmp(argv[1], "init") == 0 && strcmp(argv[2], "--") == 0) {
    return RunInit(argv + 3);
  }
  if (argc >= 2 && strcmp(argv[1], "monitor") == 0) return berth::RunMonitor(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "tie") == 0) return berth::RunTie(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "netns-hold") == 0) return berth::RunNetnsHold(argc - 2, argv + 2);
  if (argc == 5 && strcmp(argv[1], "dns") == 0) return berth::RunDnsResponder(argv[2], argv[3], argv[4]);
  if (argc >= 2 && strcmp(argv[1], "rootless-net") == 0) return berth::RunRootlessNet(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "port-forward") == 0) return berth::RunPortForward(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "fuse-root") == 0) return berth::RunFuseRoot(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "userns-hold") == 0) return berth::RunUsernsHold(argc - 2, argv + 2);
  return Usage();
}
