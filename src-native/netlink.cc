#include "netlink.h"

#include "dns-handover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace berth {
namespace {

void SetError(NativeError* e, int err, const std::string& syscall, const std::string& path,
              const std::string& message = "") {
  e->err = err;
  e->syscall = syscall;
  e->path = path;
  e->message = message;
}

// One netlink request under construction. Attributes are appended at 4-byte alignment;
// nests are patched with their final length when closed. Offsets, not pointers, because the
// buffer may move while it grows.
class Msg {
 public:
  Msg(uint16_t type, uint16_t flags) : buf_(NLMSG_HDRLEN, 0) {
    auto* h = Header();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  }

  template <typename T>
  void Family(const T& header) {
    Append(&header, sizeof(header));
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    rtattr a{};
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    a.rta_type = type;
    Append(&a, sizeof(a));
    Append(data, len);
  }
  void Str(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof(v)); }
  void U8(uint16_t type, uint8_t v) { Attr(type, &v, sizeof(v)); }
  size_t Nest(uint16_t type) {
    size_t off = buf_.size();
    rtattr a{};
    a.rta_type = static_cast<unsigned short>(type | NLA_F_NESTED);
    Append(&a, sizeof(a));
    return off;
  }
  void End(size_t off) {
    auto* a = reinterpret_cast<rtattr*>(buf_.data() + off);
    a->rta_len = static_cast<unsigned short>(buf_.size() - off);
  }
  // A nested ifinfomsg (the veth peer) is written as raw bytes inside an attribute.
  template <typename T>
  void Raw(const T& v) {
    Append(&v, sizeof(v));
  }
  // Attributes copied verbatim from a kernel message.
  void Bytes(const char* data, size_t len) { Append(data, len); }

  nlmsghdr* Header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  const std::vector<char>& Finish(uint32_t seq) {
    Header()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    Header()->nlmsg_seq = seq;
    return buf_;
  }

 private:
  void Append(const void* data, size_t len) {
    const char* p = static_cast<const char*>(data);
    buf_.insert(buf_.end(), p, p + len);
    buf_.resize(NLMSG_ALIGN(buf_.size()), 0);
  }
  std::vector<char> buf_;
};

// What a request is about, for the error message: "netlink RTM_NEWLINK bv-1a2b…".
struct Request {
  Msg msg;
  const char* op;
  std::string subject;
};

std::string ExtAckMessage(const nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  // With NETLINK_CAP_ACK the original request is not echoed: TLVs follow the error header.
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  if (offset >= h->nlmsg_len) return "";
  const char* p = reinterpret_cast<const char*>(h) + offset;
  int len = static_cast<int>(h->nlmsg_len - offset);
  for (auto* a = reinterpret_cast<const rtattr*>(p); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == NLMSGERR_ATTR_MSG) {
      return std::string(static_cast<const char*>(RTA_DATA(a)), strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
    }
  }
  return "";
}

// A NETLINK_ROUTE socket. It stays in the network namespace it was created in, whatever
// namespace the thread that uses it is in later.
class Rtnl {
 public:
  Rtnl() = default;
  Rtnl(const Rtnl&) = delete;
  Rtnl& operator=(const Rtnl&) = delete;
  ~Rtnl() {
    if (fd_ >= 0) close(fd_);
  }

  bool Open(NativeError* e, int protocol = NETLINK_ROUTE) { return Adopt(Create(protocol), e); }

