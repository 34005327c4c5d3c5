// See rootless-net.h.
#include "rootless-net.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "dns-handover.h"
#include "launch-spec.h"
#include "netlink.h"

namespace berth {
namespace {

constexpr int kUsernsFd = 3;
// A command line longer than this is not one berth sends (a ruleset of hundreds of networks
// is a few KiB, hex-encoded twice that).
constexpr size_t kMaxLine = 1 << 20;
// `berth-helper dns` answers "ready" or "running" within milliseconds; bounded all the same.
constexpr int kResolverReadyMs = 10000;

bool ParsePid(const char* text, pid_t* out) {
  char* end = nullptr;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v <= 1) return false;
  *out = static_cast<pid_t>(v);
  return true;
}

void Reply(const std::string& line) {
  std::string out = line + "\n";
  const char* p = out.data();
  size_t left = out.size();
  while (left > 0) {
    ssize_t n = write(STDOUT_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(0);  // the owner is gone
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// One line, no newlines inside: the answer protocol is line-based.
std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.empty() ? "-" : s;
}

void ReplyError(const NativeError& e) {
  Reply("err " + std::to_string(e.err ? e.err : EIO) + " " + OneLine(e.syscall) + " " + OneLine(e.path) + " " +
        OneLine(e.message.empty() ? strerror(e.err ? e.err : EIO) : e.message));
}

void ReplyErrno(int err, const char* syscall, const std::string& path, const std::string& message = "") {
  NativeError e;
  e.err = err;
  e.syscall = syscall;
  e.path = path;
  e.message = message;
  ReplyError(e);
}

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    size_t j = line.find(' ', i);
    if (j == std::string::npos) j = line.size();
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool FromHex(const std::string& hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    char pair[3] = {hex[i], hex[i + 1], 0};
    char* end = nullptr;
    long v = strtol(pair, &end, 16);
    if (*end != '\0') return false;
    out->push_back(static_cast<char>(v));
  }
  return true;
}

bool ParseU32(const std::string& text, uint32_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = strtoul(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || v > 0xffffffffUL) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

std::string Dash(const std::string& s) { return s == "-" ? "" : s; }

bool WriteProc(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t len = strlen(text);
  bool ok = write(fd, text, len) == static_cast<ssize_t>(len);
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
  close(s);
  return ok;
}

// The container's netns, by the pid of its PID 1 (a child of the owner, waiting for "go":
// its pid cannot have been recycled while the owner has not reaped it).
int OpenNetnsOf(const std::string& pid_text, NativeError* e) {
  pid_t pid = 0;
  if (!ParsePid(pid_text.c_str(), &pid)) {
    e->err = EINVAL;
    e->syscall = "parse";
    e->path = pid_text;
    e->message = "not a pid";
    return -1;
  }
  std::string path = "/proc/" + pid_text + "/ns/net";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    e->err = errno;
    e->syscall = "open";
    e->path = path;
  }
  return fd;
}

void Bridge(const std::vector<std::string>& w) {
  BridgeSpec b;
  if (w.size() != 6 || !ParseU32(w[3], &b.mtu)) return ReplyErrno(EINVAL, "parse", "bridge", "usage: bridge NAME ADDRESS MTU MAC ALIAS");
  b.name = w[1];
  b.addresses.push_back(w[2]);
  b.mac = Dash(w[4]);
  b.alias = Dash(w[5]);
  NativeError e;
  if (!EnsureBridge(b, &e)) return ReplyError(e);
  Reply("ok");
}

void Attach(const std::vector<std::string>& w) {
  NetInterface nic;
  if (w.size() != 10 || !ParseU32(w[7], &nic.mtu)) {
    return ReplyErrno(EINVAL, "parse", "attach", "usage: attach PID HOSTIF BRIDGE IFNAME ADDRESS GATEWAY MTU MAC ALIAS");
  }
  nic.host_ifname = w[2];
  nic.bridge = w[3];
  nic.ifname = w[4];
  nic.addresses.push_back(w[5]);
  nic.gateway = Dash(w[6]);
  nic.mac = Dash(w[8]);
  nic.alias = Dash(w[9]);
  NativeError e;
  int fd = OpenNetnsOf(w[1], &e);
  if (fd < 0) return ReplyError(e);
  bool ok = ConfigureInterfaces(fd, {nic}, &e);
  close(fd);
  if (!ok) return ReplyError(e);
  Reply("ok");
}

void Dns(const std::vector<std::string>& w) {
  std::string message;
  pid_t pid = 0;
  if (w.size() != 4 || !ParsePid(w[1].c_str(), &pid) || !FromHex(w[3], &message)) {
    return ReplyErrno(EINVAL, "parse", "dns", "usage: dns PID CONTROL HEXMESSAGE");
  }
  NativeError e;
  int fd = OpenNetnsOf(w[1], &e);
  if (fd < 0) return ReplyError(e);
  bool ok = DnsHandOver(fd, pid, w[2], message, &e);
  close(fd);
  if (!ok) return ReplyError(e);
  Reply("ok");
}

// Reads one line from `fd` within `ms`: the child's first word.
std::string ReadWord(int fd, int ms) {
  std::string text;
  char buf[128];
  while (text.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return "timeout";
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  size_t nl = text.find('\n');
  return OneLine(nl == std::string::npos ? text : text.substr(0, nl));
}

// The resolver runs here, not in the host's namespace: its control socket is abstract (one
// per network namespace), and it must be reachable from this helper's hand-overs.
// Whether a resolver listens on the abstract socket `control`. Asked with the networks lock
// held: one that listens cannot decide to exit meanwhile (it does so only under that lock), and
// one that decided has closed its socket already. Saves a fork and exec per launch.
bool ResolverListens(const std::string& control) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (control.size() + 1 > sizeof(addr.sun_path)) {
    close(fd);
    return false;
  }
  memcpy(addr.sun_path + 1, control.data(), control.size());
  socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + control.size());
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), alen) == 0;
  close(fd);
  return ok;
}

