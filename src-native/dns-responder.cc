#include "dns-responder.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dns-message.h"
#include "dns-protocol.h"

namespace berth {
namespace {

// Bounds (docs/design/networks.md § DNS, "what a hostile member can do").
constexpr int kQueriesPerTurn = 16;       // per member socket per loop turn: a flood waits its turn
constexpr int kForwardsPerMember = 16;
constexpr size_t kForwardsTotal = 256;
constexpr int kForwardTimeoutMs = 3000;
constexpr size_t kNameFileMax = 4096;
constexpr size_t kMaxMembers = 8192;
// DNS over TCP (RFC 7766): what a client uses when a UDP answer came back truncated.
constexpr int kTcpPerMember = 4;        // connections open at once per member; more are closed at accept
constexpr size_t kTcpTotal = 256;
constexpr uint64_t kTcpIdleMs = 10000;  // a connection with nothing to read or write for this long is closed
constexpr size_t kTcpPending = 256 * 1024;  // answers not yet read by the client: beyond, the client is dropped
constexpr size_t kDnsTcpLimit = 65535;  // a TCP message's length prefix is 16 bits

enum Kind : uint32_t { kControl = 1, kInotify, kUpstream, kMemberUdp, kMemberPidfd, kMemberTcp, kTcpConn };

uint64_t Tag(Kind k, int fd) { return (static_cast<uint64_t>(k) << 32) | static_cast<uint32_t>(fd); }

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

struct NameEntry {
  uint32_t ip = 0;  // host byte order
  std::vector<std::string> names;
};

// The names of one network: one entry per member file, indexed by name and by address so a
// lookup costs O(1) whatever the size of the network.
struct Table {
  std::string id;
  std::string domain;  // the network's name: "web.<domain>" resolves too
  std::string dir;
  int wd = -1;
  std::unordered_map<std::string, NameEntry> entries;
  std::unordered_multimap<std::string, std::string> by_name;
  std::unordered_multimap<uint32_t, std::string> by_ip;

  void Drop(const std::string& cid) {
    auto it = entries.find(cid);
    if (it == entries.end()) return;
    for (const auto& n : it->second.names) {
      auto range = by_name.equal_range(n);
      for (auto j = range.first; j != range.second; ++j) {
        if (j->second == cid) {
          by_name.erase(j);
          break;
        }
      }
    }
    auto range = by_ip.equal_range(it->second.ip);
    for (auto j = range.first; j != range.second; ++j) {
      if (j->second == cid) {
        by_ip.erase(j);
        break;
      }
    }
    entries.erase(it);
  }

  // `<dir>/<container id>`: the address on the first line, then one name per line.
  void Load(const std::string& cid) {
    Drop(cid);
    std::string path = dir + "/" + cid;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return;
    char buf[kNameFileMax];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n <= 0) return;
    NameEntry e;
    size_t start = 0, line = 0;
    for (size_t i = 0; i <= static_cast<size_t>(n); ++i) {
      if (i < static_cast<size_t>(n) && buf[i] != '\n') continue;
      std::string text(buf + start, i - start);
      start = i + 1;
      if (text.empty()) continue;
      if (line++ == 0) {
        in_addr a;
        if (inet_pton(AF_INET, text.c_str(), &a) != 1) return;
        e.ip = ntohl(a.s_addr);
        continue;
      }
      for (auto& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      e.names.push_back(std::move(text));
    }
    if (line == 0) return;
    for (const auto& nm : e.names) by_name.emplace(nm, cid);
    by_ip.emplace(e.ip, cid);
    entries.emplace(cid, std::move(e));
  }