  // Creates the socket in the calling thread's namespace; -errno on failure.
  static int Create(int protocol = NETLINK_ROUTE) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) return -errno;
    int one = 1;
    // Error acks carry the kernel's own explanation ("Nexthop has invalid gateway") and not a
    // copy of our request.
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    sockaddr_nl local{};
    local.nl_family = AF_NETLINK;
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
      int err = errno;
      close(fd);
      return -err;
    }
    return fd;
  }

  bool Adopt(int fd, NativeError* e) {
    if (fd < 0) {
      SetError(e, -fd, "socket", "netlink");
      return false;
    }
    fd_ = fd;
    return true;
  }

  // Sends every request in one datagram (the kernel handles them in order) and collects one
  // ack each. The first failure wins; the kernel still ran the requests after it, which the
  // caller's cleanup (deleting the host end of a veth) undoes.
  bool Run(std::vector<Request>& requests, NativeError* e) {
    std::vector<char> batch;
    uint32_t first = seq_ + 1;
    for (auto& r : requests) {
      const auto& bytes = r.msg.Finish(++seq_);
      batch.insert(batch.end(), bytes.begin(), bytes.end());
    }
    if (!Send(batch, e)) return false;
    size_t pending = requests.size();
    bool ok = true;
    while (pending > 0) {
      if (!Receive([&](const nlmsghdr* h) {
            if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < first || h->nlmsg_seq > seq_) return;
            const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
            --pending;
            if (err->error != 0 && ok) {
              const Request& r = requests[h->nlmsg_seq - first];
              SetError(e, -err->error, std::string("netlink ") + r.op, r.subject, ExtAckMessage(h));
              ok = false;
            }
          },
          e)) {
        return false;
      }
    }
    return ok;
  }

  // One request whose answer is data (RTM_GET*): `on_message` sees every reply message.
  template <typename F>
  bool Query(Request& request, F&& on_message, NativeError* e) {
    const auto& bytes = request.msg.Finish(++seq_);
    const uint32_t seq = seq_;
    const bool dump = (request.msg.Header()->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    if (!Send(bytes, e)) return false;
    bool done = false;
    bool ok = true;
    while (!done) {
      if (!Receive([&](const nlmsghdr* h) {
            if (h->nlmsg_seq != seq || done) return;
            if (h->nlmsg_type == NLMSG_DONE) {
              done = true;
            } else if (h->nlmsg_type == NLMSG_ERROR) {
              const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
              if (err->error != 0) {
                SetError(e, -err->error, std::string("netlink ") + request.op, request.subject, ExtAckMessage(h));
                ok = false;
              }
              done = true;
            } else {
              on_message(h);
              if (!dump) done = true;
            }
          },
          e)) {
        return false;
      }
    }
    return ok;
  }

 private:
  bool Send(const std::vector<char>& bytes, NativeError* e) {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    for (;;) {
      ssize_t n = sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
      if (n < 0 && errno == EINTR) continue;
      if (n != static_cast<ssize_t>(bytes.size())) {
        SetError(e, n < 0 ? errno : EIO, "sendto", "NETLINK_ROUTE");
        return false;
      }
      return true;
    }
  }

  // Reads one datagram and hands each message in it to `on_message`.
  template <typename F>
  bool Receive(F&& on_message, NativeError* e) {
    // Dumps of links with statistics need room: 32 KiB holds several per datagram.
    alignas(nlmsghdr) static thread_local char buf[32768];
    ssize_t n;
    do {
      n = recv(fd_, buf, sizeof(buf), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      SetError(e, errno, "recv", "NETLINK_ROUTE");
      return false;
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(len)); h = NLMSG_NEXT(h, len)) {
      on_message(h);
    }
    return true;
  }

  int fd_ = -1;
  uint32_t seq_ = 0;
};

struct Cidr {
  int family = AF_UNSPEC;
  unsigned char addr[16] = {};
  int prefix = 0;
  size_t Size() const { return family == AF_INET ? 4 : 16; }
};

bool ParseAddress(const std::string& text, Cidr* out) {
  std::string host = text;
  int prefix = -1;
  size_t slash = text.find('/');
  if (slash != std::string::npos) {
    host = text.substr(0, slash);
    const std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) return false;
    prefix = atoi(p.c_str());
  }
  out->family = host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(out->family, host.c_str(), out->addr) != 1) return false;
  const int max = out->family == AF_INET ? 32 : 128;
  if (prefix < 0) prefix = max;
  if (prefix > max) return false;
  out->prefix = prefix;
  return true;
}