void Resolver(const std::vector<std::string>& w, pid_t self) {
  if (w.size() != 4) return ReplyErrno(EINVAL, "parse", "resolver", "usage: resolver STATE_DIR NETWORK_ID CONTROL");
  if (ResolverListens(w[3])) return Reply("ok 0 running");
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return ReplyErrno(errno, "pipe2", "resolver");
  pid_t child = fork();
  if (child < 0) {
    int err = errno;
    close(out[0]);
    close(out[1]);
    return ReplyErrno(err, "fork", "resolver");
  }
  if (child == 0) {
    // It dies with this helper, which dies with its owner.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != self) _exit(125);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0) _exit(125);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const char* argv[] = {"berth-helper", "dns", w[1].c_str(), w[2].c_str(), w[3].c_str(), nullptr};
    execv("/proc/self/exe", const_cast<char**>(argv));
    _exit(127);
  }
  close(out[1]);
  std::string word = ReadWord(out[0], kResolverReadyMs);
  close(out[0]);
  if (word == "timeout") kill(child, SIGKILL);
  if (word != "ready" && word != "running") return ReplyErrno(EIO, "berth-helper dns", w[2], "the resolver said: " + word);
  Reply("ok " + std::to_string(child) + " " + word);
}

void Delete(const std::vector<std::string>& w) {
  if (w.size() != 2) return ReplyErrno(EINVAL, "parse", "delete", "usage: delete IFNAME");
  bool existed = false;
  NativeError e;
  if (!DeleteLink(w[1], &existed, &e)) return ReplyError(e);
  Reply(existed ? "ok 1" : "ok 0");
}