  void LoadAll() {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    while (dirent* ent = readdir(d)) {
      if (ent->d_name[0] == '.') continue;
      Load(ent->d_name);
    }
    closedir(d);
  }
};

struct Member {
  std::string id;
  int udp = -1;
  int pidfd = -1;
  int tcp = -1;  // listening on 127.0.0.11:53 (TCP); -1 from a launcher that sent none
  int conns = 0;
  std::vector<Table*> tables;
  bool forward = false;
  std::vector<uint32_t> upstreams;  // network byte order; empty: the host's resolv.conf
  int inflight = 0;
};

// Who asked: a UDP client address, or a TCP connection (by fd, with a serial number so that
// an answer never reaches a later connection that got the same fd).
struct Client {
  sockaddr_in addr{};
  int tcp = -1;
  uint64_t serial = 0;
};

struct TcpConn {
  int member_udp = -1;
  uint64_t serial = 0;
  std::vector<uint8_t> in;
  std::string out;
  uint64_t deadline = 0;
};

struct Forward {
  int member_udp = -1;
  Client client;
  DnsQuery query;  // with the client's id
  uint32_t upstream = 0;
  uint64_t deadline = 0;
};

bool IsPrivate(uint32_t ip) {
  return (ip >> 24) == 10 || (ip >> 20) == ((172u << 4) | 1) || (ip >> 16) == ((192u << 8) | 168);
}

class Responder {
 public:
  Responder(std::string state_dir, std::string network_id, std::string control)
      : state_dir_(std::move(state_dir)), network_id_(std::move(network_id)), control_(std::move(control)) {}

  int Run();

 private:
  Table* TableFor(const std::string& id, const std::string& domain);
  void Accept();
  void AddMember(int conn);
  void UpdateMember(int conn, char* text);
  void RemoveMember(int udp);
  void ServeMember(int udp);
  void Answer(Member& m, const uint8_t* p, size_t n, const Client& from);
  void ForwardQuery(Member& m, const DnsQuery& q, const uint8_t* p, size_t n, const Client& from);
  void AcceptTcp(int listener);
  void ReadTcp(int fd);
  void FlushTcp(int fd, TcpConn& c);
  void CloseTcp(int fd);
  void ExpireTcp(uint64_t now);
  void UpstreamReply();
  void ExpireForwards(uint64_t now);
  void Inotify();
  bool ShouldExit();
  std::vector<uint32_t> HostUpstreams();
  void Send(int udp, const Client& to, const uint8_t* p, size_t n);

  std::string state_dir_, network_id_, control_;
  int epoll_ = -1, control_fd_ = -1, inotify_ = -1, upstream_ = -1;
  std::unordered_map<std::string, std::unique_ptr<Table>> tables_;
  std::unordered_map<int, Table*> by_wd_;
  std::unordered_map<int, Member> members_;      // by udp fd
  std::unordered_map<int, int> pidfd_to_udp_;
  std::unordered_map<int, int> tcp_to_udp_;         // listening socket → member
  std::unordered_map<int, TcpConn> conns_;          // by fd
  std::unordered_set<int> tcp_pending_;
  size_t max_members_ = kMaxMembers;             // connections with complete queries left over
  uint64_t next_serial_ = 1;
  std::vector<uint8_t> answer_ = std::vector<uint8_t>(kDnsTcpLimit);
  std::unordered_map<uint16_t, Forward> forwards_;  // by the id sent upstream
  Table* own_ = nullptr;
  std::vector<uint32_t> host_upstreams_;
  timespec host_resolv_mtime_{};
};

Table* Responder::TableFor(const std::string& id, const std::string& domain) {
  auto it = tables_.find(id);
  if (it != tables_.end()) {
    if (!domain.empty()) it->second->domain = domain;
    return it->second.get();
  }
  auto t = std::make_unique<Table>();
  t->id = id;
  t->domain = domain;
  t->dir = state_dir_ + "/networks/" + id + ".dns";
  // Watched before the first read: an entry written in between is seen by one or the other.
  t->wd = inotify_add_watch(inotify_, t->dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_ONLYDIR);
  if (t->wd >= 0) by_wd_[t->wd] = t.get();
  t->LoadAll();
  Table* raw = t.get();
  tables_.emplace(id, std::move(t));
  return raw;
}

void Responder::Inotify() {
  alignas(inotify_event) char buf[16384];
  for (;;) {
    ssize_t n = read(inotify_, buf, sizeof(buf));
    if (n <= 0) return;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        // Events were lost: the one case that rereads everything.
        for (auto& [id, t] : tables_) {
          t->entries.clear();
          t->by_name.clear();
          t->by_ip.clear();
          t->LoadAll();
        }
        continue;
      }
      auto it = by_wd_.find(ev->wd);
      if (it == by_wd_.end()) continue;
      Table* t = it->second;
      if (ev->mask & (IN_DELETE_SELF | IN_IGNORED)) {
        t->entries.clear();
        t->by_name.clear();
        t->by_ip.clear();
        by_wd_.erase(it);
        t->wd = -1;
        continue;
      }
      if (ev->len == 0 || ev->name[0] == '.') continue;
      if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) t->Drop(ev->name);
      else t->Load(ev->name);
    }
  }
}