bool ParseMac(const std::string& text, unsigned char (&mac)[6]) {
  unsigned v[6];
  if (sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<unsigned char>(v[i]);
  return true;
}

Request AddressRequest(int ifindex, const Cidr& a, const std::string& text, uint16_t flags) {
  Request r{Msg(RTM_NEWADDR, static_cast<uint16_t>(NLM_F_ACK | NLM_F_CREATE | flags)), "RTM_NEWADDR", text};
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<unsigned char>(a.family);
  ifa.ifa_prefixlen = static_cast<unsigned char>(a.prefix);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(ifindex);
  // No duplicate address detection: IPAM already made the address unique, and DAD would keep
  // an IPv6 address "tentative" (unusable) for a second after the container starts.
  if (a.family == AF_INET6) ifa.ifa_flags = IFA_F_NODAD;
  r.msg.Family(ifa);
  r.msg.Attr(IFA_LOCAL, a.addr, a.Size());
  r.msg.Attr(IFA_ADDRESS, a.addr, a.Size());
  if (a.family == AF_INET && a.prefix < 31) {
    unsigned char brd[4];
    memcpy(brd, a.addr, 4);
    uint32_t host_bits = a.prefix == 0 ? 0xffffffffu : (0xffffffffu >> a.prefix);
    uint32_t v;
    memcpy(&v, brd, 4);
    v |= htonl(host_bits);
    memcpy(brd, &v, 4);
    r.msg.Attr(IFA_BROADCAST, brd, 4);
  }
  return r;
}

Request DefaultRoute(int ifindex, const Cidr& gw, const std::string& text) {
  Request r{Msg(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL), "RTM_NEWROUTE", "default via " + text};
  rtmsg rt{};
  rt.rtm_family = static_cast<unsigned char>(gw.family);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  r.msg.Family(rt);
  r.msg.Attr(RTA_GATEWAY, gw.addr, gw.Size());
  r.msg.U32(RTA_OIF, static_cast<uint32_t>(ifindex));
  return r;
}

// RTM_NEWLINK on an existing link, found by name.
Request ModifyLink(const std::string& name) {
  Request r{Msg(RTM_NEWLINK, NLM_F_ACK), "RTM_NEWLINK", name};
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  r.msg.Family(ifi);
  r.msg.Str(IFLA_IFNAME, name);
  return r;
}

// No IPv6 link-local address on berth's links: networks are IPv4, and each address would cost
// the kernel duplicate address detection, router solicitations and MLD reports for nothing
// (Docker disables IPv6 on non-IPv6 networks as well). Must come before the link goes up.
void NoIpv6LinkLocal(Msg& m) {
  size_t spec = m.Nest(IFLA_AF_SPEC);
  size_t inet6 = m.Nest(AF_INET6);
  m.U8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
  m.End(inet6);
  m.End(spec);
}

// Writes one sysctl of the calling thread's network namespace (/proc/sys/net resolves by the
// namespace of the opener). ENOENT passes: a kernel without IPv6 has no such file and nothing
// to defend.
bool WriteNetSysctl(const std::string& path, const char* value, NativeError* e) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    SetError(e, errno, "open", path);
    return false;
  }
  ssize_t len = static_cast<ssize_t>(strlen(value));
  ssize_t n;
  do {
    n = write(fd, value, static_cast<size_t>(len));
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : EIO;
  close(fd);
  if (n != len) {
    SetError(e, err, "write", path);
    return false;
  }
  return true;
}

// IPv6 off on a host-side link, before it first goes up: a router advertisement that a
// container sends to ff02::1 reaches the bridge, and with the kernel's defaults (accept_ra=1,
// autoconf=1; addr_gen_mode=none does not stop SLAAC) the host would configure an address and
// a default route from it (the CVE-2020-13401 class). accept_ra=0 ignores RAs; disable_ipv6=1
// (berth's networks are IPv4) drops every IPv6 packet addressed to the host on this link and
// removes any address an older berth let it gain. Bridged IPv6 between containers is not
// affected: that is layer 2.
bool Ipv6Off(const std::string& ifname, NativeError* e) {
  if (ifname.empty() || ifname == "." || ifname == ".." || ifname.find('/') != std::string::npos) {
    SetError(e, EINVAL, "sysctl", ifname, "not an interface name");
    return false;
  }
  const std::string dir = "/proc/sys/net/ipv6/conf/" + ifname + "/";
  return WriteNetSysctl(dir + "accept_ra", "0", e) && WriteNetSysctl(dir + "disable_ipv6", "1", e);
}

Request LinkUp(const std::string& name, int index) {
  Request r{Msg(RTM_NEWLINK, NLM_F_ACK), "RTM_NEWLINK", name};
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  r.msg.Family(ifi);
  if (index == 0) r.msg.Str(IFLA_IFNAME, name);
  return r;
}

