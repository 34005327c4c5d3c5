// See port-forward.h.
#include "port-forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

namespace berth {
namespace {

constexpr int kUsernsFd = 3;
constexpr int kNetnsFd = 4;
constexpr size_t kBuffer = 64 * 1024;
// Bounds on what one forwarder holds: connections past this are closed at once, UDP clients
// past this are dropped until a flow expires. Each connection costs two sockets.
constexpr size_t kMaxConnections = 1024;
constexpr size_t kMaxFlows = 256;
// A UDP client silent this long is forgotten (conntrack's default for unreplied UDP is 30 s,
// for a stream 120 s: the middle).
constexpr time_t kFlowIdleSeconds = 60;

struct Listener {
  int fd = -1;
  bool udp = false;
  sockaddr_in target{};
};

// One direction's bytes not yet written.
struct Pipe {
  char data[kBuffer];
  size_t off = 0;
  size_t len = 0;
  bool eof = false;       // the reading side said end of file
  bool shut = false;      // the writing side was shut down for writing
  bool Empty() const { return off == len; }
  bool Full() const { return len == kBuffer; }
};

struct Connection {
  int client = -1;
  int upstream = -1;
  bool connecting = true;
  bool dead = false;
  Pipe up;    // client -> container
  Pipe down;  // container -> client
};

struct Flow {
  int fd = -1;
  sockaddr_in client{};
  const Listener* listener = nullptr;
  time_t last = 0;
};

void Say(const std::string& line) {
  std::string out = line + "\n";
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = write(STDOUT_FILENO, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(0);  // the owner is gone
    done += static_cast<size_t>(n);
  }
}

[[noreturn]] void Fail(int err, const char* syscall, const std::string& what) {
  Say("err " + std::to_string(err) + " " + syscall + " " + what + " " + strerror(err));
  _exit(125);
}

bool ParseNumber(const std::string& text, long max, long* out) {
  if (text.empty() || text.size() > 10) return false;
  char* end = nullptr;
  errno = 0;
  long v = strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < 0 || v > max) return false;
  *out = v;
  return true;
}

// tcp|udp:HOST_IP:HOST_PORT:CONTAINER_PORT -> a bound (and for TCP listening) host socket.
Listener Bind(const std::string& spec, const in_addr& target) {
  std::vector<std::string> f;
  size_t i = 0;
  for (size_t j; (j = spec.find(':', i)) != std::string::npos; i = j + 1) f.push_back(spec.substr(i, j - i));
  f.push_back(spec.substr(i));
  long host_port = 0, container_port = 0;
  sockaddr_in host{};
  host.sin_family = AF_INET;
  if (f.size() != 4 || (f[0] != "tcp" && f[0] != "udp") || inet_pton(AF_INET, f[1].c_str(), &host.sin_addr) != 1 ||
      !ParseNumber(f[2], 65535, &host_port) || !ParseNumber(f[3], 65535, &container_port) || container_port == 0) {
    Fail(EINVAL, "parse", spec);
  }
  Listener l;
  l.udp = f[0] == "udp";
  l.target.sin_family = AF_INET;
  l.target.sin_addr = target;
  l.target.sin_port = htons(static_cast<uint16_t>(container_port));
  host.sin_port = htons(static_cast<uint16_t>(host_port));
  l.fd = socket(AF_INET, (l.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l.fd < 0) Fail(errno, "socket", spec);
  int one = 1;
  // Lets a port in TIME_WAIT from the last run be bound again; a listener still holds it.
  if (!l.udp) setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(l.fd, reinterpret_cast<sockaddr*>(&host), sizeof(host)) != 0) Fail(errno, "bind", spec);
  if (!l.udp && listen(l.fd, 128) != 0) Fail(errno, "listen", spec);
  return l;
}

uint16_t BoundPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

void CloseConnection(Connection& c, bool reset) {
  if (reset && c.client >= 0) {
    // The container refused or vanished: the client sees a reset, as from a closed port.
    linger l{1, 0};
    setsockopt(c.client, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  if (c.client >= 0) close(c.client);
  if (c.upstream >= 0) close(c.upstream);
  c.client = c.upstream = -1;
  c.dead = true;
}

void Accept(const Listener& l, std::vector<std::unique_ptr<Connection>>& conns) {
  for (;;) {
    int fd = accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or an aborted connection: nothing to do either way
    if (conns.size() >= kMaxConnections) {
      close(fd);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->client = fd;
    c->upstream = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->upstream < 0 || (connect(c->upstream, reinterpret_cast<const sockaddr*>(&l.target), sizeof(l.target)) != 0 && errno != EINPROGRESS)) {
      CloseConnection(*c, true);
      continue;
    }
    conns.push_back(std::move(c));
  }
}

// Reads from `from` into `p`; false on an error that ends the connection.
bool Fill(int from, Pipe& p) {
  if (p.eof || p.Full()) return true;
  ssize_t n = read(from, p.data + p.len, kBuffer - p.len);
  if (n > 0) p.len += static_cast<size_t>(n);
  else if (n == 0) p.eof = true;
  else if (errno != EAGAIN && errno != EINTR) return false;
  return true;
}

// Writes what `p` holds to `to`, and passes its end of file on once drained.
bool Drain(int to, Pipe& p) {
  if (!p.Empty()) {
    ssize_t n = send(to, p.data + p.off, p.len - p.off, MSG_NOSIGNAL);
    if (n > 0) p.off += static_cast<size_t>(n);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    // Drained: the whole buffer is free again (Full() must not stay true, or the reading
    // side would never be polled again).
    if (p.Empty()) p.off = p.len = 0;
  }
  if (p.Empty() && p.eof && !p.shut) {
    shutdown(to, SHUT_WR);
    p.shut = true;
  }
  return true;
}

void Step(Connection& c, short client_ev, short upstream_ev) {
  if (c.connecting) {
    if (!(upstream_ev & (POLLOUT | POLLERR | POLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return CloseConnection(c, true);
    c.connecting = false;
  }
  // A reset on either side ends both (and polling a socket in error would spin).
  if ((client_ev | upstream_ev) & POLLERR) return CloseConnection(c, true);
  bool ok = true;
  if (client_ev & (POLLIN | POLLHUP | POLLERR)) ok = ok && Fill(c.client, c.up);
  if (upstream_ev & (POLLIN | POLLHUP | POLLERR)) ok = ok && Fill(c.upstream, c.down);
  ok = ok && Drain(c.upstream, c.up) && Drain(c.client, c.down);
  if (!ok) return CloseConnection(c, true);
  if (c.up.shut && c.down.shut) CloseConnection(c, false);
}

short ClientEvents(const Connection& c) {
  if (c.connecting) return 0;
  return static_cast<short>(((!c.up.eof && !c.up.Full()) ? POLLIN : 0) | (!c.down.Empty() ? POLLOUT : 0));
}

short UpstreamEvents(const Connection& c) {
  if (c.connecting) return POLLOUT;
  return static_cast<short>(((!c.down.eof && !c.down.Full()) ? POLLIN : 0) | (!c.up.Empty() ? POLLOUT : 0));
}

bool SameClient(const sockaddr_in& a, const sockaddr_in& b) { return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port; }

// A datagram from a host client: to the container through the client's own socket inside.
void FromHostUdp(const Listener& l, std::vector<Flow>& flows, char* buf, time_t now) {
  for (int i = 0; i < 64; i++) {
    sockaddr_in from{};
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(l.fd, buf, kBuffer, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < 0) return;
    Flow* flow = nullptr;
    for (Flow& f : flows)
      if (f.listener == &l && SameClient(f.client, from)) flow = &f;
    if (!flow) {
      if (flows.size() >= kMaxFlows) continue;
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      if (connect(fd, reinterpret_cast<const sockaddr*>(&l.target), sizeof(l.target)) != 0) {
        close(fd);
        continue;
      }
      flows.push_back(Flow{fd, from, &l, now});
      flow = &flows.back();
    }
    flow->last = now;
    send(flow->fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
  }
}

// Replies of the container: back to the client from the published socket.
void FromContainerUdp(Flow& f, char* buf, time_t now) {
  for (int i = 0; i < 64; i++) {
    ssize_t n = recv(f.fd, buf, kBuffer, 0);
    if (n < 0) return;
    f.last = now;
    sendto(f.listener->fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&f.client), sizeof(f.client));
  }
}

time_t Now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

[[noreturn]] void Serve(const std::vector<Listener>& listeners) {
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<Flow> flows;
  std::vector<char> udp_buf(kBuffer);
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({STDIN_FILENO, POLLIN, 0});
    for (const Listener& l : listeners) fds.push_back({l.fd, POLLIN, 0});
    for (const Flow& f : flows) fds.push_back({f.fd, POLLIN, 0});
    for (const auto& c : conns) {
      fds.push_back({c->client, ClientEvents(*c), 0});
      fds.push_back({c->upstream, UpstreamEvents(*c), 0});
    }
    const size_t polled_flows = flows.size();
    const size_t polled_conns = conns.size();
    int r = poll(fds.data(), fds.size(), flows.empty() ? -1 : 1000);
    if (r < 0 && errno != EINTR) _exit(1);
    if (r < 0) continue;
    // stdin: the owner ends us by closing it (or dies, which closes it too).
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char b[64];
      ssize_t n = read(STDIN_FILENO, b, sizeof(b));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) _exit(0);
    }
    time_t now = Now();
    size_t at = 1;
    for (const Listener& l : listeners) {
      short ev = fds[at++].revents;
      if (!ev) continue;
      if (l.udp) FromHostUdp(l, flows, udp_buf.data(), now);
      else Accept(l, conns);
    }
    // Flows and connections polled this round come first in their vectors, in fds order:
    // those Accept/FromHostUdp appended just now have no entry yet.
    for (size_t i = 0; i < polled_flows; i++) {
      if (fds[at + i].revents) FromContainerUdp(flows[i], udp_buf.data(), now);
    }
    at += polled_flows;
    for (size_t i = 0; i < polled_conns; i++) Step(*conns[i], fds[at + 2 * i].revents, fds[at + 2 * i + 1].revents);
    for (size_t i = 0; i < conns.size();) {
      if (conns[i]->dead) {
        conns[i] = std::move(conns.back());
        conns.pop_back();
      } else {
        i++;
      }
    }
    for (size_t i = 0; i < flows.size();) {
      if (now - flows[i].last > kFlowIdleSeconds) {
        close(flows[i].fd);
        flows[i] = flows.back();
        flows.pop_back();
      } else {
        i++;
      }
    }
  }
}

}  // namespace

int RunPortForward(int argc, char** argv) {
  long parent = 0;
  in_addr target{};
  if (argc < 3 || !ParseNumber(argv[0], 0x7fffffff, &parent) || parent <= 1 || inet_pton(AF_INET, argv[1], &target) != 1) {
    fputs("usage: berth-helper port-forward PARENT_PID TARGET_IP tcp|udp:HOST_IP:HOST_PORT:CONTAINER_PORT...   (user namespace on fd 3, network namespace on fd 4)\n", stderr);
    return 125;
  }
  signal(SIGPIPE, SIG_IGN);
  if (chdir("/") != 0) return 125;
  // The host sockets first: made in the namespaces we were started in (the owner's), they
  // stay there when we move.
  std::vector<Listener> listeners;
  for (int i = 2; i < argc; i++) listeners.push_back(Bind(argv[i], target));
  // Single-threaded, and the user namespace is our own user's: setns() lets us in, and then
  // into the network namespace it owns.
  if (setns(kUsernsFd, CLONE_NEWUSER) != 0) Fail(errno, "setns", "user-namespace");
  if (setns(kNetnsFd, CLONE_NEWNET) != 0) Fail(errno, "setns", "network-namespace");
  close(kUsernsFd);
  close(kNetnsFd);
  // After setns: the credential change cleared the parent-death signal.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != static_cast<pid_t>(parent)) Fail(ESRCH, "getppid", "owner");
  std::string ready = "ready";
  for (const Listener& l : listeners) ready += " " + std::to_string(BoundPort(l.fd));
  Say(ready);
  Serve(listeners);
}

}  // namespace berth