std::vector<uint32_t> Responder::HostUpstreams() {
  struct stat st;
  if (stat("/etc/resolv.conf", &st) != 0) return {};
  if (st.st_mtim.tv_sec == host_resolv_mtime_.tv_sec && st.st_mtim.tv_nsec == host_resolv_mtime_.tv_nsec) return host_upstreams_;
  host_resolv_mtime_ = st.st_mtim;
  host_upstreams_.clear();
  FILE* f = fopen("/etc/resolv.conf", "re");
  if (!f) return {};
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    char addr[64];
    in_addr a;
    // The resolver lives in the host's namespace: a loopback name server (systemd-resolved,
    // dnsmasq) works here, unlike inside a container.
    if (sscanf(line, " nameserver %63s", addr) == 1 && inet_pton(AF_INET, addr, &a) == 1) host_upstreams_.push_back(a.s_addr);
  }
  fclose(f);
  return host_upstreams_;
}

void Responder::Accept() {
  for (;;) {
    int conn = accept4(control_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return;
    AddMember(conn);
    close(conn);
    // One hand-over per turn: accept4 is blocking and only the listener's readiness got us here.
    return;
  }
}

void Responder::AddMember(int conn) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  // The socket name is abstract (no file permissions): only our own user may hand members over.
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) return;
  timeval tv{1, 0};
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char text[kDnsHandOverMax + 1];
  iovec iov{text, kDnsHandOverMax};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kDnsHandOverFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  int fds[kDnsHandOverFds] = {-1, -1, -1};
  int nfds = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (nfds < kDnsHandOverFds) fds[nfds++] = fd;
      else close(fd);
    }
  }
  auto reject = [&]() {
    for (int i = 0; i < nfds; ++i) close(fds[i]);
  };
  if (n > 0 && nfds == 0 && !(msg.msg_flags & MSG_TRUNC)) {
    text[n] = '\0';
    return UpdateMember(conn, text);
  }
  // Two descriptors from a launcher of a berth without TCP; three with it.
  if (n <= 0 || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfds < 2 || members_.size() >= max_members_) return reject();
  // Only a UDP socket on 127.0.0.11:53 is served: that is what the hand-over promises.
  sockaddr_in bound{};
  socklen_t blen = sizeof(bound);
  int type = 0;
  socklen_t tlen = sizeof(type);
  if (getsockname(fds[0], reinterpret_cast<sockaddr*>(&bound), &blen) != 0 || bound.sin_family != AF_INET ||
      ntohs(bound.sin_port) != kDnsListenPort || getsockopt(fds[0], SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_DGRAM) {
    return reject();
  }
  if (nfds == 3) {
    int listening = 0;
    socklen_t llen = sizeof(listening);
    blen = sizeof(bound);
    tlen = sizeof(type);
    if (getsockname(fds[2], reinterpret_cast<sockaddr*>(&bound), &blen) != 0 || bound.sin_family != AF_INET ||
        ntohs(bound.sin_port) != kDnsListenPort || getsockopt(fds[2], SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM ||
        getsockopt(fds[2], SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) != 0 || !listening) {
      return reject();
    }
  }
  text[n] = '\0';
  Member m;
  m.udp = fds[0];
  m.pidfd = fds[1];
  m.tcp = fds[2];
  for (char* line = strtok(text, "\n"); line; line = strtok(nullptr, "\n")) {
    char a[128], b[256];
    if (sscanf(line, "member %127s", a) == 1) m.id = a;
    else if (sscanf(line, "net %127s %255s", a, b) == 2) m.tables.push_back(TableFor(a, b));
    else if (sscanf(line, "forward %1s", a) == 1) m.forward = a[0] == '1';
    else if (sscanf(line, "upstream %63s", a) == 1) {
      in_addr ip;
      if (inet_pton(AF_INET, a, &ip) == 1) m.upstreams.push_back(ip.s_addr);
    }
  }
  if (m.id.empty() || m.tables.empty()) return reject();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Tag(kMemberUdp, m.udp);
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, m.udp, &ev) != 0) return reject();
  ev.data.u64 = Tag(kMemberPidfd, m.pidfd);
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, m.pidfd, &ev) != 0) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, m.udp, nullptr);
    return reject();
  }
  if (m.tcp >= 0) {
    ev.data.u64 = Tag(kMemberTcp, m.tcp);
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, m.tcp, &ev) != 0) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, m.udp, nullptr);
      epoll_ctl(epoll_, EPOLL_CTL_DEL, m.pidfd, nullptr);
      return reject();
    }
    fcntl(m.tcp, F_SETFL, fcntl(m.tcp, F_GETFL) | O_NONBLOCK);
    tcp_to_udp_[m.tcp] = m.udp;
  }
  int flags = fcntl(m.udp, F_GETFL);
  fcntl(m.udp, F_SETFL, flags | O_NONBLOCK);
  pidfd_to_udp_[m.pidfd] = m.udp;
  members_.emplace(m.udp, std::move(m));
  char ok = 'k';
  send(conn, &ok, 1, MSG_NOSIGNAL);
}