// The index of `name` in the socket's namespace; 0 with *error set when absent.
int LinkIndex(Rtnl& rtnl, const std::string& name, NativeError* e) {
  Request r{Msg(RTM_GETLINK, 0), "RTM_GETLINK", name};
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  r.msg.Family(ifi);
  r.msg.Str(IFLA_IFNAME, name);
  r.msg.U32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  int index = 0;
  if (!rtnl.Query(r, [&](const nlmsghdr* h) {
        if (h->nlmsg_type == RTM_NEWLINK) index = static_cast<const ifinfomsg*>(NLMSG_DATA(h))->ifi_index;
      }, e)) {
    return 0;
  }
  if (index == 0) SetError(e, ENODEV, "netlink RTM_GETLINK", name);
  return index;
}

// The veth pair, the host end created inside `bridge`, the peer created inside the container's
// namespace under its final name: it never appears in the host's namespace. Both come up later.
Request CreateVeth(const NetInterface& nic, int bridge_index, int netns_fd) {
  Request r{Msg(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL), "RTM_NEWLINK", nic.host_ifname};
  ifinfomsg host{};
  host.ifi_family = AF_UNSPEC;
  r.msg.Family(host);
  r.msg.Str(IFLA_IFNAME, nic.host_ifname);
  if (nic.mtu != 0) r.msg.U32(IFLA_MTU, nic.mtu);
  r.msg.U32(IFLA_MASTER, static_cast<uint32_t>(bridge_index));
  size_t linkinfo = r.msg.Nest(IFLA_LINKINFO);
  r.msg.Str(IFLA_INFO_KIND, "veth");
  size_t data = r.msg.Nest(IFLA_INFO_DATA);
  size_t peer = r.msg.Nest(VETH_INFO_PEER);
  // Not up yet: veth opens a device only once both ends are registered, and the peer is
  // registered first (ENOTCONN). ConfigurePeer brings it up.
  ifinfomsg inner{};
  inner.ifi_family = AF_UNSPEC;
  r.msg.Raw(inner);
  r.msg.Str(IFLA_IFNAME, nic.ifname);
  r.msg.U32(IFLA_NET_NS_FD, static_cast<uint32_t>(netns_fd));
  if (nic.mtu != 0) r.msg.U32(IFLA_MTU, nic.mtu);
  unsigned char mac[6];
  if (!nic.mac.empty() && ParseMac(nic.mac, mac)) r.msg.Attr(IFLA_ADDRESS, mac, sizeof(mac));
  r.msg.End(peer);
  r.msg.End(data);
  r.msg.End(linkinfo);
  return r;
}

// The alias tags the link for reconciliation; hairpin lets traffic that entered through this
// port leave through it again (a container reaching its own published port).
Request TagHostEnd(const NetInterface& nic) {
  Request r = ModifyLink(nic.host_ifname);
  if (!nic.alias.empty()) r.msg.Str(IFLA_IFALIAS, nic.alias);
  NoIpv6LinkLocal(r.msg);
  if (nic.hairpin) {
    size_t linkinfo = r.msg.Nest(IFLA_LINKINFO);
    r.msg.Str(IFLA_INFO_SLAVE_KIND, "bridge_slave");
    size_t data = r.msg.Nest(IFLA_INFO_SLAVE_DATA);
    r.msg.U8(IFLA_BRPORT_MODE, 1);
    r.msg.End(data);
    r.msg.End(linkinfo);
  }
  return r;
}

struct NetnsSocket {
  int netns_fd;
  int result;
  NativeError sysctl_error;
};

// The container's interfaces are created later, with IPv6 off from birth: a neighbour on the
// same bridge can forge router advertisements too (with capAdd NET_RAW), and a container must
// not take an address or a default route from them. `default` applies to links registered
// after this, in this namespace only; loopback (and its ::1) already exists and keeps IPv6.
bool ContainerIpv6Defaults(NativeError* e) {
  return WriteNetSysctl("/proc/sys/net/ipv6/conf/default/accept_ra", "0", e) &&
         WriteNetSysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1", e);
}

void* OpenInNetns(void* arg) {
  auto* job = static_cast<NetnsSocket*>(arg);
  if (setns(job->netns_fd, CLONE_NEWNET) < 0) {
    job->result = -errno;
    return nullptr;
  }
  if (!ContainerIpv6Defaults(&job->sysctl_error)) {
    job->result = -EINVAL;
    return nullptr;
  }
  job->result = Rtnl::Create();
  return nullptr;
}

