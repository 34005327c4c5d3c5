// `berth-helper exec`: see spawn-exec.cc for the whole path and why it exists.
#include "exec-helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "container-setup.h"
#include "spec-codec.h"

namespace berth {
namespace {

[[noreturn]] void ReportAndExit(int err, const char* syscall, const std::string& path) {
  ChildReport report{};
  report.kind = ChildReportKind::kSetupError;
  report.err = err;
  strncpy(report.syscall, syscall, sizeof(report.syscall) - 1);
  strncpy(report.path, path.c_str(), sizeof(report.path) - 1);
  (void)!write(kExecSyncFd, &report, sizeof(report));
  _exit(125);
}

std::string ReadSpec() {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(kExecSpecFd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ReportAndExit(errno, "read", "exec spec");
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(kExecSpecFd);
  return out;
}

}  // namespace

void RunExecHelper() {
  // First, before anything can see the process it forks: not dumpable. The forked process
  // inherits this until its own execve, so the container it enters cannot ptrace it or open
  // its /proc/<pid>/mem, environ or fd while it is still berth's code.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Node ignores SIGPIPE, and ignored signals survive execve: give the process Docker's
  // defaults. The mask stays full until the process's own setup clears it before execve.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 65; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  // Node's own stdio must not travel on; the host's /dev/null stands in (a container's
  // /dev/null is whatever the container made of it).
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) ReportAndExit(errno, "open", "/dev/null");
  for (int fd = 0; fd < 3; ++fd) dup2(devnull, fd);

  std::string encoded = ReadSpec();
  static LaunchSpec spec;  // static: referenced by the forked process until its execve
  std::string decode_error;
  if (!DecodeLaunchSpec(encoded.data(), encoded.size(), &spec, &decode_error)) {
    ReportAndExit(EINVAL, "decode", decode_error);
  }
  encoded.clear();
  spec.join_pidfd = kExecJoinFd;
  spec.join_helper_fd = -1;

  static std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  static std::vector<char*> envp;
  for (const auto& v : spec.env) envp.push_back(const_cast<char*>(v.c_str()));
  envp.push_back(nullptr);

  static ChildContext ctx{};
  ctx.spec = &spec;
  ctx.sync_fd = kExecSyncFd;
  for (int i = 0; i < 3; ++i) {
    bool given = !spec.tty && spec.stdio[i].mode != StdioMode::kNull;
    ctx.stdio_fds[i] = given ? kExecStdioFd + i : devnull;
  }
  ctx.argv = argv.data();
  ctx.envp = envp.data();
  ctx.pooled_netns_fd = -1;
  RunExecJoin(&ctx);
}

}  // namespace berth