// A running member connected to or disconnected from a network: its tables become the
// networks the message lists (dns-protocol.h), so its own lookups follow its networks.
void Responder::UpdateMember(int conn, char* text) {
  std::string id;
  std::vector<std::pair<std::string, std::string>> nets;
  bool forward = false;
  for (char* line = strtok(text, "\n"); line; line = strtok(nullptr, "\n")) {
    char a[128], b[256];
    if (sscanf(line, "update %127s", a) == 1) id = a;
    else if (sscanf(line, "net %127s %255s", a, b) == 2) nets.emplace_back(a, b);
    else if (sscanf(line, "forward %1s", a) == 1) forward = a[0] == '1';
  }
  Member* found = nullptr;
  if (!id.empty()) {
    for (auto& [udp, m] : members_) {
      if (m.id == id) {
        found = &m;
        break;
      }
    }
  }
  char answer = 'n';
  if (found && nets.size() <= 64) {
    found->tables.clear();
    for (const auto& [net, name] : nets) found->tables.push_back(TableFor(net, name));
    found->forward = forward;
    answer = 'k';
  }
  send(conn, &answer, 1, MSG_NOSIGNAL);
}

void Responder::RemoveMember(int udp) {
  auto it = members_.find(udp);
  if (it == members_.end()) return;
  for (auto f = forwards_.begin(); f != forwards_.end();) {
    if (f->second.member_udp == udp) f = forwards_.erase(f);
    else ++f;
  }
  for (auto c = conns_.begin(); c != conns_.end();) {
    int fd = c->first;
    ++c;
    if (conns_[fd].member_udp == udp) CloseTcp(fd);
  }
  if (it->second.tcp >= 0) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, it->second.tcp, nullptr);
    tcp_to_udp_.erase(it->second.tcp);
    close(it->second.tcp);
  }
  epoll_ctl(epoll_, EPOLL_CTL_DEL, it->second.udp, nullptr);
  epoll_ctl(epoll_, EPOLL_CTL_DEL, it->second.pidfd, nullptr);
  pidfd_to_udp_.erase(it->second.pidfd);
  close(it->second.udp);
  close(it->second.pidfd);
  members_.erase(it);
}