// A netlink socket inside another network namespace. setns() happens on a thread made for
// this and discarded after, so no thread of Node (or of libuv's pool) ever changes namespace;
// the socket keeps the namespace it was created in.
bool OpenRtnlIn(int netns_fd, Rtnl* rtnl, NativeError* e) {
  NetnsSocket job{netns_fd, -EINVAL, {}};
  pthread_t thread;
  int err = pthread_create(&thread, nullptr, OpenInNetns, &job);
  if (err != 0) {
    SetError(e, err, "pthread_create", "netns");
    return false;
  }
  pthread_join(thread, nullptr);
  if (job.sysctl_error.err != 0) {
    *e = job.sysctl_error;
    return false;
  }
  if (job.result < 0) {
    SetError(e, -job.result, job.result == -EINVAL || job.result == -EPERM ? "setns(CLONE_NEWNET)" : "socket", "container network namespace");
    return false;
  }
  return rtnl->Adopt(job.result, e);
}

void DeleteQuietly(Rtnl& rtnl, const std::string& name) {
  Request r{Msg(RTM_DELLINK, NLM_F_ACK), "RTM_DELLINK", name};
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  r.msg.Family(ifi);
  r.msg.Str(IFLA_IFNAME, name);
  std::vector<Request> one;
  one.push_back(std::move(r));
  NativeError ignored;
  rtnl.Run(one, &ignored);
}

bool ConfigurePeer(Rtnl& inside, const NetInterface& nic, NativeError* e) {
  int index = LinkIndex(inside, nic.ifname, e);
  if (index == 0) return false;
  std::vector<Request> requests;
  Request v4only{Msg(RTM_NEWLINK, NLM_F_ACK), "RTM_NEWLINK", nic.ifname};
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  v4only.msg.Family(ifi);
  NoIpv6LinkLocal(v4only.msg);
  requests.push_back(std::move(v4only));
  requests.push_back(LinkUp(nic.ifname, index));
  for (const auto& text : nic.addresses) {
    Cidr a;
    if (!ParseAddress(text, &a)) {
      SetError(e, EINVAL, "netlink RTM_NEWADDR", text, "not an address in CIDR notation");
      return false;
    }
    requests.push_back(AddressRequest(index, a, text, NLM_F_EXCL));
  }
  if (!nic.gateway.empty()) {
    Cidr gw;
    if (!ParseAddress(nic.gateway, &gw)) {
      SetError(e, EINVAL, "netlink RTM_NEWROUTE", nic.gateway, "not an address");
      return false;
    }
    requests.push_back(DefaultRoute(index, gw, nic.gateway));
  }
  return inside.Run(requests, e);
}

}  // namespace

bool ConfigureInterfaces(int netns_fd, const std::vector<NetInterface>& interfaces, NativeError* error) {
  if (interfaces.empty()) return true;
  Rtnl host;
  if (!host.Open(error)) return false;
  Rtnl inside;
  if (!OpenRtnlIn(netns_fd, &inside, error)) return false;
  std::vector<std::string> created;
  auto fail = [&]() {
    // Deleting the host end deletes the peer inside the container too.
    for (const auto& name : created) DeleteQuietly(host, name);
    return false;
  };
  for (const NetInterface& nic : interfaces) {
    int bridge = LinkIndex(host, nic.bridge, error);
    if (bridge == 0) {
      error->message = "the network's bridge is missing";
      return fail();
    }
    // Two round trips rather than one batch: a failed create (EEXIST) must not go on to
    // retag a link that belongs to someone else.
    std::vector<Request> create;
    create.push_back(CreateVeth(nic, bridge, netns_fd));
    if (!host.Run(create, error)) return fail();
    created.push_back(nic.host_ifname);
    if (!Ipv6Off(nic.host_ifname, error)) return fail();
    std::vector<Request> tag;
    tag.push_back(TagHostEnd(nic));
    tag.push_back(LinkUp(nic.host_ifname, 0));
    if (!host.Run(tag, error)) return fail();
    if (!ConfigurePeer(inside, nic, error)) return fail();
  }
  return true;
}