// nftables, not iptables-legacy: the legacy tools take /run/xtables.lock, which a user may not
// open; nf_tables rules in a network namespace owned by our user namespace are ours to make.
void Nft(const std::vector<std::string>& w) {
  std::string ruleset;
  if (w.size() != 3 || w[1].empty() || w[1][0] != '/' || !FromHex(w[2], &ruleset)) {
    return ReplyErrno(EINVAL, "parse", "nft", "usage: nft ABSOLUTE_PATH HEXRULESET");
  }
  int in[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ReplyErrno(errno, "pipe2", "nft");
  if (pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close(in[0]);
    close(in[1]);
    return ReplyErrno(e, "pipe2", "nft");
  }
  pid_t child = fork();
  if (child < 0) {
    int e = errno;
    for (int fd : {in[0], in[1], err[0], err[1]}) close(fd);
    return ReplyErrno(e, "fork", "nft");
  }
  if (child == 0) {
    if (dup2(in[0], STDIN_FILENO) < 0 || dup2(err[1], STDOUT_FILENO) < 0 || dup2(err[1], STDERR_FILENO) < 0) _exit(125);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const char* argv[] = {w[1].c_str(), "-f", "-", nullptr};
    execv(argv[0], const_cast<char**>(argv));
    _exit(127);
  }
  close(in[0]);
  close(err[1]);
  signal(SIGPIPE, SIG_IGN);
  const char* p = ruleset.data();
  size_t left = ruleset.size();
  while (left > 0) {
    ssize_t n = write(in[1], p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  close(in[1]);
  std::string said;
  char buf[512];
  for (;;) {
    ssize_t n = read(err[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (said.size() < 4096) said.append(buf, static_cast<size_t>(n));
  }
  close(err[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return ReplyErrno(EIO, "nft -f -", w[1], "nft failed: " + said);
  Reply("ok");
}

void ReapResolvers() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace

int RunRootlessNet(int argc, char** argv) {
  pid_t parent = 0;
  if (argc != 1 || !ParsePid(argv[0], &parent)) {
    fputs("usage: berth-helper rootless-net PARENT_PID   (held user namespace on fd 3)\n", stderr);
    return 125;
  }
  if (chdir("/") != 0) return 125;
  // Single-threaded and our own user's namespace: the kernel lets us in with every capability
  // there, which is what owning the containers' network namespaces takes.
  if (setns(kUsernsFd, CLONE_NEWUSER) != 0) {
    fprintf(stderr, "berth-helper: setns(held user namespace): %s\n", strerror(errno));
    return 125;
  }
  close(kUsernsFd);
  if (unshare(CLONE_NEWNET) != 0) {
    fprintf(stderr, "berth-helper: unshare(CLONE_NEWNET): %s\n", strerror(errno));
    return 125;
  }
  if (!LoopbackUp()) {
    fprintf(stderr, "berth-helper: bring lo up: %s\n", strerror(errno));
    return 125;
  }
  if (!WriteProc("/proc/sys/net/ipv4/ip_forward", "1")) {
    fprintf(stderr, "berth-helper: ip_forward: %s\n", strerror(errno));
    return 125;
  }
  // After setns: the credential change cleared both. Dumpable lets the owner (and pasta, as
  // the owner) open /proc/<us>/ns/*.
  prctl(PR_SET_DUMPABLE, 1);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
    fprintf(stderr, "berth-helper: the owner (pid %d) is gone\n", static_cast<int>(parent));
    return 125;
  }
  Reply("ready");
  pid_t self = getpid();
  std::string buf;
  char chunk[4096];
  for (;;) {
    size_t nl;
    while ((nl = buf.find('\n')) == std::string::npos) {
      if (buf.size() > kMaxLine) return 125;
      ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;
      buf.append(chunk, static_cast<size_t>(n));
    }
    std::string line = buf.substr(0, nl);
    buf.erase(0, nl + 1);
    ReapResolvers();
    std::vector<std::string> w = Split(line);
    if (w.empty()) {
      ReplyErrno(EINVAL, "parse", "-", "empty command");
    } else if (w[0] == "bridge") {
      Bridge(w);
    } else if (w[0] == "attach") {
      Attach(w);
    } else if (w[0] == "dns") {
      Dns(w);
    } else if (w[0] == "resolver") {
      Resolver(w, self);
    } else if (w[0] == "delete") {
      Delete(w);
    } else if (w[0] == "nft") {
      Nft(w);
    } else {
      ReplyErrno(EINVAL, "parse", w[0], "unknown command");
    }
  }
}

}  // namespace berth