void Responder::Send(int udp, const Client& to, const uint8_t* p, size_t n) {
  if (n == 0) return;
  if (to.tcp < 0) {
    sendto(udp, p, n, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&to.addr), sizeof(to.addr));
    return;
  }
  auto it = conns_.find(to.tcp);
  if (it == conns_.end() || it->second.serial != to.serial || n > kDnsTcpLimit) return;
  TcpConn& c = it->second;
  if (c.out.size() + 2 + n > kTcpPending) return CloseTcp(to.tcp);  // a client that does not read
  c.out.push_back(static_cast<char>(n >> 8));
  c.out.push_back(static_cast<char>(n & 0xFF));
  c.out.append(reinterpret_cast<const char*>(p), n);
  FlushTcp(to.tcp, c);
}

void Responder::AcceptTcp(int listener) {
  auto owner = tcp_to_udp_.find(listener);
  if (owner == tcp_to_udp_.end()) return;
  auto m = members_.find(owner->second);
  if (m == members_.end()) return;
  for (int i = 0; i < kQueriesPerTurn; ++i) {
    int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (m->second.conns >= kTcpPerMember || conns_.size() >= kTcpTotal) {
      close(fd);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = Tag(kTcpConn, fd);
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    TcpConn c;
    c.member_udp = m->first;
    c.serial = next_serial_++;
    c.deadline = NowMs() + kTcpIdleMs;
    conns_.emplace(fd, std::move(c));
    ++m->second.conns;
  }
}

// Answers at most kQueriesPerTurn queries of one connection per loop turn, as for a UDP
// socket: many small messages in one segment must not buy a client more than its share. A
// connection left with complete messages is revisited next turn (`tcp_pending_`), and reads
// stop while a whole message's worth waits unanswered, so its buffer stays bounded.
void Responder::ReadTcp(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  auto m = members_.find(it->second.member_udp);
  if (m == members_.end()) return CloseTcp(fd);
  const uint64_t serial = it->second.serial;
  int budget = kQueriesPerTurn;
  size_t at = 0;
  // Complete messages of `in` from `at`, while the budget lasts. False: the connection closed.
  auto answer = [&]() -> bool {
    for (;;) {
      TcpConn& c = conns_[fd];
      if (budget == 0 || c.in.size() - at < 2) return true;
      size_t len = (static_cast<size_t>(c.in[at]) << 8) | c.in[at + 1];
      if (len == 0) {
        CloseTcp(fd);
        return false;
      }
      if (c.in.size() - at - 2 < len) return true;
      std::vector<uint8_t> query(c.in.begin() + static_cast<long>(at + 2), c.in.begin() + static_cast<long>(at + 2 + len));
      at += 2 + len;
      --budget;
      Client from;
      from.tcp = fd;
      from.serial = serial;
      Answer(m->second, query.data(), query.size(), from);
      auto again = conns_.find(fd);
      if (again == conns_.end() || again->second.serial != serial) return false;  // closed while answering
    }
  };
  if (!answer()) return;
  uint8_t buf[4096];
  for (int i = 0; i < kQueriesPerTurn && budget > 0; ++i) {
    if (conns_[fd].in.size() - at > 2 + kDnsTcpLimit) break;  // a message's worth waits already
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n == 0) return CloseTcp(fd);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      return CloseTcp(fd);
    }
    TcpConn& c = conns_[fd];
    c.in.insert(c.in.end(), buf, buf + n);
    c.deadline = NowMs() + kTcpIdleMs;
    if (!answer()) return;
    if (static_cast<size_t>(n) < sizeof(buf)) break;
  }
  TcpConn& c = conns_[fd];
  c.in.erase(c.in.begin(), c.in.begin() + static_cast<long>(at));
  bool more = c.in.size() >= 2 && c.in.size() - 2 >= ((static_cast<size_t>(c.in[0]) << 8) | c.in[1]);
  if (more) tcp_pending_.insert(fd);
  else tcp_pending_.erase(fd);
}

void Responder::FlushTcp(int fd, TcpConn& c) {
  while (!c.out.empty()) {
    ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) break;
      return CloseTcp(fd);
    }
    c.out.erase(0, static_cast<size_t>(n));
    c.deadline = NowMs() + kTcpIdleMs;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (c.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
  ev.data.u64 = Tag(kTcpConn, fd);
  epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
}