bool SetupContainerNetwork(int pid, const LaunchSpec& spec, NativeError* error) {
  if (spec.interfaces.empty()) return true;
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  int netns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (netns < 0) {
    SetError(error, errno, "open", path);
    return false;
  }
  bool ok = ConfigureInterfaces(netns, spec.interfaces, error);
  // Before "go", like the interfaces: the container's first lookup already has its resolver.
  if (ok && !spec.dns_control.empty()) ok = DnsHandOver(netns, pid, spec.dns_control, spec.dns_message, error);
  close(netns);
  return ok;
}

bool EnsureBridge(const BridgeSpec& bridge, NativeError* error) {
  Rtnl rtnl;
  if (!rtnl.Open(error)) return false;
  std::vector<Request> requests;
  // NLM_F_CREATE without NLM_F_EXCL: an existing bridge of that name is updated in place.
  Request create{Msg(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE), "RTM_NEWLINK", bridge.name};
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  create.msg.Family(ifi);
  create.msg.Str(IFLA_IFNAME, bridge.name);
  if (bridge.mtu != 0) create.msg.U32(IFLA_MTU, bridge.mtu);
  unsigned char mac[6];
  if (!bridge.mac.empty() && ParseMac(bridge.mac, mac)) create.msg.Attr(IFLA_ADDRESS, mac, sizeof(mac));
  size_t linkinfo = create.msg.Nest(IFLA_LINKINFO);
  create.msg.Str(IFLA_INFO_KIND, "bridge");
  create.msg.End(linkinfo);
  requests.push_back(std::move(create));
  if (!rtnl.Run(requests, error)) return false;
  // A new bridge is still down here: IPv6 goes off before it can receive anything.
  if (!Ipv6Off(bridge.name, error)) return false;
  requests.clear();
  Request tag = ModifyLink(bridge.name);
  if (!bridge.alias.empty()) tag.msg.Str(IFLA_IFALIAS, bridge.alias);
  NoIpv6LinkLocal(tag.msg);
  requests.push_back(std::move(tag));
  requests.push_back(LinkUp(bridge.name, 0));
  if (!rtnl.Run(requests, error)) return false;
  int index = LinkIndex(rtnl, bridge.name, error);
  if (index == 0) return false;
  std::vector<Request> addresses;
  for (const auto& text : bridge.addresses) {
    Cidr a;
    if (!ParseAddress(text, &a)) {
      SetError(error, EINVAL, "netlink RTM_NEWADDR", text, "not an address in CIDR notation");
      return false;
    }
    addresses.push_back(AddressRequest(index, a, text, NLM_F_REPLACE));
  }
  return addresses.empty() || rtnl.Run(addresses, error);
}

bool DeleteLink(const std::string& name, bool* existed, NativeError* error) {
  Rtnl rtnl;
  if (!rtnl.Open(error)) return false;
  Request r{Msg(RTM_DELLINK, NLM_F_ACK), "RTM_DELLINK", name};
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  r.msg.Family(ifi);
  r.msg.Str(IFLA_IFNAME, name);
  std::vector<Request> one;
  one.push_back(std::move(r));
  *existed = true;
  if (rtnl.Run(one, error)) return true;
  if (error->err == ENODEV) {
    *error = NativeError();
    *existed = false;
    return true;
  }
  return false;
}

bool ListLinks(std::vector<LinkInfo>* links, NativeError* error) {
  Rtnl rtnl;
  if (!rtnl.Open(error)) return false;
  Request r{Msg(RTM_GETLINK, NLM_F_DUMP), "RTM_GETLINK", "dump"};
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  r.msg.Family(ifi);
  r.msg.U32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return rtnl.Query(r, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    LinkInfo link;
    link.index = info->ifi_index;
    link.up = (info->ifi_flags & IFF_UP) != 0;
    int len = static_cast<int>(IFLA_PAYLOAD(h));
    for (auto* a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      const char* data = static_cast<const char*>(RTA_DATA(a));
      switch (a->rta_type & NLA_TYPE_MASK) {
        case IFLA_IFNAME:
          link.name.assign(data, strnlen(data, RTA_PAYLOAD(a)));
          break;
        case IFLA_IFALIAS:
          link.alias.assign(data, strnlen(data, RTA_PAYLOAD(a)));
          break;
        case IFLA_MASTER:
          memcpy(&link.master, data, sizeof(int));
          break;
        case IFLA_MTU:
          memcpy(&link.mtu, data, sizeof(uint32_t));
          break;
        case IFLA_LINKINFO: {
          int inner = static_cast<int>(RTA_PAYLOAD(a));
          for (auto* b = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(b, inner); b = RTA_NEXT(b, inner)) {
            if ((b->rta_type & NLA_TYPE_MASK) == IFLA_INFO_KIND) {
              const char* kind = static_cast<const char*>(RTA_DATA(b));
              link.kind.assign(kind, strnlen(kind, RTA_PAYLOAD(b)));
            }
          }
          break;
        }
        default:
          break;
      }
    }
    links->push_back(std::move(link));
  }, error);
}