void Responder::CloseTcp(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  auto m = members_.find(it->second.member_udp);
  if (m != members_.end()) --m->second.conns;
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  conns_.erase(it);
  tcp_pending_.erase(fd);
}

void Responder::ExpireTcp(uint64_t now) {
  std::vector<int> idle;
  for (const auto& [fd, c] : conns_) if (c.deadline <= now) idle.push_back(fd);
  for (int fd : idle) CloseTcp(fd);
}

void Responder::ServeMember(int udp) {
  auto it = members_.find(udp);
  if (it == members_.end()) return;
  uint8_t buf[kDnsHandOverMax];
  for (int i = 0; i < kQueriesPerTurn; ++i) {
    sockaddr_in from{};
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(udp, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < 0) return;
    if (static_cast<size_t>(n) > sizeof(buf) || from.sin_family != AF_INET) continue;
    Client c;
    c.addr = from;
    Answer(it->second, buf, static_cast<size_t>(n), c);
  }
}

void Responder::Answer(Member& m, const uint8_t* p, size_t n, const Client& from) {
  DnsQuery q;
  // Over TCP an answer may be as long as the length prefix allows; over UDP, 512 bytes and TC.
  uint8_t* out = answer_.data();
  const size_t cap = from.tcp >= 0 ? kDnsTcpLimit : kDnsUdpLimit;
  size_t len = 0;
  switch (ParseQuery(p, n, &q)) {
    case DnsParse::kShort:
    case DnsParse::kNotQuery:
      return;
    case DnsParse::kNotImplemented:
      len = BuildHeaderError(q.id, q.flags, kRcodeNotImp, out, cap);
      return Send(m.udp, from, out, len);
    case DnsParse::kMalformed:
      len = BuildHeaderError(q.id, q.flags, kRcodeFormErr, out, cap);
      return Send(m.udp, from, out, len);
    case DnsParse::kOk:
      break;
  }
  std::vector<uint32_t> addresses;
  std::string ptr;
  bool ours = false;  // the name is in a zone berth answers for: never forwarded
  if (q.qclass == kDnsClassIn) {
    uint32_t ip;
    if (q.qtype == kDnsTypePtr && ReverseNameToIpv4(q.name, &ip)) {
      for (Table* t : m.tables) {
        auto e = t->by_ip.find(ip);
        if (e != t->by_ip.end()) {
          const NameEntry& entry = t->entries.at(e->second);
          if (!entry.names.empty()) ptr = entry.names.front() + "." + t->domain;
          break;
        }
      }
      // RFC 6303: reverse zones of private addresses are answered locally, never leaked upstream.
      ours = !ptr.empty() || IsPrivate(ip);
    } else {
      for (Table* t : m.tables) {
        std::string key = q.name;
        const std::string suffix = "." + t->domain;
        if (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
          key.resize(key.size() - suffix.size());
          ours = true;
        }
        auto range = t->by_name.equal_range(key);
        for (auto e = range.first; e != range.second; ++e) {
          ours = true;
          uint32_t a = t->entries.at(e->second).ip;
          bool dup = false;
          for (uint32_t x : addresses) dup = dup || x == a;
          if (!dup) addresses.push_back(a);
        }
      }
      // A single label is nobody's global name: NXDOMAIN here rather than a trip upstream.
      if (q.name.find('.') == std::string::npos) ours = true;
    }
  }
  if (!ours) return ForwardQuery(m, q, p, n, from);
  bool found = !addresses.empty() || !ptr.empty();
  if (q.qtype != kDnsTypeA && q.qtype != 255 && q.qtype != kDnsTypePtr) addresses.clear();  // AAAA etc.: no data
  len = BuildAnswer(q, found ? kRcodeOk : kRcodeNxDomain, addresses, ptr, out, cap);
  Send(m.udp, from, out, len);
}

void Responder::ForwardQuery(Member& m, const DnsQuery& q, const uint8_t* p, size_t n, const Client& from) {
  uint8_t out[kDnsUdpLimit];
  // An internal network has no egress, and DNS must not become one.
  if (!m.forward) return Send(m.udp, from, out, BuildAnswer(q, kRcodeRefused, {}, "", out, sizeof(out)));
  std::vector<uint32_t> ups = m.upstreams.empty() ? HostUpstreams() : m.upstreams;
  if (ups.empty() || m.inflight >= kForwardsPerMember || forwards_.size() >= kForwardsTotal) {
    return Send(m.udp, from, out, BuildAnswer(q, kRcodeServFail, {}, "", out, sizeof(out)));
  }
  uint16_t id = 0;
  for (int tries = 0; tries < 8; ++tries) {
    if (getrandom(&id, sizeof(id), 0) != sizeof(id)) return;
    if (!forwards_.count(id)) break;
    if (tries == 7) return Send(m.udp, from, out, BuildAnswer(q, kRcodeServFail, {}, "", out, sizeof(out)));
  }
  std::vector<uint8_t> copy(p, p + n);
  copy[0] = static_cast<uint8_t>(id >> 8);
  copy[1] = static_cast<uint8_t>(id);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  to.sin_addr.s_addr = ups.front();
  if (sendto(upstream_, copy.data(), copy.size(), MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
    return Send(m.udp, from, out, BuildAnswer(q, kRcodeServFail, {}, "", out, sizeof(out)));
  }
  Forward f;
  f.member_udp = m.udp;
  f.client = from;
  f.query = q;
  f.upstream = ups.front();
  f.deadline = NowMs() + kForwardTimeoutMs;
  forwards_.emplace(id, std::move(f));
  ++m.inflight;
}

void Responder::UpstreamReply() {
  uint8_t buf[4096];
  for (int i = 0; i < 64; ++i) {
    sockaddr_in from{};
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(upstream_, buf, sizeof(buf), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n < 12) {
      if (n < 0) return;
      continue;
    }
    uint16_t id = static_cast<uint16_t>((buf[0] << 8) | buf[1]);
    auto it = forwards_.find(id);
    if (it == forwards_.end()) continue;
    Forward& f = it->second;
    // A reply counts only from the server asked, for the question asked, under the random id.
    if (from.sin_addr.s_addr != f.upstream || from.sin_port != htons(53) || !ReplyMatches(buf, static_cast<size_t>(n), id, f.query)) continue;
    buf[0] = static_cast<uint8_t>(f.query.id >> 8);
    buf[1] = static_cast<uint8_t>(f.query.id);
    auto m = members_.find(f.member_udp);
    if (m != members_.end()) {
      Send(m->second.udp, f.client, buf, static_cast<size_t>(n));
      --m->second.inflight;
    }
    forwards_.erase(it);
  }
}

void Responder::ExpireForwards(uint64_t now) {
  uint8_t out[kDnsUdpLimit];
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto m = members_.find(it->second.member_udp);
    if (m != members_.end()) {
      Send(m->second.udp, it->second.client, out, BuildAnswer(it->second.query, kRcodeServFail, {}, "", out, sizeof(out)));
      --m->second.inflight;
    }
    it = forwards_.erase(it);
  }
}

// No members and no name files: the network is empty. Decided under the networks lock, which
// a launch holds while it writes its name file and checks that the resolver runs, so a launch
// never hands its socket to a resolver that is on its way out.
bool Responder::ShouldExit() {
  if (!members_.empty() || !own_->entries.empty()) return false;
  std::string lock_path = state_dir_ + "/locks/networks.lock";
  int lock = open(lock_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (lock < 0) return true;
  if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
    close(lock);
    return false;
  }
  Inotify();
  own_->entries.clear();
  own_->by_name.clear();
  own_->by_ip.clear();
  own_->LoadAll();
  if (!own_->entries.empty()) {
    close(lock);
    return false;
  }
  close(control_fd_);  // new launches now find no resolver and start one
  unlink((state_dir_ + "/networks/" + network_id_ + ".dns.pid").c_str());
  close(lock);
  return true;
}