namespace {

// The CTA_TUPLE_ORIG of one conntrack entry, when it goes to `port` over `protocol`: kept as raw
// attribute bytes, which is exactly what IPCTNL_MSG_CT_DELETE wants back.
bool MatchOrigin(const nlmsghdr* h, uint8_t protocol, uint16_t port, std::vector<char>* tuple) {
  const char* body = static_cast<const char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(sizeof(nfgenmsg));
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)));
  for (auto* a = reinterpret_cast<const rtattr*>(body); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if ((a->rta_type & NLA_TYPE_MASK) != CTA_TUPLE_ORIG) continue;
    int tlen = static_cast<int>(RTA_PAYLOAD(a));
    for (auto* t = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(t, tlen); t = RTA_NEXT(t, tlen)) {
      if ((t->rta_type & NLA_TYPE_MASK) != CTA_TUPLE_PROTO) continue;
      int plen = static_cast<int>(RTA_PAYLOAD(t));
      int num = -1;
      int dport = -1;
      for (auto* p = static_cast<const rtattr*>(RTA_DATA(t)); RTA_OK(p, plen); p = RTA_NEXT(p, plen)) {
        if ((p->rta_type & NLA_TYPE_MASK) == CTA_PROTO_NUM) num = *static_cast<const uint8_t*>(RTA_DATA(p));
        if ((p->rta_type & NLA_TYPE_MASK) == CTA_PROTO_DST_PORT) {
          uint16_t v;
          memcpy(&v, RTA_DATA(p), sizeof(v));
          dport = ntohs(v);
        }
      }
      if (num != protocol || dport != port) return false;
      const char* raw = reinterpret_cast<const char*>(a);
      tuple->assign(raw, raw + RTA_ALIGN(a->rta_len));
      return true;
    }
  }
  return false;
}

Msg ConntrackMsg(uint16_t type, uint16_t flags) {
  Msg m(static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | type), flags);
  nfgenmsg g{};
  g.nfgen_family = AF_INET;
  g.version = NFNETLINK_V0;
  m.Family(g);
  return m;
}

}  // namespace

bool FlushConntrack(uint8_t protocol, uint16_t port, int* deleted, NativeError* error) {
  *deleted = 0;
  Rtnl nf;
  if (!nf.Open(error, NETLINK_NETFILTER)) return false;
  std::vector<std::vector<char>> tuples;
  Request dump{ConntrackMsg(IPCTNL_MSG_CT_GET, NLM_F_DUMP), "IPCTNL_MSG_CT_GET", "conntrack"};
  if (!nf.Query(dump, [&](const nlmsghdr* h) {
        std::vector<char> tuple;
        if (MatchOrigin(h, protocol, port, &tuple)) tuples.push_back(std::move(tuple));
      }, error)) {
    // No conntrack in this kernel (or module): nothing can be stale.
    if (error->err == EPROTONOSUPPORT || error->err == ENOENT || error->err == EOPNOTSUPP) {
      *error = NativeError();
      return true;
    }
    return false;
  }
  for (const auto& tuple : tuples) {
    Msg m = ConntrackMsg(IPCTNL_MSG_CT_DELETE, NLM_F_ACK);
    m.Bytes(tuple.data(), tuple.size());
    std::vector<Request> one;
    one.push_back(Request{std::move(m), "IPCTNL_MSG_CT_DELETE", std::to_string(port)});
    NativeError gone;
    if (nf.Run(one, &gone)) ++*deleted;  // ENOENT: it expired meanwhile
  }
  return true;
}

}  // namespace berth