int Responder::Run() {
  signal(SIGPIPE, SIG_IGN);
  // Each member holds three descriptors here (UDP, pidfd, TCP listener): take the hard limit,
  // and refuse members beyond what it allows, rather than meet EMFILE in the middle of a
  // hand-over (its descriptors would be cut off, MSG_CTRUNC).
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
      getrlimit(RLIMIT_NOFILE, &nofile);
    }
    const rlim_t reserve = 64 + kTcpTotal;  // epoll, inotify, control, upstream, connections
    size_t fit = nofile.rlim_cur > reserve ? static_cast<size_t>((nofile.rlim_cur - reserve) / 3) : 0;
    if (fit < max_members_) max_members_ = fit;
  }
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  upstream_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  control_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (epoll_ < 0 || inotify_ < 0 || upstream_ < 0 || control_fd_ < 0) {
    fprintf(stderr, "berth dns: setup: %s\n", strerror(errno));
    return 1;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (control_.size() + 1 > sizeof(addr.sun_path)) return 1;
  memcpy(addr.sun_path + 1, control_.data(), control_.size());  // abstract: sun_path[0] == 0
  socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + control_.size());
  if (bind(control_fd_, reinterpret_cast<sockaddr*>(&addr), alen) != 0 || listen(control_fd_, 128) != 0) {
    // Another resolver of this network already listens: it serves the launches.
    printf(errno == EADDRINUSE ? "running\n" : "error\n");
    fflush(stdout);
    return errno == EADDRINUSE ? 0 : 1;
  }
  own_ = TableFor(network_id_, "");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Tag(kControl, control_fd_);
  epoll_ctl(epoll_, EPOLL_CTL_ADD, control_fd_, &ev);
  ev.data.u64 = Tag(kInotify, inotify_);
  epoll_ctl(epoll_, EPOLL_CTL_ADD, inotify_, &ev);
  ev.data.u64 = Tag(kUpstream, upstream_);
  epoll_ctl(epoll_, EPOLL_CTL_ADD, upstream_, &ev);
  printf("ready\n");
  fflush(stdout);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDOUT_FILENO);
    close(null);
  }
  uint64_t idle_since = NowMs();
  for (;;) {
    epoll_event events[64];
    int n = epoll_wait(epoll_, events, 64, tcp_pending_.empty() ? 500 : 0);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; ++i) {
      Kind kind = static_cast<Kind>(events[i].data.u64 >> 32);
      int fd = static_cast<int>(events[i].data.u64 & 0xFFFFFFFF);
      switch (kind) {
        case kControl: Accept(); break;
        case kInotify: Inotify(); break;
        case kUpstream: UpstreamReply(); break;
        case kMemberUdp: ServeMember(fd); break;
        case kMemberTcp: AcceptTcp(fd); break;
        case kTcpConn: {
          auto c = conns_.find(fd);
          if (c == conns_.end()) break;
          if (events[i].events & (EPOLLERR | EPOLLHUP)) {
            CloseTcp(fd);
            break;
          }
          if (events[i].events & EPOLLOUT) FlushTcp(fd, c->second);
          if ((events[i].events & (EPOLLIN | EPOLLRDHUP)) && conns_.count(fd)) ReadTcp(fd);
          break;
        }
        case kMemberPidfd: {
          auto it = pidfd_to_udp_.find(fd);
          if (it != pidfd_to_udp_.end()) RemoveMember(it->second);
          break;
        }
      }
    }
    if (!tcp_pending_.empty()) {
      std::vector<int> pending(tcp_pending_.begin(), tcp_pending_.end());
      for (int fd : pending) ReadTcp(fd);
    }
    uint64_t now = NowMs();
    ExpireForwards(now);
    ExpireTcp(now);
    if (!members_.empty() || !own_->entries.empty()) idle_since = now;
    // A moment of grace: a launch that just wrote its name file may still be on its way.
    if (now - idle_since >= 200 && ShouldExit()) return 0;
  }
}

}  // namespace

int RunDnsResponder(const char* state_dir, const char* network_id, const char* control_name) {
  Responder r(state_dir, network_id, control_name);
  return r.Run();
}

}  // namespace berth
